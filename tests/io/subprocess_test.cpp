// Subprocess: SEMANTICS SP-1..SP-6, and from issue 8: a child that is
// killed, that never exits (timeout), that closes its pipes early. Ported
// in spirit from gevent's test__subprocess.py.
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "fern/core/task.h"
#include "fern/io/subprocess.h"
#include "fern/io/wait.h"
#include "fern/sync/event.h"
#include "fern/sync/wait_any.h"
#include "io_fixture.h"

namespace {

using fern::Popen;
using fern::PopenOptions;
using fern::Stdio;
using SubprocessIo = fern::testing::IoTest;

PopenOptions pipes(bool in, bool out, bool err) {
  PopenOptions o;
  if (in) o.in = Stdio::kPipe;
  if (out) o.out = Stdio::kPipe;
  if (err) o.err = Stdio::kPipe;
  return o;
}

// SP-1: wait() blocks only the caller and returns the exit code
TEST_F(SubprocessIo, WaitReturnsTheExitCodeWhileOtherGreenletsRun) {
  Popen p({"/bin/sh", "-c", "sleep 0.05; exit 10"});
  auto other = fern::spawn([&] { log.push_back("other ran"); });
  EXPECT_EQ(p.wait(), 10);
  log.push_back("waited");
  other.join();
  EXPECT_EQ(log, (std::vector<std::string>{"other ran", "waited"}));
  EXPECT_EQ(p.returncode(), 10);
}

// SP-2: stdin fed and both outputs read concurrently (more than a pipe holds)
TEST_F(SubprocessIo, CommunicateFeedsStdinAndReadsBothStreamsConcurrently) {
  // Bytes that differ with their position (a period prime to any pipe's
  // size): a part written twice, or skipped, shows in the output.
  std::string input(1 << 20, 'a');
  for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<char>('a' + i % 23);
  for (std::size_t i = 0; i < input.size(); i += 4096) input[i] = '\n';
  Popen p({"/bin/sh", "-c", "cat; cat /dev/null; printf err >&2; head -c 200000 /dev/zero >&2"}, pipes(true, true, true));
  fern::Output out = p.communicate(input);
  EXPECT_EQ(out.out.size(), input.size());
  EXPECT_TRUE(out.out == input);
  EXPECT_EQ(out.err.size(), 3u + 200000u);
  EXPECT_EQ(out.err.substr(0, 3), "err");
  EXPECT_EQ(p.returncode(), 0);
}

// SP-2: text mode (universal newlines): "\r\n" and "\r" become "\n", UTF-8
// passes; bytes mode leaves everything as it came.
TEST_F(SubprocessIo, TextModeTranslatesNewlinesAndKeepsUtf8) {
  const char* script = "printf 'a\\r\\nb\\rc\\n\\303\\251\\342\\202\\254'; printf 'x\\r\\n' >&2";
  fern::PopenOptions text = pipes(false, true, true);
  text.text = true;
  Popen t({"/bin/sh", "-c", script}, text);
  fern::Output out = t.communicate();
  EXPECT_EQ(out.out, "a\nb\nc\n\xC3\xA9\xE2\x82\xAC");
  EXPECT_EQ(out.err, "x\n");
  Popen b({"/bin/sh", "-c", script}, pipes(false, true, true));
  EXPECT_EQ(b.communicate().out, "a\r\nb\rc\n\xC3\xA9\xE2\x82\xAC");
}

// SP-2: undecodable output in text mode is a typed error naming where
// (UnicodeDecodeError); overlong forms and surrogates count as undecodable.
TEST_F(SubprocessIo, TextModeRejectsOutputThatIsNotUtf8) {
  for (const char* bytes : {"ok\\377", "ab\\300\\257", "\\355\\240\\200", "abc\\342\\202"}) {
    fern::PopenOptions text = pipes(false, true, false);
    text.text = true;
    Popen p({"/bin/sh", "-c", std::string("printf '") + bytes + "'"}, text);
    try {
      p.communicate();
      ADD_FAILURE() << bytes << " was accepted";
    } catch (const fern::DecodeError& e) {
      EXPECT_EQ(e.offset, bytes[0] == '\\' ? 0u : std::string(bytes).find('\\')) << bytes;
    }
    EXPECT_EQ(p.returncode(), 0);
  }
}

// SP-3
TEST_F(SubprocessIo, PollIsEmptyWhileRunningThenGivesTheCode) {
  Popen p({"/bin/sh", "-c", "read line; exit 3"}, pipes(true, false, false));
  EXPECT_EQ(p.poll(), std::nullopt);
  p.stdin_pipe().write_all("go\n");
  p.stdin_pipe().close();
  EXPECT_EQ(p.wait(), 3);
  EXPECT_EQ(p.poll(), 3);
}

// SP-3 (test__subprocess test_wait): gevent.wait([p]) is fern::wait({p}):
// ready once the child has exited, in the order things became ready among
// other objects; poll() then reaps it and gives the code.
TEST_F(SubprocessIo, APopenIsWaitableAndPollThenGivesTheCode) {
  Popen p({"/bin/sh", "-c", "read line; exit 3"}, pipes(true, false, false));
  fern::Event never;
  auto first = fern::spawn([] {});
  EXPECT_EQ(fern::wait({p, never, first}, fern::WaitAny().count(1)), (std::vector<std::size_t>{2}));
  p.stdin_pipe().write_all("go\n");
  p.stdin_pipe().close();
  EXPECT_EQ(fern::wait({never, p}, fern::WaitAny().count(1)), (std::vector<std::size_t>{1}));
  EXPECT_EQ(p.returncode(), std::nullopt);  // waiting does not reap
  EXPECT_EQ(p.poll(), 3);
  EXPECT_EQ(fern::wait({p}), (std::vector<std::size_t>{0}));  // ready from then on
}

// The exit watch follows the Popen when it moves, goes with it (a watched
// Popen destroyed: never ready, nothing dangles), and a child reaped
// through wait() first makes it ready too.
TEST_F(SubprocessIo, APopenStaysWaitableWhenMovedAndAfterItsWait) {
  Popen p({"/bin/sh", "-c", "read line; exit 4"}, pipes(true, false, false));
  fern::IWait it({p});
  Popen q(std::move(p));
  q.stdin_pipe().write_all("go\n");
  q.stdin_pipe().close();
  EXPECT_EQ(it.next(), std::optional<std::size_t>(0));
  EXPECT_EQ(q.wait(), 4);
  Popen r({"/bin/sleep", "30"});
  auto killer = fern::spawn([&] {
    r.kill();
    EXPECT_EQ(r.wait(), -SIGKILL);
  });
  EXPECT_EQ(fern::wait({r}), (std::vector<std::size_t>{0}));
  killer.join();
  {
    auto gone = std::make_unique<Popen>(std::vector<std::string>{"/bin/sleep", "30"});
    fern::IWait watching({*gone}, fern::WaitAny().within(0.001));
    gone.reset();  // killed and reaped by its destructor, while watched
    EXPECT_EQ(watching.next(), std::nullopt);
  }
  EXPECT_THROW(p.waitable(), std::logic_error);  // moved from
}

// Makes pidfd_open(2) fail with ENOSYS in this process from now on, as an
// old kernel or a container's seccomp profile does. False if it cannot.
bool deny_pidfd_open() {
#ifdef SYS_pidfd_open
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_open, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
#else
  return false;
#endif
}

// SP-1, SP-3 without a pidfd: wait() and the waitable poll the child with
// back-off instead (1 ms doubling to 50 ms), and give the same answers.
// In a fork child whose seccomp filter refuses pidfd_open.
TEST_F(SubprocessIo, WithoutAPidfdWaitAndTheWaitablePollTheChild) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer models greenlets as threads and does not follow them into a fork child";
#endif
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (!deny_pidfd_open()) std::_Exit(77);
    int code = 0;
    if (::syscall(SYS_pidfd_open, ::getpid(), 0) >= 0 || errno != ENOSYS) code |= 32;  // refused indeed
    try {
      Popen a({"/bin/sh", "-c", "exit 5"});
      Popen b({"/bin/sh", "-c", "read line; exit 6"}, pipes(true, false, false));
      fern::Event never;
      if (fern::wait({never, a}, fern::WaitAny().count(1)) != std::vector<std::size_t>{1}) code |= 1;
      if (a.returncode() || a.poll() != 5) code |= 2;
      auto waiter = fern::spawn([&] {
        if (b.wait() != 6) code |= 4;
      });
      fern::sleep(0);
      b.stdin_pipe().write_all("go\n");
      b.stdin_pipe().close();
      if (fern::wait({b}) != std::vector<std::size_t>{0}) code |= 8;
      waiter.join();
    } catch (...) {
      code |= 16;
    }
    fern::Hub::destroy_current();
    std::_Exit(code);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "no seccomp filter here (qemu-user?)";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// SP-4
TEST_F(SubprocessIo, AMissingExecutableRaisesEnoentFromTheConstructor) {
  try {
    Popen p({"/nonexistent/fern-no-such-program"}, pipes(true, true, true));
    FAIL();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
  }
}

// exec takes C strings: an argument, environment entry or cwd with a NUL
// inside is refused before any child starts, instead of being cut short.
TEST_F(SubprocessIo, AnEmbeddedNulIsRefusedBeforeAnyChildStarts) {
  using namespace std::string_literals;
  EXPECT_THROW(Popen({"echo", "a\0b"s}), std::invalid_argument);
  EXPECT_THROW(Popen({"/bin/tr\0ue"s}), std::invalid_argument);
  EXPECT_THROW(Popen({"true"}, {.env = std::vector<std::string>{"A=1\0B=2"s}}), std::invalid_argument);
  EXPECT_THROW(Popen({"true"}, {.cwd = "/\0tmp"s}), std::invalid_argument);
  EXPECT_THROW(Popen({}), std::invalid_argument);
}

// Stdio::kStdout is stderr's only: for stdin or stdout it would silently
// leave the parent's in place, so it is refused as the NULs are.
TEST_F(SubprocessIo, StdoutAsStdinOrStdoutIsRefusedBeforeAnyChildStarts) {
  EXPECT_THROW(Popen({"true"}, {.in = Stdio::kStdout}), std::invalid_argument);
  EXPECT_THROW(Popen({"true"}, {.out = Stdio::kStdout}), std::invalid_argument);
  Popen ok({"sh", "-c", "echo both >&2"}, {.out = Stdio::kPipe, .err = Stdio::kStdout});
  EXPECT_EQ(ok.communicate().out, "both\n");
}

// SP-2: input for a child whose stdin is not a pipe, or whose pipe was
// closed already, has nowhere to go: communicate refuses it instead of
// dropping it, and a plain communicate after the refusal goes on.
TEST_F(SubprocessIo, CommunicateRefusesInputTheChildsStdinCannotTake) {
  Popen p({"cat"}, {.in = Stdio::kDevNull, .out = Stdio::kPipe});
  EXPECT_THROW(p.communicate("lost"), std::invalid_argument);
  EXPECT_EQ(p.communicate().out, "");
  Popen q({"cat"}, pipes(true, true, false));
  q.stdin_pipe().close();
  EXPECT_THROW(q.communicate("lost"), std::invalid_argument);
  EXPECT_EQ(q.communicate().out, "");
  EXPECT_EQ(q.returncode(), 0);
}

// SP-5: a child that never exits: run kills it and raises with the partial output
TEST_F(SubprocessIo, RunWithATimeoutKillsTheChildAndRaisesWithPartialOutput) {
  fern::RunOptions o;
  o.timeout = 0.2;
  o.capture_output = true;
  fern::Nanos start = fern::monotonic_now();
  try {
    fern::run({"/bin/sh", "-c", "echo partial; echo warn >&2; exec sleep 30"}, o);
    FAIL();
  } catch (const fern::TimeoutExpired& e) {
    EXPECT_EQ(e.output.out, "partial\n");
    EXPECT_EQ(e.output.err, "warn\n");
    EXPECT_DOUBLE_EQ(e.timeout_seconds, 0.2);
  }
  EXPECT_LT(fern::monotonic_now() - start, 5'000'000'000);
}

// SP-5
TEST_F(SubprocessIo, RunWithCheckRaisesCalledProcessError) {
  fern::RunOptions o;
  o.check = true;
  o.capture_output = true;
  try {
    fern::run({"/bin/sh", "-c", "echo out; exit 4"}, o);
    FAIL();
  } catch (const fern::CalledProcessError& e) {
    EXPECT_EQ(e.returncode, 4);
    EXPECT_EQ(e.output.out, "out\n");
  }
  auto done = fern::run({"/bin/echo", "fine"}, [] {
    fern::RunOptions r;
    r.capture_output = true;
    r.input = std::string("ignored");
    return r;
  }());
  EXPECT_EQ(done.returncode, 0);
  EXPECT_EQ(done.output.out, "fine\n");
}

// SP-5 (test_check_output_stdin_with_input_arg): input comes through a pipe
// run makes, so a stdin given as well is refused before any child starts,
// as a stdout or stderr given with capture_output (Python's ValueError).
TEST_F(SubprocessIo, RunRefusesInputWithStdinAndCaptureOutputWithStdout) {
  fern::RunOptions input_and_stdin;
  input_and_stdin.input = std::string("hello");
  input_and_stdin.popen.in = Stdio::kDevNull;
  EXPECT_THROW(fern::run({"/nonexistent/fern-never-run"}, input_and_stdin), std::invalid_argument);
  input_and_stdin.popen.in = Stdio::kPipe;
  EXPECT_THROW(fern::run({"/nonexistent/fern-never-run"}, input_and_stdin), std::invalid_argument);
  for (Stdio PopenOptions::*which : {&PopenOptions::out, &PopenOptions::err}) {
    fern::RunOptions capture_and_stdout;
    capture_and_stdout.capture_output = true;
    capture_and_stdout.popen.*which = Stdio::kDevNull;
    EXPECT_THROW(fern::run({"/nonexistent/fern-never-run"}, capture_and_stdout), std::invalid_argument);
  }
  fern::RunOptions fine;
  fine.input = std::string("fed");
  fine.popen.out = Stdio::kPipe;
  EXPECT_EQ(fern::run({"cat"}, fine).output.out, "fed");
}

// A signal the parent ignores stays ignored in the child (nohup's SIGHUP,
// as exec and Python's Popen keep it), except SIGPIPE and SIGXFSZ, which go
// back to the default (Python's restore_signals): a caught one is reset.
TEST_F(SubprocessIo, TheChildKeepsIgnoredSignalsButSigpipe) {
  struct sigaction ignore {}, old_hup {}, old_pipe {}, old_usr1 {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGHUP, &ignore, &old_hup), 0);
  ASSERT_EQ(sigaction(SIGPIPE, &ignore, &old_pipe), 0);
  struct sigaction caught {};
  caught.sa_handler = [](int) {};
  ASSERT_EQ(sigaction(SIGUSR1, &caught, &old_usr1), 0);
  fern::RunOptions o;
  o.capture_output = true;
  fern::CompletedProcess r = fern::run({"grep", "SigIgn", "/proc/self/status"}, o);
  fern::CompletedProcess hup = fern::run({"/bin/sh", "-c", "kill -HUP $$; echo alive"}, o);
  sigaction(SIGHUP, &old_hup, nullptr);
  sigaction(SIGPIPE, &old_pipe, nullptr);
  sigaction(SIGUSR1, &old_usr1, nullptr);
  ASSERT_EQ(r.returncode, 0);
  const unsigned long long ignored = std::stoull(r.output.out.substr(r.output.out.find(':') + 1), nullptr, 16);
  EXPECT_TRUE(ignored & (1ULL << (SIGHUP - 1))) << r.output.out;
  EXPECT_FALSE(ignored & (1ULL << (SIGPIPE - 1))) << r.output.out;
  EXPECT_FALSE(ignored & (1ULL << (SIGUSR1 - 1))) << r.output.out;
  EXPECT_EQ(hup.returncode, 0);
  EXPECT_EQ(hup.output.out, "alive\n");
}

// SIGCHLD ignored: the kernel reaps children itself and their status is
// lost. As Python's Popen, wait and poll then give 0 instead of failing
// with ECHILD (and another greenlet's wait too).
TEST_F(SubprocessIo, WithSigchldIgnoredAChildThatExitedReturnsZero) {
  struct sigaction ignore {}, old {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGCHLD, &ignore, &old), 0);
  std::optional<int> waited, polled;
  std::string error;
  try {
    Popen p({"/bin/sh", "-c", "exit 3"});
    Popen q({"/bin/sh", "-c", "exit 5"});
    waited = p.wait();
    siginfo_t info{};
    // Blocks until q has exited, then fails: the kernel reaped it already.
    EXPECT_EQ(::waitid(P_PID, q.pid(), &info, WEXITED | WNOWAIT), -1);
    polled = q.poll();
  } catch (const std::exception& e) {
    error = e.what();
  }
  sigaction(SIGCHLD, &old, nullptr);
  EXPECT_EQ(error, "");
  EXPECT_EQ(waited, 0);
  EXPECT_EQ(polled, 0);
}

