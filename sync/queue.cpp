// The waiting side of gevent's Queue: parked getters and putters served FIFO
// by one hub callback (gevent's _unlock).
#include "fern/sync/queue.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <utility>

namespace fern::detail {

QueueCore::QueueCore(std::size_t maxsize, StoreFrom store_from) noexcept
    : unlock_(this, &QueueCore::step, nullptr),
      closer_(this, &QueueCore::close_step, nullptr),
      store_from_(store_from),
      maxsize_(maxsize),
      store_limit_(maxsize != 0 ? maxsize : SIZE_MAX) {}

namespace {
[[noreturn, gnu::cold, gnu::noinline]] void throw_shut_down() { throw QueueShutDown(); }
}  // namespace

// A move of the putter's item that throws fails that put, not the hub: the
// putter's next wake delivers the error.
bool QueueCore::store_for(PutNode& putter) {
  try {
    store_from_(this, putter.item);
  } catch (...) {
    putter.waiter.set_error(std::current_exception());
    return false;
  }
  ++size_;
  counted();
  return true;
}

// Called in the hub (a loop callback), which cannot block, by a put that
// found the queue full: parked getters may drain it first, each running
// until it blocks (gevent's Queue.put in the hub).
bool QueueCore::put_in_hub(void* item) {
  Liveness::Guard guard(alive_);
  while (!getters_.empty() && size_ > 0 && full()) {
    notify(*getters_.pop_front());
    if (guard.gone()) throw std::logic_error("fern: queue destroyed during put");
  }
  if (full()) return false;
  store_from_(this, item);
  stored_one();
  return true;
}

// As above for a get or peek on an empty queue: parked putters may fill it
// first.
bool QueueCore::get_in_hub() {
  Liveness::Guard guard(alive_);
  while (!putters_.empty() && size_ == 0) {
    auto* putter = static_cast<PutNode*>(putters_.pop_front());
    if (store_for(*putter)) notify(*putter);
    else putter->waiter.wake();  // delivers the store's error
    if (guard.gone()) throw std::logic_error("fern: queue destroyed during get");
  }
  return size_ > 0;
}

// The hub check costs a greenlet handle, so the blocking paths leave it to
// Waiter::wait, which refuses to block in the hub (BlockingSwitchOutError).
bool QueueCore::put_waiting(void* item, bool block, Deadline deadline) {
  if (shut_down_) throw_shut_down();  // may_store() sent every put here
  if (!block) return Hub::current().in_hub() && put_in_hub(item);
  try {
    PutNode node;
    node.item = item;
    if (!getters_.empty()) unlock_.schedule();
    return park(putters_, node, deadline, "Queue.put", this);
  } catch (const BlockingSwitchOutError&) {
    return put_in_hub(item);
  }
}

bool QueueCore::await_item(bool block, Deadline deadline) {
  if (shut_down_) throw_shut_down();  // empty, and nothing will come
  if (!block) return Hub::current().in_hub() && get_in_hub();
  try {
    WaitNode node;
    if (!putters_.empty()) unlock_.schedule();
    return park(getters_, node, deadline, "Queue.get", this);
  } catch (const BlockingSwitchOutError&) {
    return get_in_hub();
  }
}

// Alternates: one parked putter stores its item while there is room, one
// parked getter is woken while there are items; each woken greenlet runs
// (and may put, get or park again) before the next step. Requests made
// while the round runs are served by this same round, as in gevent; it ends
// after a putter-getter pass that woke no one.
Waiter* QueueCore::step(void* p, bool first) {
  auto* self = static_cast<QueueCore*>(p);
  if (first) {
    self->try_getter_ = false;
    self->acted_ = false;
    self->round_over_ = false;
  }
  while (!self->round_over_) {
    if (!self->try_getter_) {
      self->try_getter_ = true;
      if (!self->putters_.empty() && !self->full()) {
        self->acted_ = true;
        auto* putter = static_cast<PutNode*>(self->putters_.pop_front());
        if (self->store_for(*putter)) putter->notified = true;
        return &putter->waiter;
      }
    }
    self->try_getter_ = false;
    if (!self->getters_.empty() && self->size_ > 0) {
      self->acted_ = false;
      WaitNode* getter = self->getters_.pop_front();
      getter->notified = true;
      return &getter->waiter;
    }
    // A pass that woke no one ends the round (and it stays over).
    self->round_over_ = !std::exchange(self->acted_, false);
  }
  return nullptr;
}

// Putters move to refused_ at once, so that no round (the unlock's, a get
// in the hub) stores their items after the shutdown; getters stay where
// they are, to take the items left in FIFO order from whichever round
// comes first.
void QueueCore::shut_down(bool dropped_all) {
  shut_down_ = true;
  store_limit_ = 0;
  if (dropped_all && join_count_) {
    std::size_t settled = std::min(size_, join_count_->unfinished);
    if (settled > 0 && (join_count_->unfinished -= settled) == 0) join_count_->done.set();
  }
  if (dropped_all) size_ = 0;
  while (WaitNode* putter = putters_.pop_front()) refused_.push_back(putter);
  if (!getters_.empty() || !refused_.empty()) closer_.schedule();
}

// The shutdown's round: each getter in turn is handed an item while one is
// left (it runs and takes it before the next step), then woken with
// QueueShutDown; then each refused putter. Nothing parks on a shut-down
// queue, so the round ends when both lists are empty.
Waiter* QueueCore::close_step(void* p, bool) {
  auto* self = static_cast<QueueCore*>(p);
  WaitNode* node = self->getters_.pop_front();
  if (node && self->size_ > 0) {
    node->notified = true;
    return &node->waiter;
  }
  if (!node) node = self->refused_.pop_front();
  if (!node) return nullptr;
  node->waiter.set_error(std::make_exception_ptr(QueueShutDown()));
  return &node->waiter;
}

}  // namespace fern::detail
