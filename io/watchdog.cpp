// The blocking watchdog: samples every hub's LoopMonitor from its own
// thread; a busy hub whose iteration count has not moved for the threshold
// is reported once, with a backtrace taken on the blocked thread by a signal.
#include "fern/io/watchdog.h"

#include <execinfo.h>
#include <pthread.h>
#include <semaphore.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include "fern/arch/thread_id.h"
#include "fern/core/hub.h"
#include "fern/core/task.h"

namespace fern {
namespace {

constexpr int kMaxFrames = 64;

// The one capture in flight. The watchdog arms it for one thread and sends
// the signal; the handler on that thread fills it and posts `done`. Only the
// handler writes the fields between kArmed and kDone.
struct Capture {
  enum : int { kIdle, kArmed, kCapturing, kDone };
  std::atomic<int> state{kIdle};
  std::atomic<long> target{0};
  void* frames[kMaxFrames];
  int depth = 0;
  unsigned long greenlet_id = 0;
  const void* task = nullptr;
  unsigned long task_ident = 0;
  sem_t done;
};
Capture g_capture;
struct sigaction g_previous;
std::atomic<bool> g_running{false};

// Async-signal-safe: atomics, gettid, backtrace (its unwinder was loaded by
// the first call in Watchdog's constructor), plain reads, sem_post.
void on_signal(int signo, siginfo_t* info, void* context) {
  int saved_errno = errno;
  int armed = Capture::kArmed;
  if (g_capture.target.load(std::memory_order_relaxed) == arch::thread_id() &&
      g_capture.state.compare_exchange_strong(armed, Capture::kCapturing, std::memory_order_acquire)) {
    g_capture.depth = backtrace(g_capture.frames, kMaxFrames);
    const detail::GreenletHead* head = detail::running_head();
    g_capture.greenlet_id = detail::running_id();
    g_capture.task = head ? head->task : nullptr;
    g_capture.task_ident = g_capture.task ? static_cast<const TaskBase*>(g_capture.task)->minimal_ident_if_given() : 0;
    g_capture.state.store(Capture::kDone, std::memory_order_release);
    sem_post(&g_capture.done);
    errno = saved_errno;
    return;
  }
  errno = saved_errno;
  // Not ours: the handler that was there before gets it.
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) g_previous.sa_sigaction(signo, info, context);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(signo);
  }
}

// Asks `tid` (whose hub is listed, so the thread lives) for its backtrace;
// waits up to a second for the answer (a thread with the signal blocked
// never answers: the report then has no frames).
void capture(const detail::LoopMonitor& m, int signo, BlockingReport& r) {
  g_capture.target.store(m.tid, std::memory_order_relaxed);
  g_capture.state.store(Capture::kArmed, std::memory_order_release);
  if (pthread_kill(static_cast<pthread_t>(m.thread), signo) == 0) {
    timespec until{};
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    while (sem_timedwait(&g_capture.done, &until) != 0 && errno == EINTR) {
    }
  }
  int armed = Capture::kArmed;
  if (g_capture.state.compare_exchange_strong(armed, Capture::kIdle)) return;  // no answer
  // The handler took it: it finishes quickly (it may have posted after our timeout).
  while (g_capture.state.load(std::memory_order_acquire) != Capture::kDone) sem_wait(&g_capture.done);
  r.captured = true;
  r.greenlet_id = g_capture.greenlet_id;
  r.task = g_capture.task;
  r.task_ident = g_capture.task_ident;
  // Frame 0 is the handler itself.
  for (int i = 1; i < g_capture.depth; ++i) r.frames.push_back(g_capture.frames[i]);
  while (sem_trywait(&g_capture.done) == 0) {
  }
  g_capture.state.store(Capture::kIdle, std::memory_order_relaxed);
}