// A killed child reports minus the signal
TEST_F(SubprocessIo, AKilledChildReportsMinusTheSignal) {
  Popen a({"/bin/sleep", "30"});
  a.kill();
  EXPECT_EQ(a.wait(), -SIGKILL);
  Popen b({"/bin/sleep", "30"});
  b.terminate();
  EXPECT_EQ(b.wait(), -SIGTERM);
  b.kill();  // after reaping: a no-op
}

// A child that never exits: wait_for is a value on timeout
TEST_F(SubprocessIo, WaitForReturnsNothingWhileTheChildRuns) {
  Popen p({"/bin/sleep", "30"});
  EXPECT_EQ(p.wait_for(0.02), std::nullopt);
  p.kill();
  EXPECT_EQ(p.wait_for(5.0), -SIGKILL);
}

// A child that closes its pipes early: communicate loses nothing it could have
TEST_F(SubprocessIo, AChildClosingItsPipesEarlyEndsCommunicateCleanly) {
  Popen p({"/bin/sh", "-c", "echo early; exec 0<&- 1>&- 2>&-; sleep 0.05; exit 0"}, pipes(true, true, true));
  std::string big(4 << 20, 'x');  // more than the pipe holds: the write meets EPIPE
  fern::Output out = p.communicate(big);
  EXPECT_EQ(out.out, "early\n");
  EXPECT_EQ(out.err, "");
  EXPECT_EQ(p.returncode(), 0);
}

