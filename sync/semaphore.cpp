// Semaphore: a counter plus a FIFO of parked greenlets; permits are handed
// to waiters by one hub callback.
#include "fern/sync/semaphore.h"

#include <limits>
#include <stdexcept>

namespace fern {
namespace {

long checked_value(long value) {
  if (value < 0) throw std::invalid_argument("fern: semaphore initial value must be >= 0");
  return value;
}

}  // namespace

Semaphore::Semaphore(long value) : Semaphore(value, -1) {}

Semaphore::Semaphore(long value, long bound)
    : notifier_(this, &Semaphore::step, &Semaphore::finish,
                [](const void* o) { return !static_cast<const Semaphore*>(o)->links_.empty(); }), counter_(checked_value(value)), bound_(bound) {}

bool Semaphore::acquire_until(Deadline deadline) {
  // F9: a free permit goes to the caller even with waiters queued; they are
  // only ever handed permits by the notifier, so none is skipped for good.
  if (counter_ > 0) {
    --counter_;
    return true;
  }
  Node node;
  // Notified means the notifier already took the permit for us.
  return detail::park(waiters_, node, deadline, "Semaphore.acquire", this);
}

long Semaphore::release() {
  if (bound_ >= 0 && counter_ >= bound_) throw SemaphoreReleasedTooManyTimes();
  if (counter_ == std::numeric_limits<long>::max()) throw std::overflow_error("fern: Semaphore counter at LONG_MAX");
  ++counter_;
  if (!waiters_.empty() || !links_.empty()) notifier_.schedule();
  return counter_;
}

long Semaphore::wait_until(Deadline deadline) {
  if (counter_ > 0) return counter_;
  Node node;
  node.acquiring = false;
  return detail::park(waiters_, node, deadline, "Semaphore.wait", this) ? counter_ : 0;
}

std::size_t Semaphore::rawlink(LinkFn fn, std::size_t* holder) {
  if (!fn) throw std::invalid_argument("fern: Semaphore::rawlink(nullptr): no function to call");
  std::size_t id = links_.add(std::move(fn), holder);
  if (counter_ > 0) notifier_.schedule();
  return id;
}

void Semaphore::unlink(std::size_t id) noexcept { links_.remove(id); }

// Hands permits out while they last, to the waiters present when the round
// started (gevent's _notify_links with only_while_ready). The permit is
// taken here, before the switch, so the woken greenlet owns it outright.
Waiter* Semaphore::step(void* p, bool first) {
  auto* self = static_cast<Semaphore*>(p);
  if (first) self->round_bound_ = self->waiters_.next_seq();
  if (self->counter_ <= 0) return nullptr;
  auto* n = static_cast<Node*>(self->waiters_.front());
  if (!n || n->seq >= self->round_bound_) return nullptr;
  self->waiters_.pop_front();
  if (n->acquiring) --self->counter_;
  n->notified = true;
  return &n->waiter;
}

// Rawlinks run after the waiters, while a permit is free (gevent calls them
// as links in the same round).
void Semaphore::finish(void* p, const bool& gone) {
  auto* self = static_cast<Semaphore*>(p);
  if (self->counter_ > 0 && !self->waiters_.empty()) {
    self->notifier_.run_again();
    return;
  }
  self->links_.run_each(gone, [self] { return self->counter_ > 0; }, [self](const LinkFn& fn) { fn(*self); });
}

bool RLock::is_owned_by_current() const noexcept { return count_ > 0 && owner_ == Greenlet::current().id(); }

bool RLock::acquire_until(Deadline deadline) {
  if (is_owned_by_current()) {
    ++count_;
    return true;
  }
  // A lock destroyed under a timed waiter: nothing of it is touched after.
  if (!block_.acquire_until(deadline)) return false;
  return take(true);
}

bool RLock::try_acquire() {
  if (is_owned_by_current()) {
    ++count_;
    return true;
  }
  return take(block_.try_acquire());
}

bool RLock::take(bool acquired) {
  if (!acquired) return false;
  owner_ = Greenlet::current().id();
  count_ = 1;
  return true;
}

void RLock::release() {
  if (count_ == 0 || owner_ != Greenlet::current().id())
    throw NotOwnerError("fern: cannot release un-acquired lock");
  if (--count_ == 0) block_.release();
}

}  // namespace fern
