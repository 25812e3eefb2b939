#include "fern/io/thread_pool.h"

#include <pthread.h>

#include <algorithm>
#include <new>
#include <stdexcept>
#include <string>

namespace fern {

// Every live pool, for the fork handlers: each pool's mutex is held across
// fork(), so the child finds no pool half-changed by a worker, and the child
// makes each one new but for its queue (the workers, waiting on its
// condition variables or running a job, did not come along).
struct PoolForkGuard {
  static std::mutex& mutex() {
    static std::mutex m;  // never destroyed before the pools that use it (a function static)
    return m;
  }
  static ThreadPool*& head() {
    static ThreadPool* h = nullptr;
    return h;
  }
  static void add(ThreadPool* p) {
    static std::once_flag once;
    std::call_once(once, [] { pthread_atfork(&prepare, &parent, &child); });
    std::lock_guard<std::mutex> lock(mutex());
    p->next_pool_ = head();
    if (head()) head()->prev_pool_ = p;
    head() = p;
  }
  static void remove(ThreadPool* p) {
    std::lock_guard<std::mutex> lock(mutex());
    if (p->prev_pool_) p->prev_pool_->next_pool_ = p->next_pool_;
    else head() = p->next_pool_;
    if (p->next_pool_) p->next_pool_->prev_pool_ = p->prev_pool_;
  }
  static void prepare() {
    mutex().lock();
    for (ThreadPool* p = head(); p; p = p->next_pool_) p->mutex_.lock();
  }
  static void parent() {
    for (ThreadPool* p = head(); p; p = p->next_pool_) p->mutex_.unlock();
    mutex().unlock();
  }
  static void child() {
    for (ThreadPool* p = head(); p; p = p->next_pool_) p->forget_threads_in_fork_child();
    mutex().unlock();
  }
};

namespace {

// The pool whose worker this thread is (null elsewhere).
thread_local const ThreadPool* t_own_pool = nullptr;

void refuse_on_own_thread(const ThreadPool& pool, const char* what) {
  if (pool.on_own_thread())
    throw std::logic_error(std::string("fern: ThreadPool::") + what +
                           " from one of the pool's own threads would wait for itself");
}

}  // namespace

bool ThreadPool::on_own_thread() const noexcept { return t_own_pool == this; }

ThreadPool::ThreadPool(long long maxsize) : maxsize_(maxsize > 0 ? static_cast<std::size_t>(maxsize) : 0) {
  if (maxsize < 1) throw std::invalid_argument("fern: ThreadPool needs maxsize >= 1, not " + std::to_string(maxsize));
  PoolForkGuard::add(this);
}

ThreadPool::~ThreadPool() {
  shutdown();
  PoolForkGuard::remove(this);
}

// In a fork child, with mutex_ locked by prepare() on this (the only)
// thread. Condition variables that had waiters cannot be used or destroyed
// (glibc would wait for those waiters), so they and the mutexes are made
// anew in place; the threads are let go of (their descriptors are the
// parent's). What they were running, and what is queued, is the parent's
// work: its results fail here (ForkLeftWorkBehind), and the jobs are leaked
// rather than destroyed in a state no thread left them in.
void ThreadPool::forget_threads_in_fork_child() noexcept {
  for (auto& job : queue_) job->forsake_in_fork_child();
  for (detail::ThreadJob* job : running_jobs_) job->forsake_in_fork_child();
  running_jobs_.clear();
  ::new (&mutex_) std::mutex();
  ::new (&join_mutex_) std::mutex();
  ::new (&ready_) std::condition_variable();
  ::new (&drained_) std::condition_variable();
  for (std::thread& t : threads_)
    if (t.joinable()) t.detach();
  threads_.clear();
  for (auto& job : queue_) static_cast<void>(job.release());
  queue_.clear();
  idle_ = running_ = delivering_ = 0;
}

void ThreadPool::submit(std::unique_ptr<detail::ThreadJob> job) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopping_) throw std::logic_error("fern: ThreadPool::spawn after shutdown()");
  queue_.push_back(std::move(job));
  // Lazy start (TP-1): a new thread only when no idle one will take the job.
  if (idle_ < queue_.size() && threads_.size() < maxsize_) {
    try {
      running_jobs_.reserve(threads_.size() + 1);  // one per thread at most: work() pushes without allocating
      threads_.emplace_back([this] { work(); });
      return;
    } catch (...) {
      // No thread could be started (EAGAIN at RLIMIT_NPROC, no memory for a
      // stack): the running threads take the job in turn; with none, nothing
      // ever would, and its result would hold the hub's loop forever: the
      // job is taken back (its captures destroyed outside the lock) and the
      // caller gets the error.
      if (threads_.empty()) {
        std::unique_ptr<detail::ThreadJob> back = std::move(queue_.back());
        queue_.pop_back();
        lock.unlock();
        back.reset();
        throw;
      }
    }
  }
  lock.unlock();
  ready_.notify_one();
}

void ThreadPool::work() {
  t_own_pool = this;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (queue_.empty()) {
      if (stopping_) return;
      ++idle_;
      ready_.wait(lock, [this] { return !queue_.empty() || stopping_; });
      --idle_;
      continue;
    }
    std::unique_ptr<detail::ThreadJob> job = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    running_jobs_.push_back(job.get());  // reserved in submit: cannot throw
    lock.unlock();
    job->run();
    lock.lock();
    running_jobs_.erase(std::find(running_jobs_.begin(), running_jobs_.end(), job.get()));
    --running_;  // before the delivery: a delivered result is no longer pending
    ++delivering_;
    lock.unlock();
    job->deliver();
    job.reset();  // the job's captures go in the worker, before it takes the next
    lock.lock();
    if (--delivering_ == 0 && queue_.empty() && running_ == 0) drained_.notify_all();
  }
}

std::size_t ThreadPool::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size() + running_;
}

void ThreadPool::wait_idle() {
  refuse_on_own_thread(*this, "wait_idle");
  std::unique_lock<std::mutex> lock(mutex_);
  drained_.wait(lock, [this] { return queue_.empty() && running_ == 0 && delivering_ == 0; });
}

std::size_t ThreadPool::threads() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return threads_.size();
}

void ThreadPool::shutdown() {
  refuse_on_own_thread(*this, "shutdown");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  // threads_ is no longer grown once stopping_ is set; one caller joins, a
  // concurrent one waits here until every thread is joined.
  std::lock_guard<std::mutex> joining(join_mutex_);
  for (std::thread& t : threads_)
    if (t.joinable()) t.join();
  std::lock_guard<std::mutex> lock(mutex_);
  threads_.clear();
}

ThreadPool& default_thread_pool() {
  static ThreadPool pool(10);
  return pool;
}

}  // namespace fern
