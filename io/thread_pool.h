#pragma once
// gevent.threadpool.ThreadPool: a bounded pool of OS threads for blocking
// work (C libraries, getaddrinfo, disk). A greenlet that waits for a result
// blocks only itself; the worker hands the result back through the hub's
// cross-thread wake (Hub::run_callback_threadsafe).
//
// Mapping from gevent:
//   ThreadPool(maxsize)        ThreadPool(maxsize)      (negative: std::invalid_argument; 0 holds
//                                                        all work queued until maxsize is raised)
//   pool.maxsize = n           set_maxsize(n)           (negative: std::invalid_argument)
//   pool.size = n              set_size(n)              (not in [0, maxsize]: std::invalid_argument)
//   pool.spawn(f, *args)       pool.spawn(f, args...) -> ThreadResult<R>
//   pool.apply(f, args)        pool.apply(f, args...) -> R (rethrows f's exception)
//   pool.apply_async(f, args, callback=cb)
//                              apply_async(f, args...) / apply_async_cb(cb, f, args...) -> Task<R>:
//                              a greenlet of the calling hub that applies, then calls cb(result)
//   pool.map(f, xs)            pool.map(f, xs) -> std::vector<R>, in input order
//   pool.imap(f, xs) / imap_unordered(f, xs)
//                              imap(f, xs) / imap_unordered(f, xs) -> IMap<R> (sync/imap.h):
//                              input / completion order, a failure rethrown at its place (TP-3)
//   len(pool), pool.size       pending(), threads()
//   gevent.wait / cf.wait(futures)  fern::wait({r.async_result(), ...}) (TP-6)
//   pool.kill() / join()       destructor / shutdown(): runs what is queued, joins the threads
// TP-1: threads start lazily, one per queued job while fewer than maxsize
// are idle-or-busy. TP-4: work beyond maxsize queues and starts FIFO.
// Unlike gevent, spawn never blocks (gevent's blocks at maxsize + 1 jobs);
// imap keeps at most maxsize inputs in flight instead. Threads over a
// lowered maxsize (or size) finish their job and leave; a leaving thread
// stays while queued work has no other thread and maxsize allows it (as
// gevent's: size only retires threads the queue does not need).
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
#include <algorithm>
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
#include "fern/core/task.h"
#include "fern/sync/event.h"
#include "fern/sync/group.h"
#include "fern/sync/imap.h"
#include "fern/sync/semaphore.h"

