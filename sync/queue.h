#pragma once
// Queues (gevent.queue), built on the hub's one-shot Waiter.
//
// Mapping from gevent 22.10:
//   Queue(maxsize=None)            Queue<T>(maxsize): 0 (the default) = unbounded, as gevent
//                                  22.10 reads maxsize 0 and None alike
//   q.put(item)                    q.put(item) (blocks while full)
//   q.put(item, timeout=s)         q.put_for(item, d) / q.put_until(item, deadline) -> bool
//   q.put(item, block=False)       q.try_put(item) -> bool; q.put_nowait(item) throws QueueFull
//   q.get()                        q.get() (blocks while empty)
//   q.get(timeout=s)               q.get_for(d) / q.get_until(deadline) -> std::optional<T>
//   q.get(block=False)             q.try_get() -> std::optional<T>; q.get_nowait() throws
//                                  QueueEmpty, never fern::Timeout
//   q.peek(...)                    q.peek(), q.peek_for(d), q.try_peek(), q.peek_nowait()
// Outcomes of a timed or non-blocking call are values (STYLE); the *_nowait
// names keep gevent's exceptions.
//   qsize(), empty(), full(), maxsize   same names; maxsize() is 0 when unbounded
//   for x in q: (until StopIteration)   Queue<std::optional<U>>: for (U x : q) stops at (and
//                                  consumes) a std::nullopt item; any T: for (T x : q.until(stop))
//   LifoQueue, PriorityQueue       LifoQueue<T>, PriorityQueue<T, Compare = std::less<T>>
//                                  (smallest first, like heapq)
//   JoinableQueue                  JoinableQueue<T>: task_done(), join(), join_for(d) -> bool,
//                                  unfinished_tasks(); one task_done too many -> TaskDoneError;
//                                  items put through a Queue<T>& count too
//   Channel                        Channel<T> in fern/sync/channel.h
//   q.shutdown()                   q.shutdown(): later puts throw QueueShutDown, gets take
//                                  what is left, then throw it (Q-13, gevent 24.10)
//   q.shutdown(immediate=True)     q.shutdown_now(): the items are dropped (JoinableQueue:
//                                  each counts as done), gets throw at once
//   q.is_shutdown, queue.ShutDown  q.is_shut_down(), QueueShutDown
// Order (SEMANTICS F7, Q-3, Q-4, S11, S12): neither put nor get switches
// when it can complete; a put with getters parked, or a get with putters
// parked, schedules one hub callback (gevent's _unlock) that serves parked
// putters and getters FIFO, each woken greenlet running before the next is
// served. A timed-out or killed getter takes nothing; a timed-out or killed
// putter leaves nothing behind (TO-10). A blocking get with nothing else
// runnable ends in LoopExit. In the hub (a loop callback), which
// cannot wait, a call serves parked partners inline; a blocking
// put()/get()/peek() that still cannot complete throws QueueFull/QueueEmpty,
// as gevent's do. One thread: the hub's.
// Shutdown is not an outcome of one call but a state of the queue,
// so every call that meets it throws QueueShutDown, the timed and
// non-blocking ones too (try_get's empty and try_put's false keep meaning
// "not now", and a polling loop does not spin on a queue that will never
// change; gevent's put(block=False) and get(timeout=s) raise ShutDown). A
// put throws before it touches its item. Greenlets parked at the shutdown
// are woken by one hub callback round, FIFO: getters first (each takes a
// remaining item while there is one, as CPython's do; gevent 24.10 throws
// into them even then), then putters, whose items are not stored.
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

// put() or get() on a queue that was shut down (queue.ShutDown, Q-13): a
// get only once no item is left, or at once after shutdown_now().
class QueueShutDown : public std::runtime_error {
 public:
  QueueShutDown() : std::runtime_error("fern: queue is shut down") {}
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
  using ShutDown = QueueShutDown;  // for generic code (Remote::put)
  QueueCore(const QueueCore&) = delete;
  QueueCore& operator=(const QueueCore&) = delete;

  std::size_t qsize() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  bool full() const noexcept { return maxsize_ != 0 && size_ >= maxsize_; }
  std::size_t maxsize() const noexcept { return maxsize_; }  // 0: unbounded
  std::size_t getter_count() const noexcept { return getters_.size(); }
  std::size_t putter_count() const noexcept { return putters_.size() + refused_.size(); }
  bool is_shut_down() const noexcept { return shut_down_; }

