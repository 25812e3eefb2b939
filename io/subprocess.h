#pragma once
// gevent.subprocess: child processes whose pipes and exit are waited for
// cooperatively (only the calling greenlet blocks, SP-1).
//
// Mapping from gevent / Python:
//   Popen(args, stdin=PIPE, ...)     Popen(args, {.in = Stdio::kPipe, ...})
//   Popen('cmd', shell=True)         Popen({"cmd"}, {.shell = true})
//   p.communicate(input, timeout)    p.communicate(input, timeout) -> Output; TimeoutExpired
//   text=True / universal_newlines   {.text = true}: communicate's output has "\r\n" and "\r"
//                                    as "\n" and must be UTF-8, else DecodeError (SP-2)
//   p.wait() / p.wait(timeout)       p.wait() / p.wait_for(t) -> std::optional<int> (a value on timeout)
//   p.poll(), p.returncode           p.poll(), p.returncode()   (-N: killed by signal N)
//   gevent.wait([p]), iwait          fern::wait({p}), IWait({p, task, event}) (SP-3): ready once
//                                    the child has exited; poll() then reaps it and gives the code
//   p.send_signal/terminate/kill     same
//   run(args, input, timeout, check, capture_output)  run(args, RunOptions) -> CompletedProcess
// A missing executable throws std::system_error (ENOENT) from the
// constructor (SP-4); no program, or a NUL byte inside an argument, an
// environment entry or cwd, or Stdio::kStdout for stdin or stdout (it is
// for stderr only), throws std::invalid_argument before any child starts
// (Python: ValueError). The child is reaped through a pidfd where the kernel
// has one, else by polling waitpid with back-off; every fd fern opens is
// close-on-exec and closed once the Popen goes (SP-6); with the parent's
// fds 0-2 closed, a pipe that lands on the child's own stdio fd still
// reaches it and exec errors are still reported. The child starts with an
// empty signal mask and default handlers; a signal the parent ignores stays
// ignored (nohup), but SIGPIPE and SIGXFSZ (Python's restore_signals).
// Destroying a Popen
// whose child still runs kills and reaps it (as boost::process::child):
// no zombies. One thread: the hub's.
#include <sys/types.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fern/core/deadline.h"
#include "fern/io/fd_stream.h"
#include "fern/sync/wait_any.h"

namespace fern {

enum class Stdio { kInherit, kPipe, kDevNull, kStdout /* stderr only: into stdout */ };

struct PopenOptions {
  Stdio in = Stdio::kInherit;
  Stdio out = Stdio::kInherit;
  Stdio err = Stdio::kInherit;
  bool shell = false;  // args[0] is a /bin/sh -c command line
  bool text = false;   // universal newlines + UTF-8 check on communicate's output (SP-2)
  std::optional<std::string> cwd;
  // "K=V" entries; none: inherit. With an env, a program named without a
  // '/' is looked up on its PATH (Python's), else "/bin:/usr/bin".
  std::optional<std::vector<std::string>> env;
};

struct Output {
  std::string out;
  std::string err;
};

// communicate/run ran out of time (Python's TimeoutExpired); carries what
// had been read so far.
class TimeoutExpired : public std::runtime_error {
 public:
  TimeoutExpired(const std::string& cmd, Duration timeout, Output partial);
  Output output;
  double timeout_seconds;
};

// Text mode and the output is not UTF-8 (UnicodeDecodeError): where the
// first bad byte is, and which stream.
class DecodeError : public std::runtime_error {
 public:
  DecodeError(const char* stream, std::size_t offset);
  std::size_t offset;
};

// run(check = true) and the child exited non-zero (CalledProcessError).
class CalledProcessError : public std::runtime_error {
 public:
  CalledProcessError(const std::string& cmd, int returncode, Output output);
  int returncode;
  Output output;
};

class Popen {
 public:
  // Starts the child; throws std::system_error with the exec errno
  // (ENOENT for a missing program, SP-4). Blocks (switches to the hub)
  // until the child has exec'd; a kill meanwhile kills and reaps the child.
  explicit Popen(std::vector<std::string> args, PopenOptions options = {});
  Popen(Popen&&) noexcept;
  Popen& operator=(Popen&&) = delete;
  Popen(const Popen&) = delete;
  Popen& operator=(const Popen&) = delete;
  ~Popen();

