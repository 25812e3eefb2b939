#pragma once
// gevent.signal_handler: run a function in a new greenlet when a signal
// arrives, never inside the interrupted code (SEMANTICS SIG-1, SIG-2).
//
// The OS-level handler is async-signal-safe: it sets a flag and writes to
// the hub's wake-up fd; the hub then spawns a task that calls fn. The
// watcher does not keep the loop alive (unreferenced, SIG-2). An exception
// from fn is reported like any task failure and then raised in the main
// greenlet, interrupting whatever main is blocked on (SIG-3). A handler
// still installed when its hub is destroyed stays harmless: the signal is
// dropped (the handler holds the hub's reference-counted wake-up door, never
// the hub), and the OS handler preserves errno.
#include <functional>
#include <memory>
#include <stdexcept>

namespace fern {

class SignalHandler {
 public:
  SignalHandler() = default;
  // Stops handling the signal and restores its previous disposition.
  void cancel() noexcept;
  bool active() const noexcept;
  int signo() const noexcept;

  struct State;  // an installed handler (internal)

 private:
  friend SignalHandler signal_handler(int signo, std::function<void()> fn);
  std::shared_ptr<State> state_;
};

// Installs fn for signo in this thread's hub. Throws std::invalid_argument
// for an invalid or uncatchable signal (SIGKILL, SIGSTOP), or one already
// handled through fern, and for an empty fn.
SignalHandler signal_handler(int signo, std::function<void()> fn);

}  // namespace fern