// communicate with a timeout on a child that never exits: the output so far
// travels with the error and is kept for the next communicate (as Python's)
TEST_F(SubprocessIo, CommunicateTimeoutKeepsTheOutputForTheNextCall) {
  Popen p({"/bin/sh", "-c", "echo one; exec sleep 30"}, pipes(false, true, false));
  try {
    p.communicate({}, 0.05);
    FAIL();
  } catch (const fern::TimeoutExpired& e) {
    EXPECT_EQ(e.output.out, "one\n");
  }
  EXPECT_EQ(p.poll(), std::nullopt);
  p.kill();
  EXPECT_EQ(p.communicate().out, "one\n");
  EXPECT_EQ(p.returncode(), -SIGKILL);
}

// SP-6: no fds leak into the child; the fixture checks none leak here
TEST_F(SubprocessIo, TheChildInheritsOnlyItsStdio) {
  int stray = fcntl(0, F_DUPFD, 100);  // not close-on-exec
  ASSERT_GE(stray, 100);
  fern::RunOptions o;
  o.capture_output = true;
  auto r = fern::run({"/bin/sh", "-c", "ls /proc/$$/fd"}, o);
  ::close(stray);
  EXPECT_EQ(r.output.out.find(std::to_string(stray)), std::string::npos) << r.output.out;
}

