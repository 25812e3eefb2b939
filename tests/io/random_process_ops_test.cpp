// Seeded random programs over child processes, a thread pool and signal
// handlers, as a hostile user writes them: many tasks at once start
// children (/bin/sh scripts, cat fed through stdin, true/false, head that
// stops reading early, a missing program, a sleeper that is terminated,
// killed or dropped still running) and communicate with random input sizes
// and timeouts or wait from several tasks with timeouts; others spawn
// thread-pool jobs that return, throw, block or use fern inside their
// worker, waited on with timeouts, through fern::wait, or abandoned; others
// install, raise (kill of this process) and cancel SIGUSR1/SIGUSR2
// handlers; a few kill tasks at random. Whatever the interleaving: every
// exit code seen is the script's (or minus the first signal sent),
// communicate gives exactly the bytes the child wrote (a timeout's partial
// output a prefix of them), every job's outcome is its value or its
// exception, every error is a typed one, a handler runs in a task of its
// own, never more often than its signal was raised while it was installed,
// and after the last raise. Nothing hangs, every child is reaped, and no
// task, fd, timer or watcher is left behind (the fixture's checks).
// SP-1..SP-6, TP-2, TP-3, TP-5, TP-6, SIG-1, SIG-2.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "fern/core/task.h"
#include "fern/io/signal.h"
#include "fern/io/subprocess.h"
#include "fern/io/thread_pool.h"
#include "fern/sync/wait_any.h"
#include "io_fixture.h"

namespace {

using std::chrono::microseconds;
using RandomProcessOps = fern::testing::IoTest;

// A job's own failure, told apart from any other error by its id.
struct JobError : std::runtime_error {
  explicit JobError(int i) : std::runtime_error("job " + std::to_string(i)), id(i) {}
  int id;
};

// One child and what it must do.
struct Proc {
  Proc(std::vector<std::string> args, fern::PopenOptions o) : p(std::move(args), o) {}
  fern::Popen p;
  bool sleeper = false;  // runs until signalled: its code is minus the first signal sent
  bool text = false;
  bool stdin_open = false;  // a stdin pipe the owner has not closed: the child may wait on it
  int code = 0;             // the script's exit code
  int first_signal = 0;
  std::string input, out, err;  // fed; the bytes the child writes
  std::string text_out;         // text mode: what communicate gives for out (SP-2)
};

// One installation of a signal handler.
struct Epoch {
  int raises = 0;      // while installed
  int calls = 0;
  bool owed = false;   // raised since the last call
  bool misplaced = false;  // a call not in a task of its own
};

struct Slot {
  int signo;
  fern::SignalHandler handler;
  std::shared_ptr<Epoch> epoch;  // the one installed, or none
};

bool prefix_of(const std::string& part, const std::string& whole) { return whole.compare(0, part.size(), part) == 0; }

struct World {
  explicit World(std::uint32_t seed) : rng(seed) {}

  std::mt19937 rng;
  fern::ThreadPool pool{3};
  std::vector<fern::AnyTask> tasks;
  std::vector<pid_t> pids;
  Slot slots[2] = {{SIGUSR1, {}, nullptr}, {SIGUSR2, {}, nullptr}};
  std::vector<std::shared_ptr<Epoch>> epochs;
  std::shared_ptr<bool> raising = std::make_shared<bool>(false);  // inside kill(2)
  unsigned next_byte = 0;
  int next_job = 0;
  int unexpected = 0;
  std::string first_unexpected;

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }
  fern::Duration usec(int n) { return microseconds(pick(n)); }
  void expect(bool ok, const std::string& what) {
    if (!ok && unexpected++ == 0) first_unexpected = what;
  }
  void spawn(std::string name, std::function<void()> fn) {
    fern::AnyTask t = fern::spawn(std::move(fn)).core();
    t->set_name(std::move(name));
    tasks.push_back(std::move(t));
  }
  std::string bytes() {
    std::string s(pick(4) == 0 ? pick(200000) : pick(3000), '\0');
    for (char& c : s) c = static_cast<char>(next_byte++ * 7 + 3);
    return s;
  }

