#pragma once
// gevent.threadpool.ThreadPool: a bounded pool of OS threads for blocking
// work (C libraries, getaddrinfo, disk). A greenlet that waits for a result
// blocks only itself; the worker hands the result back through the hub's
// cross-thread wake (Hub::run_callback_threadsafe).
//
// Mapping from gevent:
//   ThreadPool(maxsize)        ThreadPool(maxsize)      (0 or negative: std::invalid_argument)
//   pool.spawn(f, *args)       pool.spawn(f, args...) -> ThreadResult<R>
//   pool.apply(f, args)        pool.apply(f, args...) -> R (rethrows f's exception)
//   pool.map(f, xs)            pool.map(f, xs) -> std::vector<R>, in input order
//   len(pool), pool.size       pending(), threads()
//   gevent.wait / cf.wait(futures)  fern::wait({r.async_result(), ...}) (TP-6)
//   pool.kill() / join()       destructor / shutdown(): runs what is queued, joins the threads
// TP-1: threads start lazily, one per queued job while fewer than maxsize
// are idle-or-busy. TP-4: work beyond maxsize queues and starts FIFO.
// TP-5: a worker gets its own hub on first use, so fern code (tasks, sleeps,
// a nested apply) runs inside a job; a job's callable, arguments and result
// are released as soon as it is done. apply and map called from one of the
// pool's own threads run inline there (gevent's rule): queued behind the
// calling job they could wait for it forever (a size-1 pool). Unlike gevent, a pool is not tied to
// one hub: any thread with a hub (another pool's worker included) may spawn
// into it, and the result goes to the spawning thread's hub.
// Rules: spawn from a greenlet (or plain code) of a thread with a hub; the
// result is delivered to that hub (a pending result keeps its loop alive,
// so run_until_idle waits for it; a hub destroyed first is not posted to).
// fork(): the child's pools have no threads (only the forking thread goes
// on) and start new ones for new work, so the resolver and apply work there
// (gevent issue 230). Work queued or running when the process forked is the
// parent's: in the child its result (of the forking thread's hub) fails
// with ForkLeftWorkBehind instead of holding the loop for ever.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "fern/core/deadline.h"
#include "fern/core/hub.h"
#include "fern/sync/event.h"

namespace fern {

// What a result waited for in a fork child gets when the parent's thread
// was to do its work: the child has no such thread (ThreadPool, fork()).
struct ForkLeftWorkBehind : std::runtime_error {
  ForkLeftWorkBehind() : std::runtime_error("fern: this thread-pool work stayed with the parent process at fork()") {}
};

namespace detail {

// One queued job: run() executes in a worker thread.
struct ThreadJob {
  virtual ~ThreadJob() = default;
  virtual void run() noexcept = 0;      // the work, in a worker thread
  virtual void deliver() noexcept = 0;  // hands the outcome to the hub
  // In a fork child, for work the child will not do: a result of this
  // thread's hub gets ForkLeftWorkBehind (its waiters wake, its loop is let
  // go); any other hub's is not touched (that hub's thread is not here).
  virtual void forsake_in_fork_child() noexcept = 0;
};

// The hub side of one result. `hold` is a referenced timer that never fires:
// the hub's "outstanding cross-thread work" reference (libuv's uv_ref), so
// a greenlet waiting on the result is not told LoopExit.
// Destroyed in the hub thread (or, when the hub went first, wherever the
// last reference goes: the hub detached the timer then).
template <class R>
struct ThreadResultState {
  explicit ThreadResultState(Hub& hub) : remote(hub.remote()), home(&hub) {
    hold.fn = [](Timer*) {};
    hub.start_timer(&hold, Deadline::never());
  }
  std::shared_ptr<RemoteQueue> remote;  // the hub's door; posting fails once the hub is gone
  const Hub* home;                      // for the fork child only (compared, never followed)
  Timer hold;
  AsyncResult<R> result;
};

}  // namespace detail

// The pending result of ThreadPool::spawn; copies share it. Waiting blocks
// only the calling greenlet (switches to the hub). Hub thread only.
template <class R>
class ThreadResult {
 public:
  // Empty (default-made): every call below throws std::logic_error.
  ThreadResult() = default;
  bool ready() const { return state().result.ready(); }
  bool successful() const { return state().result.successful(); }
  std::exception_ptr exception() const { return state().result.exception(); }
  // Blocks until ready; the value, or the work's exception rethrown (TP-3).
  R get() { return state().result.get(); }
  // Blocks until ready or the deadline; true when ready (never throws the
  // work's exception).
  bool wait_until(Deadline d) { return state().result.wait_until(d); }
  bool wait_for(Duration d) { return wait_until(d.from_now()); }
  void wait() { wait_until(Deadline::never()); }
  // The result itself, to wait on several at once with fern::wait / IWait
  // (sync/wait_any.h; TP-6: futures with concurrent.futures.wait and
  // gevent.wait). It is the pool's to set: only wait on it or read it.
  AsyncResult<R>& async_result() const { return state().result; }

 private:
  friend class ThreadPool;
  detail::ThreadResultState<R>& state() const {
    if (!state_) throw std::logic_error("fern: this ThreadResult is empty (default-made): no work was spawned for it");
    return *state_;
  }
  std::shared_ptr<detail::ThreadResultState<R>> state_;
};

class ThreadPool {
 public:
  // At most maxsize OS threads, none started yet. Throws std::invalid_argument
  // for 0 or a negative count (gevent's ValueError, TP-1); signed, so that
  // -1 is not read as a huge size.
  explicit ThreadPool(long long maxsize);
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  // shutdown(): queued work still runs, then every thread is joined.
  ~ThreadPool();