// SP-6: no zombies: destroying a Popen with a live child kills and reaps it
TEST_F(SubprocessIo, DestroyingARunningPopenKillsAndReapsTheChild) {
  pid_t pid;
  {
    Popen p({"/bin/sleep", "30"});
    pid = p.pid();
  }
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

// With an env of its own, a program named without a '/' is found on that
// env's PATH (Python's os.get_exec_path(env)), not on the parent's; a
// non-executable candidate is skipped, and nothing found is ENOENT.
TEST_F(SubprocessIo, AProgramIsLookedUpOnTheChildsOwnPath) {
  char dir_template[] = "/tmp/fern_path_XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template, first = dir + "/first", second = dir + "/second";
  ASSERT_EQ(::mkdir(first.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(second.c_str(), 0700), 0);
  auto write_script = [](const std::string& path, mode_t mode) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    const std::string text = "#!/bin/sh\necho found in $0\n";
    EXPECT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
  };
  write_script(first + "/fern-path-probe", 0600);   // not executable: skipped
  write_script(second + "/fern-path-probe", 0700);
  PopenOptions o = pipes(false, true, false);
  o.env = std::vector<std::string>{"PATH=" + first + ":" + second};
  std::string out;
  try {
    out = Popen({"fern-path-probe"}, o).communicate().out;
  } catch (const std::exception& e) {
    out = e.what();
  }
  auto start_error_with_path = [&](const std::string& path) {
    o.env = std::vector<std::string>{"PATH=" + path};
    try {
      Popen p({"fern-path-probe"}, o);
    } catch (const std::system_error& e) {
      return e.code().value();
    }
    return 0;
  };
  const int only_unrunnable = start_error_with_path(first);
  const int none = start_error_with_path(dir);
  ::unlink((first + "/fern-path-probe").c_str());
  ::unlink((second + "/fern-path-probe").c_str());
  ::rmdir(first.c_str());
  ::rmdir(second.c_str());
  ::rmdir(dir.c_str());
  EXPECT_EQ(out, "found in " + second + "/fern-path-probe\n");
  EXPECT_EQ(only_unrunnable, EACCES);
  EXPECT_EQ(none, ENOENT);
}

TEST_F(SubprocessIo, ShellAndCwdAndEnvOptions) {
  PopenOptions o = pipes(false, true, false);
  o.shell = true;
  o.cwd = "/";
  o.env = std::vector<std::string>{"FERN_X=42", "PATH=/usr/bin:/bin"};
  Popen p({"pwd; echo $FERN_X"}, o);
  EXPECT_EQ(p.communicate().out, "/\n42\n");
}

// SP-1, SP-3: any number of greenlets may wait for one child (Python's and
// gevent's Popen.wait), and a poll() from another greenlet that reaps the
// child under a waiter leaves the waiter its code, not FdClosedError.
TEST_F(SubprocessIo, SeveralGreenletsWaitForOneChildAndAPollBesideThemReapsIt) {
  Popen p({"/bin/sh", "-c", "read line; exit 4"}, pipes(true, false, false));
  auto a = fern::spawn([&] { return p.wait(); });
  auto b = fern::spawn([&] { return p.wait(); });
  auto c = fern::spawn([&] { return p.wait_for(0.001); });  // leaves early, the others stay
  fern::sleep(0);  // all three wait
  EXPECT_EQ(c.get(), std::nullopt);
  p.stdin_pipe().write_all("go\n");
  p.stdin_pipe().close();
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, p.pid(), &info, WEXITED | WNOWAIT), 0);  // exited, not yet reaped
  EXPECT_EQ(p.poll(), 4);  // reaped here, before a and b run
  EXPECT_EQ(a.get(), 4);
  EXPECT_EQ(b.get(), 4);
  EXPECT_EQ(p.wait(), 4);
}

