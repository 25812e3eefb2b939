// Event: a flag plus a FIFO of parked greenlets, woken by one hub callback.
#include "fern/sync/event.h"

#include <stdexcept>

namespace fern {

Event::Event() noexcept : notifier_(this, &Event::step, &Event::finish,
                [](const void* o) { return !static_cast<const Event*>(o)->links_.empty(); }) {}

void Event::set() noexcept {
  flag_ = true;
  // A round already running covers only the waiters it started with; the
  // later ones are picked up by its run_again() check.
  if (!waiters_.empty() || !links_.empty()) notifier_.schedule();
}

std::size_t Event::rawlink(std::function<void()> fn, std::size_t* holder) {
  if (!fn) throw std::invalid_argument("fern: Event::rawlink(nullptr): no function to call");
  std::size_t id = links_.add(std::move(fn), holder);
  if (flag_) notifier_.schedule();
  return id;
}

void Event::unlink(std::size_t id) noexcept { links_.remove(id); }

bool Event::wait_until(Deadline deadline) {
  if (flag_ && !notifier_.pending()) return true;
  // A deadline already past does not block (the clock is read only for a
  // finite one).
  if (!deadline.is_never() && deadline.expired(monotonic_now())) return flag_;
  // When set with a round pending, queue behind it (F8): the pending round
  // covers this node, or run_again() schedules one that does.
  detail::WaitNode node;
  return detail::park(waiters_, node, deadline, "Event.wait", this);
}

// Wakes everyone who was waiting when the round started, flag or no flag
// (F10): gevent's Event notifies all links, not only while ready.
Waiter* Event::step(void* p, bool first) {
  auto* self = static_cast<Event*>(p);
  if (first) self->round_bound_ = self->waiters_.next_seq();
  detail::WaitNode* n = self->waiters_.front();
  if (!n || n->seq >= self->round_bound_) return nullptr;
  self->waiters_.pop_front();
  n->notified = true;
  return &n->waiter;
}

// Waiters that came during the round get one of their own (F8); the
// rawlinks run after the waiters, while set.
void Event::finish(void* p, const bool& gone) {
  auto* self = static_cast<Event*>(p);
  if (self->flag_ && !self->waiters_.empty()) {
    self->notifier_.run_again();
    return;
  }
  self->links_.run_each(gone, [self] { return self->flag_; }, [](const std::function<void()>& fn) { fn(); });
}

}  // namespace fern