  pid_t pid() const noexcept { return pid_; }
  std::optional<int> returncode() const noexcept { return returncode_; }
  // The parent's ends of the pipes asked for (empty otherwise).
  FdStream& stdin_pipe() noexcept { return in_; }
  FdStream& stdout_pipe() noexcept { return out_; }
  FdStream& stderr_pipe() noexcept { return err_; }

  // Reaps the child if it has exited; its code, else nullopt. No switch.
  // A child whose status is gone (SIGCHLD ignored: the kernel reaped it)
  // gives 0, as in Python.
  // poll, wait and wait_until throw std::logic_error on a moved-from Popen.
  std::optional<int> poll();
  // Blocks (switches to the hub) until the child exits; its code (SP-1).
  // Any number of greenlets may wait, and poll() from another greenlet
  // meanwhile: all of them get the code. A Popen destroyed meanwhile (its
  // child killed and reaped) is not touched again: the wait throws
  // FdClosedError (its pidfd closed, as a Socket's recv does) or, without
  // a pidfd, std::logic_error; communicate() throws FdClosedError.
  int wait();
  // As wait(), at most until the deadline: nullopt if still running.
  std::optional<int> wait_until(Deadline d);
  std::optional<int> wait_for(Duration d) { return wait_until(d.from_now()); }
  // What fern::wait and IWait watch (SP-3, a Popen converts to it): ready
  // once the child has exited, without reaping it. The first call starts an
  // exit watch (the pidfd's, else a waitid(WNOWAIT) peek on a back-off
  // timer) that lives as long as the Popen and follows it when it moves;
  // like any waited-for child it keeps the loop running until the exit.
  Waitable waitable();

  // Writes input to stdin (then closes it), reads stdout and stderr to
  // their end concurrently, waits for the child (SP-2). Blocks. On
  // timeout throws TimeoutExpired with the partial output; the child keeps
  // running, and a later communicate() carries on (with the first call's
  // input). Input for a child whose stdin is not an open pipe is
  // std::invalid_argument (Python drops it silently).
  Output communicate(std::string_view input = {}, std::optional<Duration> timeout = std::nullopt);

  // kill(2) unless already reaped (a no-op then). SIGTERM / SIGKILL.
  void send_signal(int signo);
  void terminate();
  void kill();

  const std::string& command() const noexcept { return command_; }

 private:
  void reaped(int status) noexcept;
  bool try_reap();
  bool wait_pidfd(Deadline d, const std::shared_ptr<const bool>& alive);

  struct Exit;  // waitable()'s: an Event and what sets it
  struct ExitDeleter {
    void operator()(Exit* e) const noexcept;
  };

  std::string command_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int pidfd_waiters_ = 0;  // greenlets in wait_pidfd
  std::optional<int> returncode_;
  FdStream in_, out_, err_;
  Output partial_;        // what communicate read before a timeout
  std::string pending_;   // communicate's input, until all of it is written
  std::size_t written_ = 0;  // how much of pending_ is (an offset: no erase of the front, linear in the size)
  bool input_taken_ = false;
  bool text_ = false;
  std::unique_ptr<Exit, ExitDeleter> exit_;
  // Made by the first wait that blocks, false once this Popen is destroyed;
  // a moved-to Popen has its own (the old one's waiters stay with it).
  std::shared_ptr<bool> alive_;
};

struct RunOptions {
  std::optional<std::string> input;  // fed to stdin through a pipe
  std::optional<Duration> timeout;
  bool capture_output = false;
  bool check = false;
  PopenOptions popen;
};

struct CompletedProcess {
  std::vector<std::string> args;
  int returncode;
  Output output;
};

// Runs args to completion (subprocess.run): on timeout kills the child,
// reaps it and throws TimeoutExpired with the partial output (SP-5); with
// check, a non-zero exit throws CalledProcessError. Blocks. input with a
// popen.in other than kInherit, or capture_output with a popen.out or
// popen.err other than kInherit, throws std::invalid_argument before any
// child starts (Python's ValueError).
CompletedProcess run(std::vector<std::string> args, RunOptions options = {});

}  // namespace fern
