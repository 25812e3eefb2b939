// fork + exec with a close-on-exec error pipe: the parent learns the exec
// errno (SP-4) or, at the pipe's EOF, that exec succeeded. Everything the
// child touches between fork and exec is prepared before the fork: the
// process may have other threads (the thread pool), so the child calls only
// async-signal-safe functions.
#include "fern/io/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "fern/core/hub.h"
#include "fern/core/task.h"
#include "fern/io/wait.h"

extern char** environ;

namespace fern {
namespace {

// The offset of the first byte that is not part of well-formed UTF-8
// (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF), or npos.
std::size_t invalid_utf8_at(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (n - i < len || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (std::size_t k = 2; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return i;
    i += len;
  }
  return std::string::npos;
}

// Python's universal newlines: "\r\n" and a lone "\r" become "\n".
std::string universal_newlines(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\r') out.push_back(s[i]);
    else {
      out.push_back('\n');
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    }
  }
  return out;
}

std::string decoded(const char* stream, const std::string& s) {
  std::size_t bad = invalid_utf8_at(s);
  if (bad != std::string::npos) throw DecodeError(stream, bad);
  return universal_newlines(s);
}

std::string join_args(const std::vector<std::string>& args) {
  std::string s;
  for (const std::string& a : args) s += (s.empty() ? "" : " ") + a;
  return s;
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
#else
  (void)pid;
  return -1;
#endif
}

[[noreturn]] void child_fail(int errpipe, int err) {
  ssize_t ignored = ::write(errpipe, &err, sizeof err);
  (void)ignored;
  _exit(127);
}

// In the child: close every fd from 3 up except keep.
void close_other_fds(int keep) {
#ifdef SYS_close_range
  if (keep > 3) ::syscall(SYS_close_range, 3u, static_cast<unsigned>(keep - 1), 0u);
  if (::syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0u, 0u) == 0) return;
#endif
  long max = sysconf(_SC_OPEN_MAX);
  for (int fd = 3; fd < max; ++fd)
    if (fd != keep) ::close(fd);
}

struct Pipe {
  int parent = -1, child = -1;
};

constexpr const char* kDestroyedUnderWait = "fern: Popen has no child (destroyed while this greenlet waited for it)";

}  // namespace

TimeoutExpired::TimeoutExpired(const std::string& cmd, Duration timeout, Output partial)
    : std::runtime_error("fern: command '" + cmd + "' timed out after " + std::to_string(timeout.seconds()) +
                         " seconds"),
      output(std::move(partial)), timeout_seconds(timeout.seconds()) {}

CalledProcessError::CalledProcessError(const std::string& cmd, int rc, Output out)
    : std::runtime_error("fern: command '" + cmd + "' returned non-zero exit status " + std::to_string(rc)),
      returncode(rc), output(std::move(out)) {}

DecodeError::DecodeError(const char* stream, std::size_t at)
    : std::runtime_error(std::string("fern: ") + stream + " is not UTF-8 (text mode): bad byte at offset " +
                         std::to_string(at)),
      offset(at) {}

