#pragma once
// Queues (gevent.queue), built on the hub's one-shot Waiter.
//
// Mapping from gevent 22.10:
//   Queue(maxsize=None)            Queue<T>(maxsize): 0 (the default) = unbounded, as gevent
//                                  22.10 reads maxsize 0 and None alike
//   q.put(item, block, timeout)    q.put(item, block, timeout); full -> throws QueueFull
//   q.get(block, timeout)          q.get(block, timeout); empty -> throws QueueEmpty, never
//                                  fern::Timeout
//   q.put_nowait / q.get_nowait    same names
//   (no gevent equivalent)         q.try_put(item, timeout) -> bool, q.try_get(timeout) ->
//                                  std::optional<T>: the outcome as a value (STYLE)
//   q.peek(block, timeout)         q.peek(block, timeout) -> a copy of the head
//   qsize(), empty(), full(), maxsize   same names; maxsize() is 0 when unbounded
//   for x in q: (until StopIteration)   Queue<std::optional<U>>: for (U x : q) stops at (and
//                                  consumes) a std::nullopt item; any T: for (T x : q.until(stop))
//   LifoQueue, PriorityQueue       LifoQueue<T>, PriorityQueue<T, Compare = std::less<T>>
//                                  (smallest first, like heapq)
//   JoinableQueue                  JoinableQueue<T>: task_done(), join(timeout) -> bool,
//                                  unfinished_tasks(); one task_done too many -> TaskDoneError
//   Channel                        Channel<T> in fern/sync/channel.h
// Order (SEMANTICS F7, Q-3, Q-4, S11, S12): neither put nor get switches
// when it can complete; a put with getters parked, or a get with putters
// parked, schedules one hub callback (gevent's _unlock) that serves parked
// putters and getters FIFO, each woken greenlet running before the next is
// served. A timed-out or killed getter takes nothing; a timed-out or killed
// putter leaves nothing behind (TO-10). A blocking get with nothing else
// runnable ends in LoopExit. One thread: the hub's.
#include <algorithm>
#include <cstddef>
#include <deque>
#include <iterator>
#include <functional>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "fern/sync/event.h"
#include "fern/sync/wait_list.h"

namespace fern {

// get() found nothing in time, or get_nowait() on an empty queue (queue.Empty).
class QueueEmpty : public std::runtime_error {
 public:
  QueueEmpty() : std::runtime_error("fern: queue is empty") {}
};

// put() found no room in time, or put_nowait() on a full queue (queue.Full).
class QueueFull : public std::runtime_error {
 public:
  QueueFull() : std::runtime_error("fern: queue is full") {}
};

// JoinableQueue::task_done() called more often than items were put.
class TaskDoneError : public std::logic_error {
 public:
  TaskDoneError() : std::logic_error("fern: task_done() called too many times") {}
};

namespace detail {

// The waiting side of every queue, independent of the item type: counts,
// the parked getters and putters, and the unlock callback.
class QueueCore {
 public:
  QueueCore(const QueueCore&) = delete;
  QueueCore& operator=(const QueueCore&) = delete;

  std::size_t qsize() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  bool full() const noexcept { return maxsize_ != 0 && size_ >= maxsize_; }
  std::size_t maxsize() const noexcept { return maxsize_; }  // 0: unbounded
  std::size_t getter_count() const noexcept { return getters_.size(); }
  std::size_t putter_count() const noexcept { return putters_.size(); }

 protected:
  // store_from(self, item) moves *item (a T on a parked putter's stack)
  // into the store of the queue `self`.
  using StoreFrom = void (*)(QueueCore* self, void* item);
  QueueCore(std::size_t maxsize, StoreFrom store_from) noexcept;
  ~QueueCore() = default;

  // After the template stored one item without waiting.
  void stored_one() noexcept {
    ++size_;
    if (!getters_.empty()) unlock_.schedule();
  }
  // After the template took one item.
  void took_one() noexcept {
    --size_;
    if (!putters_.empty()) unlock_.schedule();
  }
  // The queue is full: parks the caller as a putter of *item (or serves
  // getters inline when called in the hub). True once *item is stored,
  // false when not blocking or after `timeout`.
  bool put_waiting(void* item, bool block, double timeout);
  // The queue is empty: parks the caller as a getter. True once an item is
  // there for the caller to take or peek, false when not blocking or after
  // `timeout`.
  bool await_item(bool block, double timeout);