  void saw_code(const Proc& pr, int code) {
    int want = pr.sleeper ? -pr.first_signal : pr.code;
    expect((!pr.sleeper || pr.first_signal) && code == want,
           pr.p.command() + ": exit code " + std::to_string(code) + ", expected " + std::to_string(want));
  }
  void saw_output(const Proc& pr, const fern::Output& o, bool whole) {
    bool ok = whole && !pr.sleeper ? o.out == (pr.text ? pr.text_out : pr.out) && o.err == pr.err
                                   : prefix_of(o.out, pr.out) && prefix_of(o.err, pr.err);
    expect(ok, pr.p.command() + ": communicate gave " + std::to_string(o.out.size()) + "+" +
                   std::to_string(o.err.size()) + " bytes, not the child's " + std::to_string(pr.out.size()) + "+" +
                   std::to_string(pr.err.size()));
  }

  std::shared_ptr<Proc> start_child();
  void process_program();
  void finish_child(Proc& pr);
  std::optional<int> wait_once(Proc& pr, bool unbounded);
  void waiter(const std::shared_ptr<Proc>& pr);
  void run_program();
  void pool_program();
  void signal_program();
};

// A random child with its expectations; null for the missing program.
std::shared_ptr<Proc> World::start_child() {
  using fern::Stdio;
  fern::PopenOptions o;
  std::vector<std::string> args;
  std::string input, out, err;
  int code = 0;
  bool sleeper = false;
  switch (pick(8)) {
    case 0:
      code = pick(256);
      args = {"/bin/sh", "-c", "printf w" + std::to_string(code) + "; exit " + std::to_string(code)};
      o.out = pick(2) ? Stdio::kPipe : Stdio::kDevNull;
      if (o.out == Stdio::kPipe) out = "w" + std::to_string(code);
      break;
    case 1:
      code = pick(2);
      args = {code ? "false" : "true"};
      break;
    case 2:
      args = {"cat"};
      o.in = o.out = Stdio::kPipe;
      input = out = bytes();
      break;
    case 3:
      code = pick(4);
      args = {"/bin/sh", "-c", "cat; printf E >&2; exit " + std::to_string(code)};
      o.in = o.out = o.err = Stdio::kPipe;
      input = out = bytes();
      err = "E";
      break;
    case 4: {  // stops reading early: the rest of the input meets a closed pipe
      int n = pick(5000);
      args = {"head", "-c", std::to_string(n)};
      o.in = o.out = Stdio::kPipe;
      input = bytes();
      out = input.substr(0, n);
      break;
    }
    case 5:
      sleeper = true;
      args = {"/bin/sh", "-c", "printf S; exec sleep 10"};
      o.out = pick(2) ? Stdio::kPipe : Stdio::kDevNull;
      if (o.out == Stdio::kPipe) out = "S";
      break;
    case 6:  // text mode: universal newlines (SP-2)
      args = {"cat"};
      o.in = o.out = Stdio::kPipe;
      o.text = true;
      for (int n = pick(3000); n-- > 0;) input += "ab\r\n"[pick(4)];
      out = input;
      break;
    default:  // SP-4
      try {
        fern::Popen p({"/nonexistent/fern-no-such-program"}, o);
        expect(false, "a missing program started");
      } catch (const std::system_error& e) {
        expect(e.code().value() == ENOENT, std::string("a missing program: ") + e.what());
      }
      return nullptr;
  }
  auto pr = std::make_shared<Proc>(std::move(args), o);
  pids.push_back(pr->p.pid());
  pr->sleeper = sleeper;
  pr->stdin_open = o.in == Stdio::kPipe;
  pr->code = code;
  pr->input = std::move(input);
  pr->out = std::move(out);
  pr->err = std::move(err);
  pr->text = o.text;
  if (o.text) {  // "\r\n" and a lone "\r" become "\n"; a timeout's partial output stays raw
    for (std::size_t i = 0; i < pr->out.size(); ++i) {
      pr->text_out += pr->out[i] == '\r' ? '\n' : pr->out[i];
      if (pr->out[i] == '\r' && i + 1 < pr->out.size() && pr->out[i + 1] == '\n') ++i;
    }
  }
  return pr;
}

