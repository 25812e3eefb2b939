#include "fern/io/thread_pool.h"

#include <stdexcept>
#include <string>

namespace fern {
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
}

ThreadPool::~ThreadPool() { shutdown(); }

void ThreadPool::submit(std::unique_ptr<detail::ThreadJob> job) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopping_) throw std::logic_error("fern: ThreadPool::spawn after shutdown()");
  queue_.push_back(std::move(job));
  // Lazy start (TP-1): a new thread only when no idle one will take the job.
  if (idle_ < queue_.size() && threads_.size() < maxsize_) {
    try {
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
    lock.unlock();
    job->run();
    lock.lock();
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
