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

void refuse_after_shutdown(bool stopping, const char* what) {
  if (stopping) throw std::logic_error(std::string("fern: ThreadPool::") + what + " after shutdown()");
}

}  // namespace

bool ThreadPool::on_own_thread() const noexcept { return t_own_pool == this; }

ThreadPool::ThreadPool(long long maxsize) : maxsize_(maxsize > 0 ? static_cast<std::size_t>(maxsize) : 0) {
  if (maxsize < 0) throw std::invalid_argument("fern: ThreadPool needs maxsize >= 0, not " + std::to_string(maxsize));
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
  for (std::vector<std::thread>* list : {&threads_, &retired_}) {
    for (std::thread& t : *list)
      if (t.joinable()) t.detach();
    list->clear();
  }
  for (auto& job : queue_) static_cast<void>(job.release());
  queue_.clear();
  idle_ = running_ = delivering_ = live_ = leaving_ = unjoined_ = 0;
}

void ThreadPool::submit(std::unique_ptr<detail::ThreadJob> job) {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    refuse_after_shutdown(stopping_, "spawn");
    queue_.push_back(std::move(job));
    try {
      grow_locked();
    } catch (...) {
      // No thread could be started and none runs: nothing would ever take
      // the job, and its result would hold the hub's loop forever. It is
      // taken back (its captures destroyed outside the lock) and the caller
      // gets the error.
      std::unique_ptr<detail::ThreadJob> back = std::move(queue_.back());
      queue_.pop_back();
      lock.unlock();
      back.reset();
      throw;
    }
  }
  ready_.notify_one();
  reap();
}

void ThreadPool::start_thread_locked() {
  // Room for every thread's entry in running_jobs_ and retired_: work()
  // and leave_locked() push without allocating.
  running_jobs_.reserve(threads_.size() + 1);
  retired_.reserve(threads_.size() + retired_.size() + 1);
  threads_.emplace_back([this] { work(); });
  ++live_;
}

// Lazy start (TP-1): a thread only when no idle one will take the job. A
// thread told to leave is kept instead of starting a new one.
void ThreadPool::grow_locked() {
  std::size_t wanted = queue_.size() > idle_ ? queue_.size() - idle_ : 0;
  for (; wanted > 0 && live_ < maxsize_; --wanted) {
    if (leaving_ > 0) {
      --leaving_;
      ++live_;
      continue;
    }
    try {
      start_thread_locked();
    } catch (...) {
      // EAGAIN at RLIMIT_NPROC, no memory for a stack: the running threads
      // take the work in turn; with none, nothing ever would.
      if (live_ + leaving_ == 0) throw;
      return;
    }
  }
}

void ThreadPool::leave_locked() {
  auto me = std::find_if(threads_.begin(), threads_.end(),
                         [](const std::thread& t) { return t.get_id() == std::this_thread::get_id(); });
  // Not found: shutdown() took the handle and joins this thread itself.
  if (me != threads_.end()) {
    retired_.push_back(std::move(*me));  // reserved in start_thread_locked: cannot throw
    threads_.erase(me);
    ++unjoined_;
  }
  if (!queue_.empty()) ready_.notify_one();  // a thread that stays takes it
  drained_.notify_all();
}

bool ThreadPool::quiet_locked() const noexcept {
  return (queue_.empty() || maxsize_ == 0) && running_ == 0 && delivering_ == 0 && leaving_ == 0 && unjoined_ == 0;
}

void ThreadPool::reap() {
  std::vector<std::thread> gone;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (retired_.empty()) return;
    std::vector<std::thread> spare;
    spare.reserve(retired_.capacity());  // leave_locked pushes without allocating
    gone.swap(retired_);
    retired_.swap(spare);
  }
  for (std::thread& t : gone) t.join();
  std::lock_guard<std::mutex> lock(mutex_);
  unjoined_ -= gone.size();
  if (quiet_locked()) drained_.notify_all();
}

void ThreadPool::work() {
  t_own_pool = this;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (leaving_ > 0) {
      // Told to leave (the first thread to look goes, an idle one first as
      // it is woken): stays only for queued work no other thread would take.
      --leaving_;
      if (queue_.empty() || live_ >= maxsize_ || idle_ >= queue_.size()) return leave_locked();
      ++live_;
    }
    if (queue_.empty()) {
      if (stopping_) {
        --live_;
        return;
      }
      ++idle_;
      ready_.wait(lock, [this] { return !queue_.empty() || stopping_ || leaving_ > 0; });
      --idle_;
      continue;
    }
    std::unique_ptr<detail::ThreadJob> job = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    running_jobs_.push_back(job.get());  // reserved in start_thread_locked: cannot throw
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
    --delivering_;
    if (quiet_locked()) drained_.notify_all();
  }
}

std::size_t ThreadPool::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size() + running_;
}

void ThreadPool::wait_idle() {
  refuse_on_own_thread(*this, "wait_idle");
  for (;;) {
    reap();
    std::unique_lock<std::mutex> lock(mutex_);
    // Woken by a leaving thread too: its handle is then joined above.
    drained_.wait(lock, [this] { return quiet_locked() || !retired_.empty(); });
    if (quiet_locked()) return;
  }
}

std::size_t ThreadPool::threads() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return live_;
}

std::size_t ThreadPool::maxsize() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return maxsize_;
}

void ThreadPool::set_maxsize(long long n) {
  if (n < 0) throw std::invalid_argument("fern: ThreadPool::set_maxsize needs n >= 0, not " + std::to_string(n));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    refuse_after_shutdown(stopping_, "set_maxsize");
    maxsize_ = static_cast<std::size_t>(n);
    if (live_ > maxsize_) {
      leaving_ += live_ - maxsize_;
      live_ = maxsize_;
    } else {
      grow_locked();
    }
    if (quiet_locked()) drained_.notify_all();  // maxsize 0 holds what is queued
  }
  ready_.notify_all();
  reap();
}

void ThreadPool::set_size(long long n) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (n < 0 || static_cast<unsigned long long>(n) > maxsize_)
      throw std::invalid_argument("fern: ThreadPool::set_size needs 0 <= n <= maxsize (" + std::to_string(maxsize_) +
                                  "), not " + std::to_string(n));
    refuse_after_shutdown(stopping_, "set_size");
    auto size = static_cast<std::size_t>(n);
    if (live_ > size) {
      leaving_ += live_ - size;
      live_ = size;
    }
    for (; live_ < size && leaving_ > 0; --leaving_) ++live_;
    while (live_ < size) start_thread_locked();
  }
  ready_.notify_all();
  reap();
}

void ThreadPool::shutdown() {
  refuse_on_own_thread(*this, "shutdown");
  // One caller joins; a concurrent one waits here until every thread is
  // joined. No thread starts once stopping_ is set.
  std::lock_guard<std::mutex> joining(join_mutex_);
  std::vector<std::thread> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    all.swap(threads_);
    for (std::thread& t : retired_) all.push_back(std::move(t));
    unjoined_ -= retired_.size();
    retired_.clear();
  }
  ready_.notify_all();
  for (std::thread& t : all) t.join();
  // What is still queued no thread will run (maxsize 0): it fails.
  std::deque<std::unique_ptr<detail::ThreadJob>> left;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    left.swap(queue_);
  }
  for (auto& job : left) job->fail(std::make_exception_ptr(ThreadPoolShutDown()));
  left.clear();
  std::lock_guard<std::mutex> lock(mutex_);
  if (quiet_locked()) drained_.notify_all();
}

ThreadPool& default_thread_pool() {
  static ThreadPool pool(10);
  return pool;
}

}  // namespace fern