// One wait in a random way (SP-1, SP-3): the code, or none yet. Unbounded
// only where the child ends by itself.
std::optional<int> World::wait_once(Proc& pr, bool unbounded) {
  switch (pick(4)) {
    case 0:
      return unbounded ? pr.p.wait() : pr.p.wait_for(usec(3000));
    case 1:
      return pr.p.wait_for(usec(2000));
    case 2:
      if (fern::wait({pr.p}, fern::WaitAny().within(usec(2000))).empty()) return std::nullopt;
      expect(pr.p.poll().has_value(), pr.p.command() + ": ready to fern::wait but poll() gave nothing");
      return pr.p.returncode();
    default:
      if (std::optional<int> code = pr.p.poll()) return code;
      fern::sleep(usec(500));
      return std::nullopt;
  }
}

// Another task waits a few times, and may be killed meanwhile.
void World::waiter(const std::shared_ptr<Proc>& pr) {
  for (int i = 0; i < 4; ++i)
    if (std::optional<int> code = wait_once(*pr, !pr->sleeper && !pr->stdin_open)) return saw_code(*pr, *code);
}

// Communicates under random timeouts (a timeout's partial output is a
// prefix, a later call carries on), else closes stdin and waits in one of
// the ways (SP-1..SP-3).
void World::finish_child(Proc& pr) {
  if (pick(3)) {
    for (int attempt = 0;; ++attempt) {
      std::optional<fern::Duration> timeout;
      if (attempt < 3 && pick(2)) timeout = usec(3000);
      try {
        fern::Output o = pr.p.communicate(pr.input, timeout);
        pr.stdin_open = false;
        saw_output(pr, o, true);
        expect(pr.p.returncode().has_value(), pr.p.command() + ": communicate returned before the exit");
        if (pr.p.returncode()) saw_code(pr, *pr.p.returncode());
        return;
      } catch (const fern::TimeoutExpired& e) {
        expect(timeout.has_value(), pr.p.command() + ": TimeoutExpired without a timeout");
        saw_output(pr, e.output, false);
      }
    }
  }
  if (pr.stdin_open) {
    pr.p.stdin_pipe().close();
    pr.stdin_open = false;
  }
  std::optional<int> code;
  while (!(code = wait_once(pr, true))) {
  }
  saw_code(pr, *code);
  expect(pr.p.poll() == pr.p.returncode() && pr.p.returncode().has_value(), pr.p.command() + ": poll() after the exit");
}

void World::process_program() {
  std::shared_ptr<Proc> pr = start_child();
  if (!pr) return;
  for (int n = pick(3); n-- > 0;)
    spawn("waiter of " + pr->p.command(), [this, pr] { waiter(pr); });
  if (pick(6) == 0) return;  // dropped, the child maybe still running: the last owner kills and reaps it
  if (!pr->sleeper) return finish_child(*pr);
  if (pr->p.stdout_pipe() && pick(2)) {
    try {
      pr->p.communicate({}, usec(2000));
      expect(false, "a sleeper's communicate returned");
    } catch (const fern::TimeoutExpired& e) {
      saw_output(*pr, e.output, false);
    }
  }
  if (pick(2)) expect(!pr->p.wait_for(usec(1000)), "a sleeper exited by itself");
  if (pick(4) == 0) return;  // dropped while running
  static constexpr int kSignals[] = {SIGKILL, SIGTERM, SIGHUP};
  for (int n = 1 + pick(2); n-- > 0;) {
    int sig = kSignals[pick(3)];
    if (!pr->first_signal) pr->first_signal = sig;
    if (sig == SIGKILL && pick(2)) pr->p.kill();
    else if (sig == SIGTERM && pick(2)) pr->p.terminate();
    else pr->p.send_signal(sig);
  }
  if (pr->p.stdout_pipe() && pick(2)) {
    fern::Output o = pr->p.communicate();
    saw_output(*pr, o, false);
    saw_code(*pr, pr->p.returncode().value_or(0));
  } else {
    saw_code(*pr, pr->p.wait());
  }
}

