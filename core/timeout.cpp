// Timeout: a hub timer that throws into the greenlet that armed it.
#include "fern/core/timeout.h"

#include <cmath>
#include <cstdio>

#include "fern/core/hub.h"

namespace fern {
namespace detail {

struct TimeoutState : Timer, std::enable_shared_from_this<TimeoutState> {
  Duration duration = Duration::forever();
  std::shared_ptr<TimeoutState> self;  // while armed: a dropped handle still fires
  std::exception_ptr exception;  // null: raise the Timeout itself
  std::string message;
  bool silent = false;
  Greenlet target;
  Hub* hub = nullptr;
};

}  // namespace detail

namespace detail {
struct TimeoutAccess {
  static Timeout wrap(std::shared_ptr<TimeoutState> s) {
    Timeout t;
    t.state_ = std::move(s);
    return t;
  }
};
}  // namespace detail

namespace {

void fire(Timer* timer) {
  auto* state = static_cast<detail::TimeoutState*>(timer);
  std::shared_ptr<detail::TimeoutState> keep = std::move(state->self);
  Greenlet target = std::move(state->target);
  if (!target.active()) return;  // its greenlet ended without cancelling
  std::exception_ptr error = state->exception ? state->exception : std::make_exception_ptr(detail::TimeoutAccess::wrap(keep));
  target.throw_in(error);  // returns when the target blocks again or ends
}

}  // namespace

Timeout::Timeout() : state_(std::make_shared<detail::TimeoutState>()) {
  state_->fn = &fire;
  state_->orphan = [](Timer* t) { static_cast<detail::TimeoutState*>(t)->self.reset(); };
}

Timeout::Timeout(Duration d) : Timeout() { state_->duration = d; }

Timeout::Timeout(Duration d, std::exception_ptr exception) : Timeout(d) {
  state_->exception = std::move(exception);
}

Timeout Timeout::with_message(Duration d, std::string message) {
  Timeout t(d);
  t.state_->message = std::move(message);
  return t;
}

Timeout Timeout::silent(Duration d) {
  Timeout t(d);
  t.state_->silent = true;
  return t;
}

Timeout& Timeout::start() {
  if (pending()) throw TimeoutPendingError();
  if (state_->duration.is_forever()) return *this;  // Timeout(None) never fires
  Hub& hub = Hub::current();
  state_->hub = &hub;
  state_->target = Greenlet::current();
  // F5: refresh the cached clock first, as gevent's Timeout.start does.
  hub.start_timer(state_.get(), state_->duration.from(hub.update_now()));
  state_->self = state_;
  return *this;
}

Timeout Timeout::start_new(Duration d) {
  Timeout t(d);
  t.start();
  return t;
}

Timeout Timeout::start_new(Duration d, std::exception_ptr exception) {
  Timeout t(d, std::move(exception));
  t.start();
  return t;
}

void Timeout::cancel() {
  if (!state_->queued()) return;
  if (__builtin_expect(state_->hub != Hub::current_if_exists(), 0))
    throw CrossThreadError("fern: a Timeout is cancelled from the thread that started it");
  state_->unlink();
  state_->target = Greenlet();
  state_->self.reset();  // the handle this is called on still holds the state
}

bool Timeout::pending() const noexcept { return state_->queued(); }
double Timeout::seconds() const noexcept { return state_->duration.seconds(); }
bool Timeout::is_silent() const noexcept { return state_->silent; }

std::string Timeout::str() const {
  if (state_->duration.is_forever()) return "";
  const double seconds = state_->duration.seconds();
  char number[32];
  std::snprintf(number, sizeof number, "%g", seconds);
  std::string s = std::string(number) + (seconds == 1 ? " second" : " seconds");
  if (state_->silent) s += " (silent)";
  else if (!state_->message.empty()) s += ": " + state_->message;
  return s;
}

}  // namespace fern