// A moved-from Popen has no child: poll and wait refuse, instead of
// waitpid(-1) reaping another Popen's child and losing its status.
TEST_F(SubprocessIo, AMovedFromPopenDoesNotReapSomeoneElsesChild) {
  Popen other({"/bin/sh", "-c", "exit 7"});
  Popen p({"/bin/true"});
  Popen q(std::move(p));
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, other.pid(), &info, WEXITED | WNOWAIT), 0);
  EXPECT_THROW(p.poll(), std::logic_error);
  EXPECT_THROW(p.wait(), std::logic_error);
  EXPECT_EQ(other.wait(), 7);
  EXPECT_EQ(q.wait(), 0);
}

// Python's Popen with the parent's stdio closed (a daemon): a pipe or
// /dev/null that lands on the very fd the child needs it on (0 for stdin)
// is still there after exec, and the error pipe never sits on 0-2 where
// the child's stdio would overwrite it (an exec failure reading as success).
TEST_F(SubprocessIo, WithTheParentsStdioClosedTheChildGetsItsPipesAndExecErrors) {
  int saved[3];
  for (int fd = 0; fd < 3; ++fd) saved[fd] = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  auto restore = [&] {
    for (int fd = 0; fd < 3; ++fd) {
      ::dup2(saved[fd], fd);
      ::close(saved[fd]);
    }
  };
  std::string echoed, missing_error;
  int devnull_rc = -1;
  ::close(0);
  try {
    Popen p({"cat"}, pipes(true, true, false));  // its stdin pipe's read end is fd 0
    echoed = p.communicate("through fd 0").out;
    PopenOptions o;
    o.in = Stdio::kDevNull;  // /dev/null opened as fd 0
    Popen q({"/bin/sh", "-c", "read x < /dev/stdin; exit $?"}, o);
    devnull_rc = q.wait();
  } catch (const std::exception& e) {
    echoed = e.what();
  }
  ::dup2(saved[0], 0);
  ::close(1);
  ::close(2);  // the error pipe is now [1, 2]
  try {
    PopenOptions o;
    o.err = Stdio::kStdout;  // dup2(1, 2): the error pipe's write end was fd 2
    Popen missing({"/nonexistent/fern-no-such-program"}, o);
    missing_error = "no error";
  } catch (const std::system_error& e) {
    missing_error = e.code() == std::errc::no_such_file_or_directory ? "ENOENT" : e.what();
  }
  restore();
  EXPECT_EQ(echoed, "through fd 0");
  EXPECT_EQ(devnull_rc, 1);  // read at end of /dev/null fails, not EBADF (2)
  EXPECT_EQ(missing_error, "ENOENT");
}

}  // namespace