// SP-5: run with input, captured output, a random timeout and check.
void World::run_program() {
  fern::RunOptions ro;
  int code = pick(3);
  ro.input = bytes();
  ro.capture_output = true;
  ro.check = pick(2);
  if (pick(2)) ro.timeout = usec(5000);
  try {
    fern::CompletedProcess done = fern::run({"/bin/sh", "-c", "cat; exit " + std::to_string(code)}, ro);
    expect(done.returncode == code && done.output.out == *ro.input && done.output.err.empty(), "run's result");
    expect(!ro.check || code == 0, "run with check passed a non-zero exit");
  } catch (const fern::CalledProcessError& e) {
    expect(ro.check && code != 0 && e.returncode == code && e.output.out == *ro.input, "run's CalledProcessError");
  } catch (const fern::TimeoutExpired& e) {
    expect(ro.timeout && prefix_of(e.output.out, *ro.input), "run's TimeoutExpired");
  }
}

// TP-2..TP-6: jobs that return, throw, block their thread briefly or use
// fern in their worker's own hub; waited for, raced, or abandoned.
void World::pool_program() {
  const int id = next_job++, kind = pick(4), pause = pick(300);
  const long value = kind == 3 ? 7 + 10L * id : 1 + long(id) * id;
  auto job = [id, kind, pause]() -> long {
    if (kind == 1) throw JobError(id);
    if (kind == 2) std::this_thread::sleep_for(microseconds(pause));
    if (kind == 3) return fern::spawn([pause] {
                          fern::sleep(microseconds(pause));
                          return 7L;
                        }).get() + 10L * id;
    return 1 + long(id) * id;
  };
  auto outcome = [this, id, kind, value](auto&& get) {
    try {
      long v = get();
      expect(kind != 1 && v == value, "job " + std::to_string(id) + " gave " + std::to_string(v));
    } catch (const JobError& e) {
      expect(kind == 1 && e.id == id, "job " + std::to_string(id) + " threw job " + std::to_string(e.id) + "'s error");
    }
  };
  switch (pick(6)) {
    case 0:
      return outcome([&] { return pool.apply(job); });
    case 1:
      return outcome([&] {
        std::vector<long> got = pool.map([job, value](int x) { return x == 1 ? job() : value; }, std::vector<int>{0, 1, 2});
        expect(got == std::vector<long>(3, value), "map's results");
        return got[1];
      });
  }
  fern::ThreadResult<long> r = pool.spawn(job);
  for (int n = pick(3); n-- > 0;)
    spawn("job waiter", [this, r, outcome]() mutable {
      if (pick(2)) return outcome([&] { return r.get(); });
      if (r.wait_for(usec(1000))) outcome([&] { return r.get(); });
    });
  switch (pick(4)) {
    case 0:
      return outcome([&] { return r.get(); });
    case 1:
      while (!r.wait_for(usec(500))) {
      }
      return outcome([&] { return r.get(); });
    case 2:
      if (!fern::wait({r.async_result()}, fern::WaitAny().within(usec(1000))).empty()) {
        expect(r.ready() && r.successful() == (kind != 1), "a job's result after fern::wait");
        outcome([&] { return r.get(); });
      }
      return;
    default:
      return;  // abandoned: the job still runs, its result goes nowhere
  }
}

// SIG-1, SIG-2: installs, raises and cancels; a second install of an
// installed signal is refused.
void World::signal_program() {
  for (int n = pick(16); n-- > 0;) {
    Slot& s = slots[pick(2)];
    switch (pick(5)) {
      case 0: {
        auto e = std::make_shared<Epoch>();
        try {
          s.handler = fern::signal_handler(s.signo, [e, raising = raising] {
            ++e->calls;
            e->owed = false;
            if (*raising || !fern::current_task()) e->misplaced = true;
          });
          expect(!s.epoch, "a second handler installed for one signal");
          s.epoch = e;
          epochs.push_back(e);
        } catch (const std::invalid_argument&) {
          expect(s.epoch != nullptr, "a handler refused for a free signal");
        }
        break;
      }
      case 1:
      case 2:
        *raising = true;
        ::kill(::getpid(), s.signo);
        *raising = false;
        if (s.epoch) ++s.epoch->raises, s.epoch->owed = true;
        break;
      case 3:
        s.handler.cancel();
        s.epoch = nullptr;
        break;
      default:  // a round that polls lets the hub dispatch what is pending (F6)
        fern::sleep(pick(2) ? fern::Duration(0) : usec(300));
        break;
    }
  }
}