Popen::Popen(std::vector<std::string> args, PopenOptions options) : text_(options.text) {
  if (args.empty()) throw std::invalid_argument("fern: Popen needs a program");
  // exec takes C strings: a NUL inside one would cut it short, silently
  // (Python: ValueError, embedded null byte).
  auto check_nul = [](const std::string& s, const char* what) {
    if (s.find('\0') != std::string::npos)
      throw std::invalid_argument(std::string("fern: Popen: embedded NUL byte in ") + what);
  };
  for (const std::string& a : args) check_nul(a, "an argument");
  if (options.env)
    for (const std::string& e : *options.env) check_nul(e, "an environment entry");
  if (options.cwd) check_nul(*options.cwd, "cwd");
  // Only stderr can go "into stdout"; elsewhere it would silently inherit.
  if (options.in == Stdio::kStdout || options.out == Stdio::kStdout)
    throw std::invalid_argument("fern: Popen: Stdio::kStdout is for stderr only (err = Stdio::kStdout)");
  if (options.shell) args = {"/bin/sh", "-c", join_args(args)};
  command_ = join_args(args);

  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (options.env) {
    for (std::string& e : *options.env) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
  char** child_env = options.env ? envp.data() : environ;
  const char* cwd = options.cwd ? options.cwd->c_str() : nullptr;
  // With an env of its own, a program named without a '/' is looked up on
  // that env's PATH (Python's os.get_exec_path(env); none there: its
  // default "/bin:/usr/bin"), not the parent's, which execvpe would read.
  // The candidates are made here: the child may not allocate.
  std::vector<std::string> candidates;
  if (options.env && args[0].find('/') == std::string::npos) {
    std::string path = "/bin:/usr/bin";
    for (const std::string& e : *options.env)
      if (e.compare(0, 5, "PATH=") == 0) path = e.substr(5);
    for (std::size_t at = 0;;) {
      std::size_t end = path.find(':', at);
      std::string dir = path.substr(at, end == std::string::npos ? std::string::npos : end - at);
      candidates.push_back((dir.empty() ? "." : dir) + "/" + args[0]);  // an empty entry: the cwd
      if (end == std::string::npos) break;
      at = end + 1;
    }
  }

  // Pipes are created close-on-exec; the child dup2s its ends onto 0-2.
  Pipe pipes[3];
  Stdio modes[3] = {options.in, options.out, options.err};
  int errpipe[2] = {-1, -1};
  auto close_all = [&] {
    for (Pipe& p : pipes)
      for (int fd : {p.parent, p.child})
        if (fd >= 0) ::close(fd);
    for (int fd : errpipe)
      if (fd >= 0) ::close(fd);
  };
  for (int i = 0; i < 3; ++i) {
    if (modes[i] == Stdio::kPipe) {
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC) < 0) {
        int err = errno;
        close_all();
        throw std::system_error(err, std::generic_category(), "fern: pipe");
      }
      pipes[i] = i == 0 ? Pipe{fds[1], fds[0]} : Pipe{fds[0], fds[1]};
    } else if (modes[i] == Stdio::kDevNull) {
      pipes[i].child = ::open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
      if (pipes[i].child < 0) {
        int err = errno;
        close_all();
        throw std::system_error(err, std::generic_category(), "fern: open /dev/null");
      }
    }
  }
  if (::pipe2(errpipe, O_CLOEXEC) < 0) {
    int err = errno;
    close_all();
    throw std::system_error(err, std::generic_category(), "fern: pipe");
  }
  // With the parent's 0-2 closed the error pipe may land there, where the
  // child's dup2s onto its stdio would overwrite it (and an exec failure
  // would read as success): it goes above 2 (Python's _fd_above_2).
  if (errpipe[1] <= 2) {
    int above = ::fcntl(errpipe[1], F_DUPFD_CLOEXEC, 3);
    int err = errno;
    ::close(std::exchange(errpipe[1], above));
    if (above < 0) {
      close_all();
      throw std::system_error(err, std::generic_category(), "fern: fcntl(F_DUPFD_CLOEXEC)");
    }
  }

  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    close_all();
    throw std::system_error(err, std::generic_category(), "fern: fork");
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Handlers go back to the default (exec would drop them anyway; until
    // then none may run here). What the parent ignores stays ignored, as
    // exec and Python keep it (nohup's SIGHUP), except SIGPIPE and SIGXFSZ:
    // Python's restore_signals, so `yes | head` in the child still ends.
    for (int sig = 1; sig < NSIG; ++sig) {
      struct sigaction current;
      if (sigaction(sig, nullptr, &current) != 0) continue;
      if (current.sa_handler == SIG_IGN && !(current.sa_flags & SA_SIGINFO) && sig != SIGPIPE && sig != SIGXFSZ)
        continue;
      signal(sig, SIG_DFL);
    }
    for (int i = 0; i < 3; ++i) {
      int src = pipes[i].child;
      if (i == 2 && modes[2] == Stdio::kStdout) src = 1;
      if (src < 0) continue;
      // Already in place (the parent had this fd closed, the pipe took it):
      // dup2 onto itself would leave it close-on-exec, lost at exec.
      if (src == i ? ::fcntl(i, F_SETFD, 0) < 0 : ::dup2(src, i) < 0) child_fail(errpipe[1], errno);
    }
    close_other_fds(errpipe[1]);
    if (cwd && ::chdir(cwd) < 0) child_fail(errpipe[1], errno);
    if (candidates.empty()) {
      ::execvpe(argv[0], argv.data(), child_env);
      child_fail(errpipe[1], errno);
    }
    // execvpe's search rules: go on past ENOENT, ENOTDIR and EACCES (the
    // first EACCES is reported if nothing runs), stop at any other error.
    int saved = ENOENT;
    for (const std::string& c : candidates) {
      ::execve(c.c_str(), argv.data(), child_env);
      if (errno == EACCES) saved = EACCES;
      else if (errno != ENOENT && errno != ENOTDIR) child_fail(errpipe[1], errno);
    }
    child_fail(errpipe[1], saved);
  }

  pid_ = pid;
  ::close(errpipe[1]);
  errpipe[1] = -1;
  for (Pipe& p : pipes)
    if (p.child >= 0) ::close(std::exchange(p.child, -1));
  // Until the child execs (EOF) or reports its errno, only this greenlet
  // waits: exec of a large program takes milliseconds (gevent reads this
  // pipe cooperatively too, so other greenlets run meanwhile).
  int child_errno = 0;
  ssize_t n;
  try {
    fcntl(errpipe[0], F_SETFL, O_NONBLOCK);
    while ((n = ::read(errpipe[0], &child_errno, sizeof child_errno)) < 0) {
      if (errno == EAGAIN) fern::wait_read(errpipe[0]);
      else if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "fern: read exec status");
    }
  } catch (...) {
    // Killed (or failed) while waiting: the child must not outlive us.
    close_all();
    ::kill(pid, SIGKILL);
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    throw;
  }
  ::close(errpipe[0]);
  errpipe[0] = -1;
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    close_all();
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    throw std::system_error(child_errno, std::generic_category(), "fern: cannot run '" + args[0] + "'");
  }
  pidfd_ = open_pidfd(pid);
  if (pipes[0].parent >= 0) in_ = FdStream(pipes[0].parent);
  if (pipes[1].parent >= 0) out_ = FdStream(pipes[1].parent);
  if (pipes[2].parent >= 0) err_ = FdStream(pipes[2].parent);
}