  // Queues fn(args...) for a worker thread (FIFO). No switch. fn's
  // exception is delivered to whoever waits on the result. When the pool
  // has no thread yet and none can be started, std::system_error, and
  // nothing is queued; with threads running, the work waits for one.
  template <class F, class... Args>
  auto spawn(F&& fn, Args&&... args) {
    using R = std::invoke_result_t<std::decay_t<F>&, std::decay_t<Args>&...>;
    ThreadResult<R> out;
    out.state_ = std::make_shared<detail::ThreadResultState<R>>(Hub::current());
    auto call = [f = std::forward<F>(fn), tup = std::make_tuple(std::forward<Args>(args)...)]() mutable -> R {
      return std::apply(f, tup);
    };
    submit(std::make_unique<Job<R, decltype(call)>>(out.state_, std::move(call)));
    return out;
  }
  // spawn + get: blocks the calling greenlet only. From one of this pool's
  // own threads: fn(args...) inline.
  template <class F, class... Args>
  auto apply(F&& fn, Args&&... args) {
    if (on_own_thread()) return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
    return spawn(std::forward<F>(fn), std::forward<Args>(args)...).get();
  }
  // fn over every input, concurrently up to maxsize; results in input order.
  // The first failure (in input order) is rethrown after all have finished.
  template <class F, class Range>
  auto map(F fn, const Range& inputs) {
    using X = std::decay_t<decltype(*std::begin(inputs))>;
    using R = std::invoke_result_t<F&, X&>;
    static_assert(!std::is_void_v<R>, "fern: ThreadPool::map needs a function that returns a value");
    if (on_own_thread()) {  // inline, as apply
      std::vector<R> out;
      for (const auto& x : inputs) out.push_back(fn(x));
      return out;
    }
    std::vector<ThreadResult<R>> pending;
    for (const auto& x : inputs) pending.push_back(spawn(fn, x));
    for (auto& p : pending) p.wait();
    std::vector<R> out;
    out.reserve(pending.size());
    for (auto& p : pending) out.push_back(p.get());
    return out;
  }

  // Queued + running jobs (gevent's len(pool)). Any thread.
  std::size_t pending() const;
  // Blocks the OS thread (not cooperative) until no job is queued, running
  // or being handed back: afterwards no worker holds a hub's door (tests
  // count fds). Any thread but the pool's own (std::logic_error: it would
  // wait for itself).
  void wait_idle();
  // OS threads started so far (never more than maxsize).
  std::size_t threads() const;
  std::size_t maxsize() const noexcept { return maxsize_; }
  // Stops taking work, lets the queue drain and joins every thread. Blocks
  // the OS thread (not cooperative); idempotent, and several threads may
  // call it at once. spawn afterwards throws std::logic_error. From one of
  // the pool's own threads it throws std::logic_error, changing nothing (it
  // would join itself); the destructor there terminates the program.
  void shutdown();
  // True in one of this pool's worker threads.
  bool on_own_thread() const noexcept;

 private:
  template <class R, class F>
  struct Job final : detail::ThreadJob {
    Job(std::shared_ptr<detail::ThreadResultState<R>> s, F f) : state(std::move(s)), fn(std::move(f)) {}
    using Stored = std::conditional_t<std::is_void_v<R>, bool, R>;
    void run() noexcept override {
      try {
        if constexpr (std::is_void_v<R>) {
          fn();
          value.emplace(true);
        } else {
          value.emplace(fn());
        }
      } catch (...) {
        error = std::current_exception();
      }
    }
    void deliver() noexcept override {
      // The state travels to the hub with the outcome; from here on only the
      // hub thread touches it.
      std::shared_ptr<RemoteQueue> remote = state->remote;
      remote->post([s = std::move(state), v = std::move(value), e = std::move(error)]() mutable {
        if (e) s->result.set_exception(e);
        else if constexpr (std::is_void_v<R>) s->result.set();
        else s->result.set(std::move(*v));
        s->hold.unlink();  // the hub no longer waits for this work
      });
    }
    void forsake_in_fork_child() noexcept override {
      if (!state || state->home != Hub::current_if_exists()) return;
      try {
        state->result.set_exception(std::make_exception_ptr(ForkLeftWorkBehind()));
      } catch (...) {
      }
      state->hold.unlink();
    }
    std::shared_ptr<detail::ThreadResultState<R>> state;
    F fn;
    std::optional<Stored> value;
    std::exception_ptr error;
  };

  void submit(std::unique_ptr<detail::ThreadJob> job);
  void work();
  // pthread_atfork: every pool is locked across fork(); in the child each
  // forgets the threads that did not come along (thread_pool.cpp).
  friend struct PoolForkGuard;
  void forget_threads_in_fork_child() noexcept;
  ThreadPool* prev_pool_ = nullptr;
  ThreadPool* next_pool_ = nullptr;

  const std::size_t maxsize_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::unique_ptr<detail::ThreadJob>> queue_;
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;
  std::size_t running_ = 0;
  std::size_t delivering_ = 0;
  std::vector<detail::ThreadJob*> running_jobs_;  // taken by a worker, not yet delivering (for fork)
  std::condition_variable drained_;  // wait_idle
  bool stopping_ = false;
  std::mutex join_mutex_;  // one shutdown() joins at a time; the others wait for it
};

// The process-wide pool the resolver uses (gevent's hub.threadpool, 10 threads).
ThreadPool& default_thread_pool();

}  // namespace fern