namespace {

// test__subprocess.py::TestPopen::test_issue148: a missing program, tried
// again and again with every pipe asked for, is ENOENT each time and leaves
// no fd behind (the fixture counts them).
TEST_F(SubprocessIo, AMissingExecutableIsEnoentEveryTimeAndLeaksNoFd) {
  for (int i = 0; i < 7; ++i) {
    try {
      Popen p({"fern-this-name-must-not-exist"}, pipes(true, true, true));
      ADD_FAILURE() << "started a missing program";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ENOENT);
    }
  }
}

// RunFuncTestCase::test_capture_stderr, with more than a pipe holds on
// stderr before anything reaches stdout: both are drained, nothing lost.
TEST_F(SubprocessIo, RunCapturesAStderrLargerThanAPipeBeforeStdout) {
  fern::RunOptions o;
  o.capture_output = true;
  auto r = fern::run({"/bin/sh", "-c", "head -c 1000000 /dev/zero >&2; echo BDFL"}, o);
  EXPECT_EQ(r.returncode, 0);
  EXPECT_EQ(r.output.err.size(), 1000000u);
  EXPECT_EQ(r.output.err.find_first_not_of('\0'), std::string::npos);
  EXPECT_EQ(r.output.out, "BDFL\n");
}

// A child killed while communicate waits on its pipes: communicate ends
// with what was read and the child's -SIGKILL, it does not hang (SP-1, SP-2).
TEST_F(SubprocessIo, AChildKilledDuringCommunicateEndsIt) {
  Popen p({"/bin/sh", "-c", "printf start; exec sleep 30"}, pipes(true, true, true));
  auto killer = fern::spawn([&] { p.kill(); });
  fern::Output out = p.communicate();
  killer.join();
  EXPECT_TRUE(out.out.empty() || out.out == "start") << out.out;
  EXPECT_EQ(out.err, "");
  EXPECT_EQ(p.returncode(), -SIGKILL);
}