// SP-3: an Event set when the child exits, on the heap so that the Popen
// may move. The pidfd's watcher, or without a pidfd a timer that peeks
// with waitid(WNOWAIT) (1 ms doubling to 50 ms), sets it; neither reaps.
// Both leave the hub when the Popen goes (their hooks).
struct Popen::Exit {
  struct Watch : Hub::IoWatcher {
    Exit* exit = nullptr;
  };
  struct Peek : Timer {
    Exit* exit = nullptr;
    pid_t pid = -1;
    Nanos backoff = 1'000'000;
  };
  Event exited;
  Watch watch;
  Peek peek;

  void start(pid_t pid, int pidfd) {
    if (pidfd >= 0) {
      watch.exit = this;
      // Readable when the child exits; cancelled (fn with an error) only when
      // the pidfd is closed, after the reap: exited either way.
      watch.fn = [](Hub::IoWatcher* w, unsigned) {
        w->unlink();
        static_cast<Watch*>(w)->exit->exited.set();
      };
      if (Hub::current().watch_fd(pidfd, kReadable, &watch) == Hub::Watch::kStarted) return;
    }
    peek.exit = this;
    peek.pid = pid;
    peek.fn = [](Timer* t) {
      auto* p = static_cast<Peek*>(t);
      siginfo_t info{};
      int r;
      while ((r = ::waitid(P_PID, static_cast<id_t>(p->pid), &info, WEXITED | WNOHANG | WNOWAIT)) < 0 && errno == EINTR) {
      }
      // ECHILD: reaped by the kernel (SIGCHLD ignored), exited all the same.
      if ((r == 0 && info.si_pid == p->pid) || (r < 0 && errno == ECHILD)) return p->exit->exited.set();
      p->backoff = p->backoff * 2 > 50'000'000 ? 50'000'000 : p->backoff * 2;
      Hub& hub = Hub::current();
      hub.start_timer(p, Deadline::at(Deadline::saturating_add(hub.now(), p->backoff)));
    };
    Hub& hub = Hub::current();
    hub.start_timer(&peek, Deadline::at(Deadline::saturating_add(hub.now(), peek.backoff)));
  }
};