void print(std::FILE* out, const BlockingReport& r, double threshold) {
  std::fprintf(out, "fern watchdog: the hub of thread %ld has not run its loop for %.3f s (threshold %.3f s)",
               r.thread, r.blocked_for, threshold);
  if (!r.captured) {
    std::fputs("; the thread did not answer for a backtrace\n", out);
    std::fflush(out);
    return;
  }
  std::fprintf(out, ": greenlet #%lu", r.greenlet_id);
  if (r.task && r.task_ident) std::fprintf(out, " (task %lu at %p)", r.task_ident, r.task);
  else if (r.task) std::fprintf(out, " (task at %p)", r.task);
  std::fputs(" is running:\n", out);
  char** names = backtrace_symbols(r.frames.data(), static_cast<int>(r.frames.size()));
  for (std::size_t i = 0; i < r.frames.size(); ++i)
    std::fprintf(out, "  #%zu %s\n", i, names ? names[i] : "?");
  std::free(names);
  std::fflush(out);
}

}  // namespace

struct Watchdog::Shared {
  std::mutex mutex;
  std::condition_variable cv;
  bool stop = false;
};

Watchdog::Watchdog(WatchdogOptions options) : options_(std::move(options)), shared_(new Shared) {
  if (g_running.exchange(true)) {
    delete shared_;
    throw std::logic_error("fern: only one fern::Watchdog may run at a time");
  }
  if (options_.signal != 0) {
    void* warm[1];
    backtrace(warm, 1);  // loads the unwinder now, not in the signal handler
    sem_init(&g_capture.done, 0, 0);
    struct sigaction sa {};
    sa.sa_sigaction = &on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(options_.signal, &sa, &g_previous) != 0) {
      g_running = false;
      delete shared_;
      throw std::invalid_argument("fern: the watchdog cannot handle signal " + std::to_string(options_.signal));
    }
  }
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->stop = true;
  }
  shared_->cv.notify_one();
  thread_.join();
  if (options_.signal != 0) {
    sigaction(options_.signal, &g_previous, nullptr);
    sem_destroy(&g_capture.done);
  }
  delete shared_;
  g_running = false;
}

void Watchdog::run() {
  struct Seen {
    std::uint64_t iterations;
    Nanos since;
    bool reported;
  };
  struct Pass {
    Watchdog* self;
    std::unordered_map<const detail::LoopMonitor*, Seen> seen, next;
    std::vector<BlockingReport> reports;
    Nanos now;
  } pass{this, {}, {}, {}, 0};
  const Nanos threshold = options_.threshold.nanos();
  const auto period = std::chrono::nanoseconds(std::max<Nanos>(threshold / 4, 1'000'000));
  std::unique_lock<std::mutex> lock(shared_->mutex);
  while (!shared_->cv.wait_for(lock, period, [this] { return shared_->stop; })) {
    pass.now = monotonic_now();
    pass.next.clear();
    pass.reports.clear();
    // Under the monitor list's lock: a listed hub's thread is alive, so it
    // can be signalled.
    detail::for_each_monitor(
        [](detail::LoopMonitor& m, void* ctx) {
          auto& p = *static_cast<Pass*>(ctx);
          std::uint64_t count = m.iterations.load(std::memory_order_relaxed);
          bool idle = m.idle.load(std::memory_order_relaxed);
          auto it = p.seen.find(&m);
          Seen s = it != p.seen.end() ? it->second : Seen{count, p.now, false};
          if (idle || count != s.iterations) s = Seen{count, p.now, false};
          Nanos blocked = p.now - s.since;
          if (!s.reported && blocked >= p.self->options_.threshold.nanos()) {
            s.reported = true;  // once per incident
            BlockingReport r;
            r.thread = m.tid;
            r.blocked_for = static_cast<double>(blocked) / 1e9;
            if (p.self->options_.signal != 0) capture(m, p.self->options_.signal, r);
            p.reports.push_back(std::move(r));
          }
          p.next.emplace(&m, s);
        },
        &pass);
    pass.seen.swap(pass.next);
    lock.unlock();
    for (const BlockingReport& r : pass.reports) {
      if (options_.out) print(options_.out, r, options_.threshold.seconds());
      if (options_.on_report) options_.on_report(r);
    }
    lock.lock();
  }
}

}  // namespace fern
