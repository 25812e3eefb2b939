// Signals: an async-signal-safe handler that defers to the hub.
#include "fern/io/signal.h"

#include <signal.h>

#include <cerrno>

#include <atomic>
#include <mutex>
#include <string>

#include "fern/core/hub.h"
#include "fern/core/task.h"

namespace fern {

struct SignalHandler::State {
  int signo = 0;
  std::function<void()> fn;
  std::shared_ptr<RemoteQueue> door;  // keeps the wake-up fd valid after the hub is gone
  struct sigaction previous {};
  bool active = false;
};

namespace {

constexpr int kMaxSignal = 65;

// Read by the OS handler: plain atomics only.
std::atomic<RemoteQueue*> g_door_of[kMaxSignal];
std::atomic<bool> g_pending[kMaxSignal];
std::mutex g_install_mutex;
// Installed handlers stay alive here until cancelled, handles or not.
std::shared_ptr<SignalHandler::State> g_state_of[kMaxSignal];  // guarded by g_install_mutex

void on_signal(int signo) {
  if (signo <= 0 || signo >= kMaxSignal) return;
  const int saved_errno = errno;  // the interrupted code may be between a call and its errno check
  g_pending[signo].store(true, std::memory_order_release);
  if (RemoteQueue* door = g_door_of[signo].load(std::memory_order_acquire)) door->wake();
  errno = saved_errno;
}

// SIG-3: the handler's failure is reported (by the task) and then raised in
// the main greenlet, where it interrupts whatever main is blocked on.
void run_handler(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const GreenletExit&) {
    throw;
  } catch (...) {
    Hub::current().raise_in_main(std::current_exception());
    throw;
  }
}

// In the hub after a wake-up: each pending signal runs its fn in a new task.
void dispatch(Hub& hub) {
  RemoteQueue* mine = hub.remote().get();
  for (int signo = 1; signo < kMaxSignal; ++signo) {
    if (g_door_of[signo].load(std::memory_order_acquire) != mine) continue;
    if (!g_pending[signo].exchange(false, std::memory_order_acq_rel)) continue;
    std::shared_ptr<SignalHandler::State> state;
    {
      std::lock_guard<std::mutex> lock(g_install_mutex);
      state = g_state_of[signo];
    }
    if (state && state->active) fern::spawn([state] { run_handler(state->fn); });
  }
}

}  // namespace

SignalHandler signal_handler(int signo, std::function<void()> fn) {
  if (signo <= 0 || signo >= kMaxSignal || signo == SIGKILL || signo == SIGSTOP)
    throw std::invalid_argument("fern: signal " + std::to_string(signo) + " cannot be handled");
  if (!fn) throw std::invalid_argument("fern: signal_handler needs a function");
  Hub& hub = Hub::current();
  std::lock_guard<std::mutex> lock(g_install_mutex);
  if (g_state_of[signo])
    throw std::invalid_argument("fern: signal " + std::to_string(signo) + " already has a fern handler");
  auto state = std::make_shared<SignalHandler::State>();
  state->signo = signo;
  state->fn = std::move(fn);
  state->door = hub.remote();
  state->active = true;
  Hub::set_wakeup_hook(&dispatch);
  g_state_of[signo] = state;
  g_door_of[signo].store(state->door.get(), std::memory_order_release);
  struct sigaction sa {};
  sa.sa_handler = &on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(signo, &sa, &state->previous) != 0) {
    g_state_of[signo] = nullptr;
    g_door_of[signo].store(nullptr);
    throw std::invalid_argument("fern: sigaction failed for signal " + std::to_string(signo));
  }
  SignalHandler handler;
  handler.state_ = std::move(state);
  return handler;
}

void SignalHandler::cancel() noexcept {
  if (!state_ || !state_->active) return;
  std::lock_guard<std::mutex> lock(g_install_mutex);
  sigaction(state_->signo, &state_->previous, nullptr);
  g_door_of[state_->signo].store(nullptr);
  g_pending[state_->signo].store(false);
  g_state_of[state_->signo] = nullptr;
  state_->active = false;
}

bool SignalHandler::active() const noexcept { return state_ && state_->active; }
int SignalHandler::signo() const noexcept { return state_ ? state_->signo : 0; }

}  // namespace fern
