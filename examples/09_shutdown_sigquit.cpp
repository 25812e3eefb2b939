// Twin of gevent's tutorial program 09_shutdown_sigquit.py: a SIGQUIT
// handler kills the task the main greenlet is joining, so join returns and
// the program exits 0 without output. Without SIGQUIT it sleeps 1000 s.
// No deliberate differences (the task is a local captured by the handler
// instead of a module global).
#include <csignal>

#include "fern/core/task.h"
#include "fern/io/signal.h"

namespace {

void run_forever() { fern::sleep(1000); }

void shutdown(fern::Task<void>& thread) { thread.kill_async(); }

}  // namespace

int main() {
  fern::Task<void> thread;
  fern::SignalHandler handler = fern::signal_handler(SIGQUIT, [&thread] { shutdown(thread); });
  thread = fern::spawn(run_forever);
  thread.join();
}
