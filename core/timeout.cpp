// Timeout: a hub timer that throws into the greenlet that armed it.
#include "fern/core/timeout.h"

#include <cmath>
#include <cstdio>

#include "fern/core/hub.h"

namespace fern {
namespace detail {

struct TimeoutState : Timer, std::enable_shared_from_this<TimeoutState> {
  double seconds = -1;
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
  std::shared_ptr<detail::TimeoutState> keep = state->shared_from_this();
  Greenlet target = std::move(state->target);
  if (!target.active()) return;  // its greenlet ended without cancelling
  std::exception_ptr error = state->exception ? state->exception : std::make_exception_ptr(detail::TimeoutAccess::wrap(keep));
  target.throw_in(error);  // returns when the target blocks again or ends
}

}  // namespace

Timeout::Timeout() : Timeout(-1.0) {}

Timeout::Timeout(double seconds) : state_(std::make_shared<detail::TimeoutState>()) {
  state_->seconds = std::isnan(seconds) ? -1 : seconds;
  state_->fn = &fire;
}

Timeout::Timeout(double seconds, std::exception_ptr exception) : Timeout(seconds) {
  state_->exception = std::move(exception);
}

Timeout Timeout::with_message(double seconds, std::string message) {
  Timeout t(seconds);
  t.state_->message = std::move(message);
  return t;
}

Timeout Timeout::silent(double seconds) {
  Timeout t(seconds);
  t.state_->silent = true;
  return t;
}

Timeout& Timeout::start() {
  if (pending()) throw TimeoutPendingError();
  if (state_->seconds < 0) return *this;  // Timeout(None) never fires
  Hub& hub = Hub::current();
  state_->hub = &hub;
  state_->target = Greenlet::current();
  // F5: refresh the cached clock first, as gevent's Timeout.start does.
  hub.start_timer(state_.get(), hub.update_now() + seconds_to_nanos(state_->seconds));
  return *this;
}

Timeout Timeout::start_new(double seconds) {
  Timeout t(seconds);
  t.start();
  return t;
}

Timeout Timeout::start_new(double seconds, std::exception_ptr exception) {
  Timeout t(seconds, std::move(exception));
  t.start();
  return t;
}

void Timeout::cancel() noexcept {
  if (!state_->queued()) return;
  state_->hub->stop_timer(state_.get());
  state_->target = Greenlet();
}

bool Timeout::pending() const noexcept { return state_->queued(); }
double Timeout::seconds() const noexcept { return state_->seconds; }
bool Timeout::is_silent() const noexcept { return state_->silent; }

std::string Timeout::str() const {
  if (state_->seconds < 0) return "";
  char number[32];
  std::snprintf(number, sizeof number, "%g", state_->seconds);
  std::string s = std::string(number) + (state_->seconds == 1 ? " second" : " seconds");
  if (state_->silent) s += " (silent)";
  else if (!state_->message.empty()) s += ": " + state_->message;
  return s;
}

}  // namespace fern