void Popen::ExitDeleter::operator()(Exit* e) const noexcept { delete e; }

Popen::Popen(Popen&& o) noexcept
    : command_(std::move(o.command_)), pid_(std::exchange(o.pid_, -1)), pidfd_(std::exchange(o.pidfd_, -1)),
      returncode_(o.returncode_), in_(std::move(o.in_)), out_(std::move(o.out_)), err_(std::move(o.err_)),
      partial_(std::move(o.partial_)), pending_(std::move(o.pending_)), written_(o.written_),
      input_taken_(o.input_taken_), text_(o.text_), exit_(std::move(o.exit_)) {}

Popen::~Popen() {
  if (alive_) *alive_ = false;  // a greenlet still in wait() touches nothing of it
  if (pid_ > 0 && !returncode_) {
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (pidfd_ >= 0) fern::close(pidfd_);
}

void Popen::reaped(int status) noexcept {
  if (WIFEXITED(status)) returncode_ = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) returncode_ = -WTERMSIG(status);
  else returncode_ = -1;
  if (exit_) exit_->exited.set();
  // A greenlet still waiting on the pidfd closes it when it leaves: closing
  // it under the waiter would wake it with FdClosedError instead of the code.
  if (pidfd_ >= 0 && pidfd_waiters_ == 0) fern::close(std::exchange(pidfd_, -1));
}

bool Popen::try_reap() {
  if (returncode_) return true;
  // A moved-from Popen has no child: waitpid(-1) would reap any child of
  // the process and take its status from its own Popen.
  if (pid_ <= 0) throw std::logic_error("fern: Popen has no child (moved from)");
  int status;
  pid_t r;
  while ((r = ::waitpid(pid_, &status, WNOHANG)) < 0 && errno == EINTR) {
  }
  if (r == pid_) {
    reaped(status);
    return true;
  }
  if (r < 0 && errno == ECHILD) {
    // Reaped by the kernel (SIGCHLD ignored: SIG_IGN or SA_NOCLDWAIT) or by
    // someone else: the status is gone. Python's rule: returncode 0.
    reaped(0);
    return true;
  }
  if (r < 0) throw std::system_error(errno, std::generic_category(), "fern: waitpid");
  return false;
}

std::optional<int> Popen::poll() {
  try_reap();
  return returncode_;
}

int Popen::wait() { return *wait_until(Deadline::never()); }

std::optional<int> Popen::wait_until(Deadline d) {
  double backoff = 0.001;
  // This Popen may be destroyed while the caller waits (another greenlet
  // drops it): after each wait, the token says whether it is still there.
  std::shared_ptr<const bool> alive;
  while (!try_reap()) {
    if (!alive) {
      if (!alive_) alive_ = std::make_shared<bool>(true);
      alive = alive_;
    }
    if (pidfd_ >= 0) {
      // The pidfd turns readable when the child exits. Destroyed meanwhile:
      // its close wakes the wait with FdClosedError.
      bool exited = wait_pidfd(d, alive);
      if (!*alive) throw std::logic_error(kDestroyedUnderWait);
      if (!exited) return std::nullopt;
      continue;
    }
    // No pidfd: poll with back-off (1 ms doubling to 50 ms).
    Nanos now = monotonic_now();
    if (d.expired(now)) return std::nullopt;
    double left = static_cast<double>(d.remaining(now)) / 1e9;
    fern::sleep(backoff < left ? backoff : left);
    if (!*alive) throw std::logic_error(kDestroyedUnderWait);
    backoff = backoff * 2 > 0.05 ? 0.05 : backoff * 2;
  }
  return returncode_;
}

Waitable Popen::waitable() {
  if (pid_ <= 0) throw std::logic_error("fern: Popen has no child (moved from)");
  if (!exit_) {
    exit_.reset(new Exit);
    if (returncode_) exit_->exited.set();
    else exit_->start(pid_, pidfd_);
  }
  return Waitable(exit_->exited);
}

