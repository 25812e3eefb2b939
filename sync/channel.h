#pragma once
// Channel (gevent.queue.Channel): a queue without a buffer; every put is a
// rendezvous with a get.
//
// Mapping from gevent:
//   Channel()                       Channel<T>
//   ch.put(item, block, timeout)    ch.put(item, block, timeout): returns once a getter has
//                                   taken the item and run until it blocked; no getter in
//                                   time -> throws QueueFull
//   ch.put_nowait(item)             ch.put_nowait(item): QueueFull at once without a parked getter
//   ch.get(block, timeout)          ch.get(block, timeout); nothing in time -> QueueEmpty
//   ch.get_nowait()                 ch.get_nowait(): QueueEmpty at once without a parked putter
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
  ~ChannelCore() = default;

  // Parks a putter of *item until a getter took it (true) or, not blocking
  // or after `timeout`, nobody did (false).
  bool put_item(void* item, bool block, double timeout);
  // Parks a getter until a putter's item is in *slot (true), or false.
  bool get_item(void* slot, bool block, double timeout);

 private:
  struct Node : WaitNode {
    void* item = nullptr;  // a putter's item, or a getter's empty slot
  };
  static void unlock(void* self, const bool& gone);
  bool put_in_hub(void* item);
  bool get_in_hub(void* slot);

  WaitList getters_;
  WaitList putters_;
  Notifier unlock_;  // after the lists: destroyed first
  HandOver hand_over_;
};

}  // namespace detail

template <class T>
class Channel : public detail::ChannelCore {
 public:
  using value_type = T;

  Channel() noexcept : ChannelCore(&hand_over) {}

  // Blocks (switches to the hub) until a getter has taken item and run, at
  // most `timeout` seconds (< 0: no limit); not blocking: waits only for
  // getters already parked. Throws QueueFull when none took it. A kill or
  // Timeout thrown in propagates and the item is not delivered.
  void put(T item, bool block = true, double timeout = -1) {
    if (!put_item(&item, block, timeout)) throw QueueFull();
  }
  void put_nowait(T item) { put(std::move(item), false); }
  // put() with the outcome as a value: false (item untouched) when no getter
  // took it within `timeout` (0: only a getter already parked).
  bool try_put(T&& item, double timeout = 0) { return put_item(&item, timeout != 0, timeout); }

  // Blocks (switches to the hub) until a putter hands an item over, at most
  // `timeout` seconds (< 0: no limit); not blocking: takes only from putters
  // already parked. Throws QueueEmpty when none came; nothing is lost.
  T get(bool block = true, double timeout = -1) {
    std::optional<T> slot;
    if (!get_item(&slot, block, timeout)) throw QueueEmpty();
    return std::move(*slot);
  }
  T get_nowait() { return get(false); }
  std::optional<T> try_get(double timeout = 0) {
    std::optional<T> slot;
    get_item(&slot, timeout != 0, timeout);
    return slot;
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