// SIGUSR1 and SIGUSR2 ignored while no fern handler is installed (a
// cancelled one restores this), as before the test afterwards.
struct IgnoredUserSignals {
  IgnoredUserSignals() {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGUSR1, &ignore, &old[0]);
    sigaction(SIGUSR2, &ignore, &old[1]);
  }
  ~IgnoredUserSignals() {
    sigaction(SIGUSR1, &old[0], nullptr);
    sigaction(SIGUSR2, &old[1], nullptr);
  }
  struct sigaction old[2];
};

class RandomProcessOpsSeeds : public RandomProcessOps, public ::testing::WithParamInterface<std::uint32_t> {};

TEST_P(RandomProcessOpsSeeds, CodesOutputsResultsAndSignalsAreExactlyWhatTheProgramsDid) {
  IgnoredUserSignals ignored;
  World w(GetParam());
  for (int i = 0; i < 6; ++i) w.spawn("process", [&w] { w.process_program(); });
  for (int i = 0; i < 2; ++i) w.spawn("run", [&w] { w.run_program(); });
  for (int i = 0; i < 6; ++i) w.spawn("pool", [&w] { w.pool_program(); });
  for (int i = 0; i < 3; ++i) w.spawn("signals", [&w] { w.signal_program(); });
  for (int i = 0; i < 2; ++i)
    w.spawn("killer", [&w] {
      for (int n = w.pick(4); n-- > 0;) {
        fern::sleep(w.usec(1500));
        fern::AnyTask& t = w.tasks[w.pick(int(w.tasks.size()))];
        if (t != fern::current_task()) t->kill_async();
      }
    });
  // Every program ends by itself: a task still running after 40,000 hub
  // rounds (20 s at least: room for qemu-user and sanitizers, where a seed
  // takes several times its 0.2 s) is a hang.
  auto all_dead = [&] {
    for (const auto& t : w.tasks)
      if (!t->dead()) return false;
    return true;
  };
  for (int round = 0; round < 40000 && !all_dead(); ++round) fern::sleep(microseconds(500));
  for (const auto& t : w.tasks) {
    EXPECT_TRUE(t->dead()) << "hung: " << t->name();
    if (auto e = t->exception()) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        ADD_FAILURE() << t->name() << " failed with an untyped error: " << x.what();
      } catch (...) {  // killed
      }
    }
  }
  std::vector<fern::AnyTask> all = w.tasks;
  fern::killall(all);
  w.tasks.clear();  // the last Popens go with the tasks' functions
  EXPECT_EQ(w.unexpected, 0) << w.first_unexpected;

  // SIG-1: a handler still installed runs after a last raise.
  for (Slot& s : w.slots) {
    if (!s.epoch) continue;
    ::kill(::getpid(), s.signo);
    ++s.epoch->raises, s.epoch->owed = true;
    // Each round polls (sleep(0) spinning polls only once a switch interval is over, F6).
    for (int round = 0; round < 100 && s.epoch->owed; ++round) fern::sleep(microseconds(100));
    EXPECT_FALSE(s.epoch->owed) << "signal " << s.signo << " raised with its handler installed never ran it";
  }
  w.pool.shutdown();
  fern::Hub::current().run_until_idle();  // SIG-2: installed handlers do not keep the loop running
  for (const auto& e : w.epochs) {
    EXPECT_LE(e->calls, e->raises) << "a handler ran more often than its signal was raised";
    EXPECT_FALSE(e->misplaced) << "a handler ran inside the interrupted code or outside a task";
  }
  for (Slot& s : w.slots) s.handler.cancel();

  // Every child was reaped: by its Popen, or by the destructor of a
  // dropped one.
  for (pid_t pid : w.pids) {
    int status;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    int err = errno;
    EXPECT_TRUE(r == -1 && err == ECHILD) << "child " << pid << " left unreaped";
  }
  int status;
  EXPECT_LE(::waitpid(-1, &status, WNOHANG), 0) << "a zombie was left behind";
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomProcessOpsSeeds, ::testing::Range<std::uint32_t>(1, 26));

}  // namespace
