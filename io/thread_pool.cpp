#include "fern/io/thread_pool.h"

#include <stdexcept>

namespace fern {

ThreadPool::ThreadPool(std::size_t maxsize) : maxsize_(maxsize) {
  if (maxsize == 0) throw std::invalid_argument("fern: ThreadPool needs maxsize >= 1");
}

ThreadPool::~ThreadPool() { shutdown(); }

void ThreadPool::submit(std::unique_ptr<detail::ThreadJob> job) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopping_) throw std::logic_error("fern: ThreadPool::spawn after shutdown()");
  queue_.push_back(std::move(job));
  // Lazy start (TP-1): a new thread only when no idle one will take the job.
  if (idle_ < queue_.size() && threads_.size() < maxsize_) {
    threads_.emplace_back([this] { work(); });
    return;
  }
  lock.unlock();
  ready_.notify_one();
}

void ThreadPool::work() {
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
  std::unique_lock<std::mutex> lock(mutex_);
  drained_.wait(lock, [this] { return queue_.empty() && running_ == 0 && delivering_ == 0; });
}

std::size_t ThreadPool::threads() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return threads_.size();
}

void ThreadPool::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  ready_.notify_all();
  // Only this thread joins: threads_ is no longer grown once stopping_ is set.
  for (std::thread& t : threads_) t.join();
  std::lock_guard<std::mutex> lock(mutex_);
  threads_.clear();
}

ThreadPool& default_thread_pool() {
  static ThreadPool pool(10);
  return pool;
}

}  // namespace fern