namespace fern {

// What a result waited for in a fork child gets when the parent's thread
// was to do its work: the child has no such thread (ThreadPool, fork()).
struct ForkLeftWorkBehind : std::runtime_error {
  ForkLeftWorkBehind() : std::runtime_error("fern: this thread-pool work stayed with the parent process at fork()") {}
};

// What a result gets when its pool was shut down while the work was still
// queued and no thread could take it (maxsize 0).
struct ThreadPoolShutDown : std::runtime_error {
  ThreadPoolShutDown()
      : std::runtime_error("fern: the ThreadPool was shut down with maxsize 0: this queued work never ran "
                           "(raise maxsize before shutdown() to run it)") {}
};

namespace detail {

// One queued job: run() executes in a worker thread.
struct ThreadJob {
  virtual ~ThreadJob() = default;
  virtual void run() noexcept = 0;      // the work, in a worker thread
  virtual void deliver() noexcept = 0;  // hands the outcome to the hub
  // Instead of run(): the work fails with error, delivered as any outcome.
  virtual void fail(std::exception_ptr error) noexcept = 0;
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
  // Called in the hub once, right after result is set (imap's link).
  std::function<void(ThreadResultState&)> then;
  void settled() {
    hold.unlink();  // the hub no longer waits for this work
    if (then) std::exchange(then, nullptr)(*this);
  }
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

class ThreadPool : public detail::IMapFront<ThreadPool> {
 public:
  // At most maxsize OS threads, none started yet. Throws std::invalid_argument
  // for a negative count (gevent's ValueError, TP-1); signed, so that -1 is
  // not read as a huge size. 0 (gevent's test_inc): work queues, and runs
  // once set_maxsize raises it.
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
    auto call = [f = std::forward<F>(fn), tup = std::make_tuple(std::forward<Args>(args)...)]() mutable -> R {
      return std::apply(f, tup);
    };
    return spawn_then<R>(std::move(call), nullptr);
  }
  // spawn + get: blocks the calling greenlet only. From one of this pool's
  // own threads: fn(args...) inline.
  template <class F, class... Args>
  auto apply(F&& fn, Args&&... args) {
    if (on_own_thread()) return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
    return spawn(std::forward<F>(fn), std::forward<Args>(args)...).get();
  }
  // gevent's apply_async (TP-3): never blocks; a new greenlet of the calling
  // hub runs apply(fn, args...), so its result or exception is the task's
  // (an exception is reported as any failed task's). The pool must outlive it.
  template <class F, class... Args>
  auto apply_async(F fn, Args... args) {
    return fern::spawn([this, fn = std::move(fn), args...]() mutable { return apply(fn, args...); });
  }
  // apply_async with gevent's callback: callback(result) (callback() for
  // void) in that greenlet, after the result is set; not on failure.
  template <class Callback, class F, class... Args>
  auto apply_async_cb(Callback callback, F fn, Args... args) {
    return fern::spawn([this, callback = std::move(callback), fn = std::move(fn), args...]() mutable {
      return detail::call_then(callback, [&] { return apply(fn, args...); });
    });
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

  // imap / imap_unordered (detail::IMapFront), a lazy map (TP-3,
  // PL-4/PL-7/PL-8): results in input order (imap) or completion order
  // (imap_unordered), through the IMap a greenlet reads (next() blocks only
  // it); a failure is rethrown at its place and the next call goes on. A feeder greenlet of the calling hub spawns the
  // inputs, at most maxsize() of them (read now; at least 1) in flight;
  // maxsize > 0 also bounds results not yet taken, as Group::imap's. The
  // input range is kept as Group::imap keeps it; an IMap dropped early lets
  // the work in flight finish (nothing is leaked; the feeder goes on unless
  // maxsize holds it). From one of the pool's own threads fn runs inline in
  // the feeder, as apply does.

  // Queued + running jobs (gevent's len(pool)). Any thread.
  std::size_t pending() const;
  // Blocks the OS thread (not cooperative) until no job is queued (with
  // maxsize 0: may run), running or being handed back, and every thread
  // told to leave is gone (joined): afterwards no worker holds a hub's door
  // (tests count fds). Any thread but the pool's own (std::logic_error: it
  // would wait for itself).
  void wait_idle();
  // The worker threads the pool keeps (gevent's size): started, less those
  // told to leave (which end their current job first). Never more than
  // maxsize. Any thread.
  std::size_t threads() const;
  std::size_t maxsize() const;
  // TP-1, gevent's `pool.maxsize = n`: n < 0 throws std::invalid_argument.
  // Lower: threads over n take no new job and leave after their current
  // one (0: all work stays queued). Higher: queued work starts at once (FIFO
  // kept), on threads started for it. Never blocks (joins threads that
  // already left). Any thread; after shutdown() std::logic_error. When no
  // thread runs and none can start: std::system_error, maxsize already set.
  void set_maxsize(long long n);
  // TP-1, gevent's `pool.size = n`: n outside [0, maxsize] throws
  // std::invalid_argument. Higher: starts threads now (idle until work
  // comes). Lower: idle threads leave at once, busy ones after their job;
  // threads() is n on return. Later work starts threads again lazily. Never
  // blocks; any thread; after shutdown() std::logic_error.
  void set_size(long long n);
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
        s->settled();
      });
    }
    void fail(std::exception_ptr e) noexcept override {
      error = std::move(e);
      deliver();
    }
    void forsake_in_fork_child() noexcept override {
      if (!state || state->home != Hub::current_if_exists()) return;
      try {
        state->result.set_exception(std::make_exception_ptr(ForkLeftWorkBehind()));
        state->settled();
      } catch (...) {
        state->hold.unlink();
      }
    }
    std::shared_ptr<detail::ThreadResultState<R>> state;
    F fn;
    std::optional<Stored> value;
    std::exception_ptr error;
  };

  template <class R, class Call>
  ThreadResult<R> spawn_then(Call call, std::function<void(detail::ThreadResultState<R>&)> then) {
    ThreadResult<R> out;
    out.state_ = std::make_shared<detail::ThreadResultState<R>>(Hub::current());
    out.state_->then = std::move(then);
    submit(std::make_unique<Job<R, Call>>(out.state_, std::move(call)));
    return out;
  }
  friend class detail::IMapFront<ThreadPool>;
  template <class F, class Range>
  auto make_imap(F fn, Range&& inputs, bool ordered, std::size_t maxsize);

  void submit(std::unique_ptr<detail::ThreadJob> job);
  void work();
  // With mutex_ held: threads for queued work no idle one takes (reclaiming
  // leaving ones first), up to maxsize_. Throws std::system_error when no
  // thread runs afterwards and one was needed.
  void grow_locked();
  void start_thread_locked();
  // With mutex_ held, in a worker that will return: its handle goes to
  // retired_ for another thread to join.
  void leave_locked();
  bool quiet_locked() const noexcept;
  // Joins the threads that left (not from the leaving threads themselves).
  void reap();
  // pthread_atfork: every pool is locked across fork(); in the child each
  // forgets the threads that did not come along (thread_pool.cpp).
  friend struct PoolForkGuard;
  void forget_threads_in_fork_child() noexcept;
  ThreadPool* prev_pool_ = nullptr;
  ThreadPool* next_pool_ = nullptr;

  std::size_t maxsize_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::unique_ptr<detail::ThreadJob>> queue_;
  std::vector<std::thread> threads_;  // every worker in work(), leaving ones included
  std::vector<std::thread> retired_;  // workers that left work(), to join
  std::size_t live_ = 0;     // threads(): workers not told to leave
  std::size_t leaving_ = 0;  // workers told to leave, not yet gone (the first to look go)
  std::size_t unjoined_ = 0;  // workers gone from work(), not yet joined
  std::size_t idle_ = 0;
  std::size_t running_ = 0;
  std::size_t delivering_ = 0;
  std::vector<detail::ThreadJob*> running_jobs_;  // taken by a worker, not yet delivering (for fork)
  std::condition_variable drained_;  // wait_idle: quiet_locked() may have become true
  bool stopping_ = false;
  std::mutex join_mutex_;  // one shutdown() joins at a time; the others wait for it
};