 private:
  struct PutNode : WaitNode {
    void* item = nullptr;
  };
  static void unlock(void* self, const bool& gone);
  bool store_for(PutNode& putter);
  bool put_in_hub(void* item);
  bool get_in_hub();

  WaitList getters_;
  WaitList putters_;
  Notifier unlock_;  // after the lists: destroyed first
  StoreFrom store_from_;
  std::size_t size_ = 0;
  std::size_t maxsize_;
};

template <class T>
struct FifoStore {
  std::deque<T> items;
  void push(T&& v) { items.push_back(std::move(v)); }
  T pop() {
    T v = std::move(items.front());
    items.pop_front();
    return v;
  }
  const T& top() const { return items.front(); }
};

template <class T>
struct LifoStore {
  std::vector<T> items;
  void push(T&& v) { items.push_back(std::move(v)); }
  T pop() {
    T v = std::move(items.back());
    items.pop_back();
    return v;
  }
  const T& top() const { return items.back(); }
};

// A binary heap with the smallest item (by Compare) on top.
template <class T, class Compare>
struct HeapStore {
  std::vector<T> items;
  Compare less;
  bool after(const T& a, const T& b) const { return less(b, a); }
  void push(T&& v) {
    items.push_back(std::move(v));
    std::push_heap(items.begin(), items.end(), [this](const T& a, const T& b) { return after(a, b); });
  }
  T pop() {
    std::pop_heap(items.begin(), items.end(), [this](const T& a, const T& b) { return after(a, b); });
    T v = std::move(items.back());
    items.pop_back();
    return v;
  }
  const T& top() const { return items.front(); }
};

template <class T>
struct Unwrap {
  using type = T;
  static T& get(T& v) { return v; }
};
template <class U>
struct Unwrap<std::optional<U>> {
  using type = U;
  static U& get(std::optional<U>& v) { return *v; }
};

}  // namespace detail

// Input iterator over items taken from a queue until a stop item (consumed,
// not yielded). Each step blocks in get(). Yields U for std::optional<U> items.
template <class Q, class Item>
class QueueIterator {
 public:
  using value_type = typename detail::Unwrap<Item>::type;
  using reference = value_type&;
  using pointer = value_type*;
  using difference_type = std::ptrdiff_t;
  using iterator_category = std::input_iterator_tag;

  QueueIterator() = default;  // the end
  // Blocks for the first item.
  QueueIterator(Q& queue, Item stop) : queue_(&queue), stop_(std::move(stop)) { advance(); }
  reference operator*() { return detail::Unwrap<Item>::get(*current_); }
  QueueIterator& operator++() {
    advance();
    return *this;
  }
  friend bool operator==(const QueueIterator& a, const QueueIterator& b) noexcept { return a.queue_ == b.queue_; }
  friend bool operator!=(const QueueIterator& a, const QueueIterator& b) noexcept { return a.queue_ != b.queue_; }

 private:
  void advance() {
    current_.emplace(queue_->get());
    if (*current_ == *stop_) {
      current_.reset();
      queue_ = nullptr;
    }
  }
  Q* queue_ = nullptr;
  std::optional<Item> stop_;
  std::optional<Item> current_;
};

template <class Q, class Item>
class QueueRange {
 public:
  QueueRange(Q& queue, Item stop) : queue_(queue), stop_(std::move(stop)) {}
  QueueIterator<Q, Item> begin() { return QueueIterator<Q, Item>(queue_, stop_); }
  QueueIterator<Q, Item> end() { return {}; }

 private:
  Q& queue_;
  Item stop_;
};

template <class T, class Store>
class BasicQueue : public detail::QueueCore {
 public:
  using value_type = T;

  // maxsize 0: unbounded.
  explicit BasicQueue(std::size_t maxsize = 0) : QueueCore(maxsize, &store_from) {}
  BasicQueue(const BasicQueue&) = delete;
  BasicQueue& operator=(const BasicQueue&) = delete;

  // Stores item (no switch) when there is room; else with block parks FIFO
  // (switches to the hub) until a get makes room, at most `timeout` seconds
  // (< 0: no limit). Throws QueueFull when not blocking or on timeout. A
  // kill or Timeout thrown in propagates and nothing is stored.
  void put(T item, bool block = true, double timeout = -1) {
    if (!put_item(item, block, timeout)) throw QueueFull();
  }
  void put_nowait(T item) { put(std::move(item), false); }
  // put() with the outcome as a value: false (item untouched) when there
  // was no room within `timeout` (0: do not block).
  bool try_put(T&& item, double timeout = 0) { return put_item(item, timeout != 0, timeout); }
  bool try_put(const T& item, double timeout = 0) {
    T copy = item;
    return put_item(copy, timeout != 0, timeout);
  }