 protected:
  // store_from(self, item) moves *item (a T on a parked putter's stack)
  // into the store of the queue `self`.
  using StoreFrom = void (*)(QueueCore* self, void* item);
  QueueCore(std::size_t maxsize, StoreFrom store_from) noexcept;
  ~QueueCore() = default;

  // A put may store at once: there is room and the queue is not shut down.
  bool may_store() const noexcept { return size_ < store_limit_; }
  // After the template stored one item without waiting.
  void stored_one() noexcept {
    ++size_;
    counted();
    if (!getters_.empty()) unlock_.schedule();
  }
  // After the template took one item.
  void took_one() noexcept {
    --size_;
    if (!putters_.empty()) unlock_.schedule();
  }
  // The queue is full: parks the caller as a putter of *item (or serves
  // getters inline when called in the hub) until the deadline; `block`
  // false: only the hub's inline serving. True once *item is stored.
  bool put_waiting(void* item, bool block, Deadline deadline);
  // The queue is empty: parks the caller as a getter. True once an item is
  // there for the caller to take or peek.
  bool await_item(bool block, Deadline deadline);
  // Shuts the queue down; `dropped_all`: the template has just
  // dropped every item (shutdown_now), which settles them as tasks done.
  // Parked greenlets are woken by the closing round; no switch.
  void shut_down(bool dropped_all);

  // JoinableQueue's count of unfinished tasks, kept here so that every way
  // of storing an item counts (also a put through a Queue<T>&).
  struct JoinCount {
    Event done;
    std::size_t unfinished = 0;
  };
  JoinCount* join_count_ = nullptr;

 private:
  void counted() noexcept {
    if (join_count_ && join_count_->unfinished++ == 0) join_count_->done.clear();
  }
  struct PutNode : WaitNode {
    void* item = nullptr;
  };
  static Waiter* step(void* self, bool first);
  static Waiter* close_step(void* self, bool first);
  bool store_for(PutNode& putter);
  bool put_in_hub(void* item);
  bool get_in_hub();

  WaitList getters_;
  WaitList putters_;
  WaitList refused_;  // parked putters refused by the shutdown, for closer_
  Notifier unlock_;   // after the lists: destroyed first
  Notifier closer_;   // the shutdown's round: wakes getters, then refused_
  Liveness alive_;    // for the inline hand-offs in the hub
  bool try_getter_ = false;  // the round's alternation: a putter, then a getter, ...
  bool acted_ = false;       // this putter-getter pass woke someone
  bool round_over_ = false;
  StoreFrom store_from_;
  bool shut_down_ = false;
  std::size_t size_ = 0;
  std::size_t maxsize_;
  // may_store's one comparison: maxsize_, SIZE_MAX when unbounded, 0 once
  // shut down (every put then takes put_waiting, which refuses it).
  std::size_t store_limit_;
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
  // As pop, moving straight into `out`: a move that throws takes nothing.
  void pop_into(std::optional<T>& out) {
    out.emplace(std::move(items.front()));
    items.pop_front();
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
  void pop_into(std::optional<T>& out) {
    out.emplace(std::move(items.back()));
    items.pop_back();
  }
  const T& top() const { return items.back(); }
};

// A binary heap with the smallest item (by Compare) on top, by heapq's
// algorithm (gevent's PriorityQueue is heapq: the same order, ties
// included). Every move is a swap along one chain of positions; if Compare
// throws, the swaps are undone in reverse, so the heap is as it was (a push
// adds nothing, a pop takes nothing) and the exception goes on, where
// std::push_heap / pop_heap would lose the item being sifted and leave a
// moved-from one in its place. (Undoing swaps T's moves, which must not
// throw then; a T whose move throws inside a swap may duplicate one item
// and lose another: give a PriorityQueue items with non-throwing moves.)
template <class T, class Compare>
struct HeapStore {
  std::vector<T> items;
  Compare less;