template <class F, class Range>
auto ThreadPool::make_imap(F fn, Range&& inputs, bool ordered, std::size_t maxsize) {
  using X = detail::RangeItem<Range>;
  using R = std::invoke_result_t<F&, X&>;
  static_assert(!std::is_void_v<R>, "fern: ThreadPool::imap needs a function that returns a value");
  auto state = std::make_shared<detail::IMapState<R>>(ordered, maxsize);
  auto flight = std::make_shared<Semaphore>(static_cast<long>(std::max<std::size_t>(1, std::min<std::size_t>(this->maxsize(), 1L << 30))));
  bool inline_here = on_own_thread();
  auto feeder = fern::spawn([this, state, flight, inline_here, fn = std::move(fn),
                             feed = detail::FeedRange<Range>(std::forward<Range>(inputs))]() mutable {
    for (auto&& x : feed.get()) {
      if (state->bound) state->bound->acquire();  // PL-8: wait for the consumer
      std::size_t i = state->spawned;
      if (inline_here) {
        std::optional<R> value;
        std::exception_ptr error;
        try {
          value.emplace(fn(x));
        } catch (...) {
          error = std::current_exception();
        }
        state->finished_with(i, std::move(value), error);
      } else {
        flight->acquire();
        auto call = [fn, x = X(std::forward<decltype(x)>(x))]() mutable -> R { return fn(x); };
        spawn_then<R>(std::move(call), [state, flight, i](detail::ThreadResultState<R>& s) {
          flight->release();
          std::exception_ptr error = s.result.exception();
          state->finished_with(i, error ? std::nullopt : s.result.value(), error);
        });
      }
      ++state->spawned;
    }
  });
  feeder->link([state](TaskBase& t) { state->feeder_ended(t); });
  return IMap<R>(std::move(state), feeder.core());
}

// The process-wide pool the resolver uses (gevent's hub.threadpool, 10 threads).
ThreadPool& default_thread_pool();

}  // namespace fern