  // Takes the next item (no switch) when there is one; else with block parks
  // FIFO (switches to the hub) until a put, at most `timeout` seconds (< 0:
  // no limit). Throws QueueEmpty when not blocking or on timeout; then, or
  // after a kill or Timeout, nothing was taken (Q-2, TO-10).
  T get(bool block = true, double timeout = -1) {
    if (empty() && !await_item(block, timeout)) throw QueueEmpty();
    return take();
  }
  T get_nowait() { return get(false); }
  // get() with the outcome as a value: empty when nothing came within
  // `timeout` (0: do not block).
  std::optional<T> try_get(double timeout = 0) {
    if (empty() && !await_item(timeout != 0, timeout)) return std::nullopt;
    return take();
  }

  // A copy of the item get() would return, left in the queue; blocks and
  // throws like get().
  T peek(bool block = true, double timeout = -1) {
    if (empty() && !await_item(block, timeout)) throw QueueEmpty();
    return store_.top();
  }
  T peek_nowait() { return peek(false); }

  // Range-for over items until a stop item, which is consumed.
  QueueRange<BasicQueue, T> until(T stop) { return QueueRange<BasicQueue, T>(*this, std::move(stop)); }
  // For a queue of std::optional<U>: iterate until a std::nullopt item
  // (gevent's StopIteration). begin() blocks for the first item.
  template <class U = T, class = std::enable_if_t<!std::is_same_v<typename detail::Unwrap<U>::type, U>>>
  QueueIterator<BasicQueue, T> begin() {
    return QueueIterator<BasicQueue, T>(*this, T{});
  }
  template <class U = T, class = std::enable_if_t<!std::is_same_v<typename detail::Unwrap<U>::type, U>>>
  QueueIterator<BasicQueue, T> end() {
    return {};
  }

 protected:
  bool put_item(T& item, bool block, double timeout) {
    if (!full()) {
      store_.push(std::move(item));
      stored_one();
      return true;
    }
    return put_waiting(&item, block, timeout);
  }

 private:
  T take() {
    T item = store_.pop();
    took_one();
    return item;
  }
  static void store_from(QueueCore* self, void* item) {
    static_cast<BasicQueue*>(self)->store_.push(std::move(*static_cast<T*>(item)));
  }

  Store store_;
};

// FIFO queue (gevent's Queue).
template <class T>
using Queue = BasicQueue<T, detail::FifoStore<T>>;
// Newest first (gevent's LifoQueue, Q-11).
template <class T>
using LifoQueue = BasicQueue<T, detail::LifoStore<T>>;
// Smallest first by Compare (gevent's PriorityQueue, Q-11).
template <class T, class Compare = std::less<T>>
using PriorityQueue = BasicQueue<T, detail::HeapStore<T, Compare>>;

// A FIFO queue that counts unfinished tasks (gevent's JoinableQueue, Q-12):
// every successful put adds one, task_done() removes one, join() waits for 0.
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  explicit JoinableQueue(std::size_t maxsize = 0) : Queue<T>(maxsize) { done_.set(); }

  // As Queue::put; counts one unfinished task once stored.
  void put(T item, bool block = true, double timeout = -1) {
    if (!this->put_item(item, block, timeout)) throw QueueFull();
    added();
  }
  void put_nowait(T item) { put(std::move(item), false); }
  bool try_put(T&& item, double timeout = 0) {
    if (!this->put_item(item, timeout != 0, timeout)) return false;
    added();
    return true;
  }
  bool try_put(const T& item, double timeout = 0) {
    T copy = item;
    return try_put(std::move(copy), timeout);
  }

  // One task finished; at zero, wakes every join() (scheduled, no switch).
  // Throws TaskDoneError when none is unfinished.
  void task_done() {
    if (unfinished_ == 0) throw TaskDoneError();
    if (--unfinished_ == 0) done_.set();
  }
  // Blocks (switches to the hub) until every put item was task_done(), at
  // most `timeout` seconds (< 0: no limit); true when that happened. At once
  // when nothing is unfinished.
  bool join(double timeout = -1) { return done_.wait(timeout); }
  std::size_t unfinished_tasks() const noexcept { return unfinished_; }

 private:
  void added() {
    ++unfinished_;
    done_.clear();
  }
  Event done_;
  std::size_t unfinished_ = 0;
};

}  // namespace fern