  // The positions a push or pop swapped its way through, each swap between
  // two neighbours of the list: a root swap and two walks of a 64-level heap.
  struct Chain {
    std::size_t at[2 * 64 + 2];
    int n = 0;
  };
  void swap_to(Chain& c, std::size_t to) {
    using std::swap;
    swap(items[c.at[c.n - 1]], items[to]);
    c.at[c.n++] = to;
  }
  void undo(Chain& c) noexcept {
    using std::swap;
    for (; c.n > 1; --c.n) swap(items[c.at[c.n - 1]], items[c.at[c.n - 2]]);
  }
  // heapq._siftdown: the item at the chain's end moves up while it is
  // smaller than its parent.
  void bubble_up(Chain& c) {
    for (std::size_t pos = c.at[c.n - 1]; pos > 0; pos = c.at[c.n - 1]) {
      std::size_t parent = (pos - 1) / 2;
      if (!less(items[pos], items[parent])) break;
      swap_to(c, parent);
    }
  }
  void push(T&& v) {
    items.push_back(std::move(v));
    Chain c;
    c.at[c.n++] = items.size() - 1;
    try {
      bubble_up(c);
    } catch (...) {
      undo(c);
      items.pop_back();
      throw;
    }
  }
  // heapq.heappop: the last item takes the root, goes down to a leaf along
  // the smaller children (_siftup), then back up (_siftdown); the top ends
  // at the back, where it leaves. A move out of the back that throws undoes
  // the sift too, so the heap keeps its order and its top.
  T pop() {
    Chain c = sift_top_to_back();
    try {
      T v = std::move(items.back());
      items.pop_back();
      return v;
    } catch (...) {
      undo(c);
      throw;
    }
  }
  void pop_into(std::optional<T>& out) {
    Chain c = sift_top_to_back();
    try {
      out.emplace(std::move(items.back()));
    } catch (...) {
      undo(c);
      throw;
    }
    items.pop_back();
  }
  // The swaps that took the top to the back, for undo (already undone
  // when Compare or a move throws here).
  Chain sift_top_to_back() {
    Chain c;
    std::size_t end = items.size() - 1;
    c.at[c.n++] = end;
    if (end == 0) return c;
    try {
      swap_to(c, 0);
      for (std::size_t child = 1; child < end; child = 2 * c.at[c.n - 1] + 1) {
        if (child + 1 < end && !less(items[child], items[child + 1])) ++child;
        swap_to(c, child);
      }
      bubble_up(c);
    } catch (...) {
      undo(c);
      throw;
    }
    return c;
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
// not yielded). Each step blocks in get(), so a queue shut down without
// the stop item throws QueueShutDown out of the loop. Yields U for
// std::optional<U> items.
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

  // A handle other threads put() on it through, waking its getters in this
  // thread's hub (sync/remote.h). This thread only.
  Remote<BasicQueue> remote() { return Remote<BasicQueue>(remote_.acquire(this)); }

  // Stores item (no switch) when there is room, else parks FIFO (switches
  // to the hub) until a get makes room. A kill or Timeout thrown in
  // propagates and nothing is stored. In the hub, which cannot wait, a
  // queue that stays full throws QueueFull (gevent's Full). Every put on a
  // shut-down queue throws QueueShutDown, as does a parked one woken by
  // the shutdown (its item not stored).
  void put(T item) {
    if (!put_item(item, true, Deadline::never())) throw QueueFull();
  }
  // As put, up to the deadline: false (and nothing stored) when there was
  // no room in time. An rvalue item is left untouched on false.
  bool put_until(T&& item, Deadline deadline) { return put_item(item, true, deadline); }
  bool put_until(const T& item, Deadline deadline) {
    T copy = item;
    return put_item(copy, true, deadline);
  }
  bool put_for(T&& item, Duration d) { return put_until(std::move(item), d.from_now()); }
  bool put_for(const T& item, Duration d) { return put_until(item, d.from_now()); }
  // Without blocking: false when full (QueueShutDown when shut down).
  bool try_put(T&& item) { return put_item(item, false, Deadline::never()); }
  bool try_put(const T& item) {
    T copy = item;
    return put_item(copy, false, Deadline::never());
  }
  // gevent's put_nowait: QueueFull when full.
  void put_nowait(T item) {
    if (!put_item(item, false, Deadline::never())) throw QueueFull();
  }

  // Takes the next item (no switch) when there is one, else parks FIFO
  // (switches to the hub) until a put. After a kill or Timeout nothing was
  // taken (Q-2, TO-10); with nothing else runnable: LoopExit. In the
  // hub, which cannot wait, a queue that stays empty throws QueueEmpty.
  // Every get on a shut-down queue with nothing left throws QueueShutDown,
  // as does a parked one woken by the shutdown with nothing left for it.
  T get() {
    if (empty() && !await_item(true, Deadline::never())) throw QueueEmpty();
    return take();
  }
  // As get, up to the deadline: empty when nothing came in time.
  std::optional<T> get_until(Deadline deadline) {
    if (empty() && !await_item(true, deadline)) return std::nullopt;
    return take_optional();
  }
  std::optional<T> get_for(Duration d) { return get_until(d.from_now()); }
  // Without blocking: empty when there is no item (QueueShutDown when
  // there never will be: shut down).
  std::optional<T> try_get() {
    if (empty() && !await_item(false, Deadline::never())) return std::nullopt;
    return take_optional();
  }
  // gevent's get_nowait: QueueEmpty when there is no item.
  T get_nowait() {
    if (empty() && !await_item(false, Deadline::never())) throw QueueEmpty();
    return take();
  }

  // A copy of the item get() would return, left in the queue; blocks,
  // times out and refuses like the get of the same name.
  T peek() {
    if (empty() && !await_item(true, Deadline::never())) throw QueueEmpty();
    return store_.top();
  }
  std::optional<T> peek_until(Deadline deadline) {
    if (empty() && !await_item(true, deadline)) return std::nullopt;
    return store_.top();
  }
  std::optional<T> peek_for(Duration d) { return peek_until(d.from_now()); }
  std::optional<T> try_peek() {
    if (empty() && !await_item(false, Deadline::never())) return std::nullopt;
    return store_.top();
  }
  T peek_nowait() {
    if (empty() && !await_item(false, Deadline::never())) throw QueueEmpty();
    return store_.top();
  }

  // gevent's shutdown(): from now on every put throws
  // QueueShutDown; gets take the items left, then throw it. Parked putters
  // and getters are woken by one hub callback round (no switch here):
  // getters FIFO, each taking an item while one is left, the rest and then
  // the putters with QueueShutDown. A second call changes nothing.
  void shutdown() { shut_down(false); }
  // shutdown(immediate=True): as shutdown(), and the items are dropped
  // first (destroyed before this returns), so every get throws at once; in
  // a JoinableQueue each dropped item counts as task_done(), which may
  // wake join(). Also after shutdown().
  void shutdown_now() {
    decltype(store_.items) dropped;  // destroyed once the queue is consistent
    dropped.swap(store_.items);
    shut_down(true);
  }

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
  // Expected: without it GCC 12 stops inlining the deque's push here
  // (+19 instructions an operation in op_count's queue_fern). Not
  // [[likely]]: a C++20 attribute, and this header is C++17.
  bool put_item(T& item, bool block, Deadline deadline) {
    if (__builtin_expect(may_store(), 1)) {
      store_.push(std::move(item));
      stored_one();
      return true;
    }
    return put_waiting(&item, block, deadline);
  }

 private:
  // A take whose move of the item throws takes nothing (the item stays
  // first in line): the item is moved once, into the caller's result.
  T take() {
    T item = store_.pop();
    took_one();
    return item;
  }
  std::optional<T> take_optional() {
    std::optional<T> item;
    store_.pop_into(item);
    took_one();
    return item;
  }
  static void store_from(QueueCore* self, void* item) {
    static_cast<BasicQueue*>(self)->store_.push(std::move(*static_cast<T*>(item)));
  }

  Store store_;
  detail::RemoteHome remote_;
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
// every stored item adds one (whichever put stored it, also through a
// Queue<T>&), task_done() removes one, join() waits for 0. shutdown_now()
// counts each item it drops as done; items taken before stay unfinished.
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  explicit JoinableQueue(std::size_t maxsize = 0) : Queue<T>(maxsize) {
    count_.done.set();
    this->join_count_ = &count_;
  }

  // One task finished; at zero, wakes every join() (scheduled, no switch).
  // Throws TaskDoneError when none is unfinished.
  void task_done() {
    if (count_.unfinished == 0) throw TaskDoneError();
    if (--count_.unfinished == 0) count_.done.set();
  }
  // Blocks (switches to the hub) until every stored item was task_done();
  // at once when nothing is unfinished. join_until/join_for: false when
  // the deadline passed first.
  void join() { count_.done.wait(); }
  bool join_until(Deadline deadline) { return count_.done.wait_until(deadline); }
  bool join_for(Duration d) { return count_.done.wait_for(d); }
  std::size_t unfinished_tasks() const noexcept { return count_.unfinished; }

 private:
  typename Queue<T>::JoinCount count_;
};

}  // namespace fern