// Any number of greenlets may wait on the pidfd (a watcher each). The last
// to leave closes it once the child has been reaped.
bool Popen::wait_pidfd(Deadline d, const std::shared_ptr<const bool>& alive) {
  ++pidfd_waiters_;
  struct Leave {
    Popen& p;
    const bool& alive;
    ~Leave() {
      if (!alive) return;  // destroyed under the wait: nothing of it is left to touch
      if (--p.pidfd_waiters_ == 0 && p.returncode_ && p.pidfd_ >= 0) fern::close(std::exchange(p.pidfd_, -1));
    }
  } leave{*this, *alive};
  return wait_read(pidfd_, d);
}

Output Popen::communicate(std::string_view input, std::optional<Duration> timeout) {
  Deadline d = timeout ? timeout->from_now() : Deadline::never();
  if (!input_taken_) {
    // Input with nowhere to go would be dropped without a word.
    if (!in_ && !input.empty())
      throw std::invalid_argument("fern: communicate: input given, but the child's stdin is not an open pipe "
                                  "(PopenOptions::in = Stdio::kPipe)");
    pending_.assign(input);
    input_taken_ = true;
    if (in_ && pending_.empty()) in_.close();
  }
  // One greenlet multiplexes the three pipes with a cooperative select.
  std::string buf(65536, '\0');  // on the heap: greenlet stacks are small
  while (in_ || out_ || err_) {
    std::vector<int> readable, writable;
    if (out_) readable.push_back(out_.fd());
    if (err_) readable.push_back(err_.fd());
    if (in_) writable.push_back(in_.fd());
    SelectResult ready = fern::select(readable, writable, {}, d);
    if (ready.readable.empty() && ready.writable.empty())
      throw TimeoutExpired(command_, timeout ? *timeout : Duration::forever(), partial_);
    for (int fd : ready.readable) {
      FdStream& s = fd == out_.fd() ? out_ : err_;
      std::size_t n = s.read(buf.data(), buf.size());
      if (n == 0) s.close();
      else (fd == out_.fd() ? partial_.out : partial_.err).append(buf.data(), n);
    }
    if (!ready.writable.empty()) {
      // Writable: this write does not block. A child that closed its stdin
      // early just does not get the rest.
      try {
        written_ += in_.write(pending_.data() + written_, pending_.size() - written_);
      } catch (const BrokenPipeError&) {
        written_ = pending_.size();
      }
      if (written_ == pending_.size()) {
        in_.close();
        pending_ = std::string();
        written_ = 0;
      }
    }
  }
  if (!wait_until(d)) throw TimeoutExpired(command_, timeout ? *timeout : Duration::forever(), partial_);
  Output out = std::move(partial_);
  partial_ = Output();
  if (text_) {
    out.out = decoded("stdout", out.out);
    out.err = decoded("stderr", out.err);
  }
  return out;
}

void Popen::send_signal(int signo) {
  if (returncode_ || pid_ <= 0) return;
  if (::kill(pid_, signo) < 0 && errno != ESRCH)
    throw std::system_error(errno, std::generic_category(), "fern: kill");
}

void Popen::terminate() { send_signal(SIGTERM); }
void Popen::kill() { send_signal(SIGKILL); }

CompletedProcess run(std::vector<std::string> args, RunOptions options) {
  // Python's ValueErrors (SP-5): input is fed through a pipe run makes, and
  // capture_output makes both output pipes; a stdio given as well conflicts.
  if (options.input && options.popen.in != Stdio::kInherit)
    throw std::invalid_argument("fern: run: stdin and input may not both be used");
  if (options.capture_output && (options.popen.out != Stdio::kInherit || options.popen.err != Stdio::kInherit))
    throw std::invalid_argument("fern: run: stdout and stderr may not be used with capture_output");
  if (options.input) options.popen.in = Stdio::kPipe;
  if (options.capture_output) {
    options.popen.out = Stdio::kPipe;
    options.popen.err = Stdio::kPipe;
  }
  Popen p(args, options.popen);
  Output out;
  try {
    out = p.communicate(options.input ? *options.input : std::string_view(), options.timeout);
  } catch (TimeoutExpired&) {
    p.kill();
    p.wait();
    throw;
  }
  int rc = *p.returncode();
  if (options.check && rc != 0) throw CalledProcessError(p.command(), rc, std::move(out));
  return CompletedProcess{std::move(args), rc, std::move(out)};
}

}  // namespace fern
