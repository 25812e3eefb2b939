// Channel: parked putters and getters paired FIFO by one hub callback.
#include "fern/sync/channel.h"

#include <utility>

namespace fern::detail {

ChannelCore::ChannelCore(HandOver hand_over) noexcept
    : unlock_(this, &ChannelCore::step, nullptr), hand_over_(hand_over) {}

// A getter that took a putter's item destroyed the channel before the
// putter's put() returned: the putter still wakes, from the hub.
ChannelCore::~ChannelCore() {
  if (Node* putter = paired_putter_) {
    putter->paired_in = nullptr;
    putter->notified = true;
    putter->rescue.waiter = &putter->waiter;
    if (Hub* hub = Hub::current_if_exists()) hub->schedule(&putter->rescue);
  }
}

// In the hub (a loop callback), which cannot wait: hand the item straight
// to a parked getter, if any, and let it run.
bool ChannelCore::put_in_hub(void* item) {
  if (getters_.empty()) return false;
  auto* getter = static_cast<Node*>(getters_.pop_front());
  hand_over_(item, getter->item);
  notify(*getter);
  return true;
}

bool ChannelCore::get_in_hub(void* slot) {
  if (putters_.empty()) return false;
  auto* putter = static_cast<Node*>(putters_.pop_front());
  hand_over_(putter->item, slot);
  notify(*putter);
  return true;
}

// Not blocking, gevent still waits one loop pass (a 0 s timeout) so that a
// parked partner can take part; without one it comes back at once. The hub
// check costs a greenlet handle, so the blocking paths leave it to
// Waiter::wait, which refuses to block in the hub (BlockingSwitchOutError).
bool ChannelCore::put_item(void* item, bool block, Deadline deadline) {
  if (!block) {
    if (Hub::current().in_hub()) return put_in_hub(item);
    if (getters_.empty()) return false;
    deadline = Deadline::at(0);
  }
  try {
    Node node;
    node.item = item;
    if (!getters_.empty()) unlock_.schedule();
    return park(putters_, node, deadline, "Channel.put", this);
  } catch (const BlockingSwitchOutError&) {
    return put_in_hub(item);
  }
}

bool ChannelCore::get_item(void* slot, bool block, Deadline deadline) {
  if (!block) {
    if (Hub::current().in_hub()) return get_in_hub(slot);
    if (putters_.empty()) return false;
    deadline = Deadline::at(0);
  }
  try {
    Node node;
    node.item = slot;
    if (!putters_.empty()) unlock_.schedule();
    return park(getters_, node, deadline, "Channel.get", this);
  } catch (const BlockingSwitchOutError&) {
    return get_in_hub(slot);
  }
}

// Pairs the first putter with the first getter: the getter runs with its
// item, then the putter's put() returns (Q-9: "hello" before "sent hello").
Waiter* ChannelCore::step(void* p, bool) {
  auto* self = static_cast<ChannelCore*>(p);
  if (Node* putter = std::exchange(self->paired_putter_, nullptr)) {
    putter->paired_in = nullptr;
    return &putter->waiter;
  }
  while (!self->putters_.empty() && !self->getters_.empty()) {
    auto* putter = static_cast<Node*>(self->putters_.pop_front());
    auto* getter = static_cast<Node*>(self->getters_.front());
    try {
      self->hand_over_(putter->item, getter->item);
    } catch (...) {
      putter->waiter.set_error(std::current_exception());  // that put fails; the getter waits on
      return &putter->waiter;
    }
    self->getters_.pop_front();
    getter->notified = true;
    // The putter is off the list and parked on its own stack: the next step
    // wakes it, after the getter blocked, in the same round (no timer runs
    // in between, F6). Its put is done now, whatever wakes it.
    putter->notified = true;
    self->paired_putter_ = putter;
    putter->paired_in = self;
    return &getter->waiter;
  }
  return nullptr;
}

}  // namespace fern::detail
