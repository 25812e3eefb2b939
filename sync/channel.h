#pragma once
// Channel (gevent.queue.Channel): a queue without a buffer; every put is a
// rendezvous with a get.
//
// Mapping from gevent:
//   Channel()                       Channel<T>
//   ch.put(item)                    ch.put(item): returns once a getter has taken the item and
//                                   run until it blocked
//   ch.put(item, timeout=s)         ch.put_for(item, d) / put_until(item, deadline) -> bool
//   ch.put(item, block=False)       ch.try_put(item) -> bool; ch.put_nowait(item): QueueFull
//                                   without a parked getter
//   ch.get() / get(timeout=s)       ch.get() / ch.get_for(d), get_until(deadline) -> std::optional
//   ch.get(block=False)             ch.try_get() -> std::optional; ch.get_nowait(): QueueEmpty
//                                   without a parked putter
//   ch.balance                      ch.balance() = parked putters - parked getters
//   qsize(), empty(), full()        0, true, true (there is never a buffered item)
//   for x in ch:                    as Queue: for (U x : ch) on Channel<std::optional<U>>, or
//                                   ch.until(stop)
// Order: puts and gets are paired FIFO by one hub callback, which first runs
// the getter (with its item), then the putter. One thread: the hub's.
#include <cstddef>
#include <optional>
#include <utility>

#include "fern/sync/queue.h"

namespace fern {
namespace detail {

// The pairing of parked putters and getters, independent of the item type.
class ChannelCore {
 public:
  ChannelCore(const ChannelCore&) = delete;
  ChannelCore& operator=(const ChannelCore&) = delete;

  long balance() const noexcept {
    return static_cast<long>(putters_.size()) - static_cast<long>(getters_.size());
  }
  std::size_t qsize() const noexcept { return 0; }
  bool empty() const noexcept { return true; }
  bool full() const noexcept { return true; }

 protected:
  // hand_over(from, to) moves the item at `from` (a T) into the slot at `to`
  // (a std::optional<T>).
  using HandOver = void (*)(void* from, void* to);
  explicit ChannelCore(HandOver hand_over) noexcept;
  ~ChannelCore();

  // Parks a putter of *item until a getter took it (true) or, not blocking
  // or after `timeout`, nobody did (false).
  bool put_item(void* item, bool block, Deadline deadline);
  // Parks a getter until a putter's item is in *slot (true), or false.
  bool get_item(void* slot, bool block, Deadline deadline);

 private:
  struct Node : WaitNode {
    void* item = nullptr;  // a putter's item, or a getter's empty slot
    ResumeNode rescue;     // wakes a paired putter whose channel is destroyed first
    ChannelCore* paired_in = nullptr;  // while this putter waits for its wake after the getter
    Node() = default;
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;
    // A paired putter killed before its wake leaves the channel's pairing.
    ~Node() {
      if (paired_in && paired_in->paired_putter_ == this) paired_in->paired_putter_ = nullptr;
    }
  };
  static Waiter* step(void* self, bool first);
  bool put_in_hub(void* item);
  bool get_in_hub(void* slot);

  WaitList getters_;
  WaitList putters_;
  Notifier unlock_;  // after the lists: destroyed first
  HandOver hand_over_;
  Node* paired_putter_ = nullptr;  // its getter runs first; it is woken by the next step
};

}  // namespace detail

template <class T>
class Channel : public detail::ChannelCore {
 public:
  using value_type = T;

  Channel() noexcept : ChannelCore(&hand_over) {}

  // Blocks (switches to the hub) until a getter has taken item and run. A
  // kill or Timeout thrown in propagates and the item is not delivered (the
  // getter's wake and the putter's are one round, which no timer cuts, F6).
  // In the hub, which cannot wait: QueueFull without a parked getter.
  void put(T item) {
    if (!put_item(&item, true, Deadline::never())) throw QueueFull();
  }
  // Up to the deadline: false (an rvalue item left untouched) when no
  // getter took it in time; true once one did.
  bool put_until(T&& item, Deadline deadline) { return put_item(&item, true, deadline); }
  bool put_for(T&& item, Duration d) { return put_until(std::move(item), d.from_now()); }
  // Only to a getter already parked (one loop pass): false without one.
  bool try_put(T&& item) { return put_item(&item, false, Deadline::never()); }
  // gevent's put_nowait: QueueFull when no getter took it.
  void put_nowait(T item) {
    if (!put_item(&item, false, Deadline::never())) throw QueueFull();
  }

  // Blocks (switches to the hub) until a putter hands an item over; nothing
  // is lost when a kill or Timeout ends the wait. In the hub, which cannot
  // wait: QueueEmpty without a parked putter.
  T get() {
    std::optional<T> slot;
    if (!get_item(&slot, true, Deadline::never())) throw QueueEmpty();
    return std::move(*slot);
  }
  std::optional<T> get_until(Deadline deadline) {
    std::optional<T> slot;
    get_item(&slot, true, deadline);
    return slot;
  }
  std::optional<T> get_for(Duration d) { return get_until(d.from_now()); }
  // Only from a putter already parked (one loop pass).
  std::optional<T> try_get() {
    std::optional<T> slot;
    get_item(&slot, false, Deadline::never());
    return slot;
  }
  // gevent's get_nowait: QueueEmpty without a parked putter.
  T get_nowait() {
    std::optional<T> slot;
    if (!get_item(&slot, false, Deadline::never())) throw QueueEmpty();
    return std::move(*slot);
  }

  // Range-for over items until a stop item, which is consumed.
  QueueRange<Channel, T> until(T stop) { return QueueRange<Channel, T>(*this, std::move(stop)); }
  template <class U = T, class = std::enable_if_t<!std::is_same_v<typename detail::Unwrap<U>::type, U>>>
  QueueIterator<Channel, T> begin() {
    return QueueIterator<Channel, T>(*this, T{});
  }
  template <class U = T, class = std::enable_if_t<!std::is_same_v<typename detail::Unwrap<U>::type, U>>>
  QueueIterator<Channel, T> end() {
    return {};
  }

 private:
  static void hand_over(void* from, void* to) {
    static_cast<std::optional<T>*>(to)->emplace(std::move(*static_cast<T*>(from)));
  }
};

}  // namespace fern
