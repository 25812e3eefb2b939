// Twin of gevent's tutorial program 08_greenlet_state.py: a task's state
// (started, ready, successful, value, exception) after success and failure.
// The failure stays inside the task: the hub reports it on stderr (fern's
// wording, not Python's traceback) and joinall does not raise it.
// No deliberate differences on stdout.
#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>

#include "fern/core/task.h"

namespace {

std::string win() { return "You win!"; }

std::string fail() { throw std::runtime_error("You fail at failing."); }

// Python's str() of the values printed below.
const char* py(bool b) { return b ? "True" : "False"; }
std::string py(const std::optional<std::string>& v) { return v ? *v : "None"; }
std::string py(const std::exception_ptr& e) {
  if (!e) return "None";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  }
}

}  // namespace

int main() {
  fern::Task<std::string> winner = fern::spawn(win);
  fern::Task<std::string> loser = fern::spawn(fail);

  std::puts(py(winner.started()));  // True
  std::puts(py(loser.started()));   // True

  // Exceptions thrown in a task stay inside the task.
  try {
    fern::joinall({fern::any_task(winner), fern::any_task(loser)});
  } catch (const std::exception&) {
    std::puts("This will never be reached");
  }

  std::puts(py(winner.value()).c_str());  // You win!
  std::puts(py(loser.value()).c_str());   // None

  std::puts(py(winner.ready()));  // True
  std::puts(py(loser.ready()));   // True

  std::puts(py(winner.successful()));  // True
  std::puts(py(loser.successful()));   // False

  // The exception thrown in fail does not propagate outside the task. The
  // hub prints it to stderr, but it does not unwind the caller's stack.
  std::puts(py(loser.exception()).c_str());

  // It is possible though to throw it again outside:
  // std::rethrow_exception(loser.exception()), or loser.get().
}