// A Popen destroyed (its child killed and reaped) while other greenlets
// wait in its wait(), wait_for() and communicate(): as a Socket's reader,
// each wakes with FdClosedError and touches nothing of it again (the
// AddressSanitizer build saw the waiters write into the freed Popen).
TEST_F(SubprocessIo, APopenDestroyedUnderItsWaitersWakesThemWithoutTouchingIt) {
  auto p = std::make_unique<Popen>(std::vector<std::string>{"sleep", "30"}, pipes(false, true, false));
  int closed = 0;
  auto expect_closed = [&](auto call) {
    return fern::spawn([&closed, call] {
      try {
        call();
        ADD_FAILURE() << "a wait on a destroyed Popen returned";
      } catch (const fern::FdClosedError&) {
        ++closed;
      }
    });
  };
  auto waiter = expect_closed([&p] { p->wait(); });
  auto timed = expect_closed([&p] { p->wait_for(30.0); });
  auto communicator = expect_closed([&p] { p->communicate(); });
  fern::sleep(0);
  p.reset();
  fern::joinall(waiter, timed, communicator);
  EXPECT_EQ(closed, 3);
}

// Writing to the stdin of a child that has exited is BrokenPipeError, not a
// SIGPIPE that kills the parent; its closed stream is EBADF after that,
// for every call (a write of nothing too).
TEST_F(SubprocessIo, WritingToAnExitedChildsStdinIsBrokenPipe) {
  Popen p({"/bin/true"}, pipes(true, true, false));
  EXPECT_EQ(p.wait(), 0);
  EXPECT_THROW(p.stdin_pipe().write_all(std::string(1 << 20, 'x')), fern::BrokenPipeError);
  EXPECT_EQ(p.stdout_pipe().read(16), "");  // the child's end closed: end of stream
  p.stdin_pipe().close();
  p.stdout_pipe().close();
  for (fern::FdStream* s : {&p.stdin_pipe(), &p.stdout_pipe(), &p.stderr_pipe()}) {
    try {
      s->write_all("x");
      ADD_FAILURE() << "wrote to a closed stream";
    } catch (const fern::SocketError& e) {
      EXPECT_EQ(e.code().value(), EBADF);
    }
    EXPECT_THROW(s->read(16), fern::SocketError);
    EXPECT_THROW(s->write_all(""), fern::SocketError);  // nothing to write is no excuse
  }
}

// Odd inputs to a running child: a NaN or negative wait_for is an
// immediate timeout (fern's rule for durations), a communicate with one
// raises TimeoutExpired at once and loses nothing, an invalid signal number
// is std::system_error EINVAL.
TEST_F(SubprocessIo, OddTimeoutsAndSignalsOnARunningChildAreTypedAnswers) {
  Popen p({"/bin/sh", "-c", "echo one; exec sleep 30"}, pipes(false, true, false));
  ASSERT_TRUE(fern::wait_read(p.stdout_pipe().fd()));  // "one" is in the pipe, unread
  EXPECT_EQ(p.wait_for(std::numeric_limits<double>::quiet_NaN()), std::nullopt);
  EXPECT_EQ(p.wait_for(-1.0), std::nullopt);
  EXPECT_THROW(p.communicate({}, std::numeric_limits<double>::quiet_NaN()), fern::TimeoutExpired);
  try {
    p.send_signal(12345);
    ADD_FAILURE() << "sent signal 12345";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EINVAL);
  }
  EXPECT_EQ(p.poll(), std::nullopt);
  p.kill();
  EXPECT_EQ(p.communicate().out, "one\n");
  EXPECT_EQ(p.returncode(), -SIGKILL);
}

}  // namespace
