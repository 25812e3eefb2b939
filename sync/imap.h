#pragma once
// The consumer side of Group::imap / imap_unordered (gevent's IMap and
// IMapUnordered): results of member tasks, in input or completion order.
//
// Mapping from gevent:
//   it = g.imap(f, xs); next(it)    auto it = g.imap(f, xs); it.next() -> std::optional<R>
//                                   (std::nullopt after the last result)
//   for r in g.imap_unordered(...)  for (R& r : g.imap_unordered(...))
// A worker's exception is rethrown by next() at that worker's position; the
// next call goes on with the remaining results (PL-7). With maxsize, at most
// that many results are in flight or buffered ahead of the consumer (PL-8).
// A feeder that ends before it spawned every member (killed, or its spawn
// threw) ends the results as in gevent: those of the members it spawned,
// then its exception (GreenletExit for a kill) once, in input order after
// them for imap, when it came for imap_unordered; then std::nullopt (where
// gevent's iterator would wait forever). One thread: the hub's.
#include <algorithm>
#include <cstddef>
#include <limits>
#include <exception>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "fern/core/task.h"
#include "fern/sync/event.h"
#include "fern/sync/queue.h"
#include "fern/sync/semaphore.h"

namespace fern {
namespace detail {

template <class R>
struct IMapState {
  struct Slot {
    std::size_t index = 0;
    std::optional<R> value;
    std::exception_ptr error;
  };

  IMapState(std::size_t n, bool in_order, std::size_t maxsize) : total(n), ordered(in_order) {
    // A maxsize past what a semaphore counts is the same as no bound at all.
    if (maxsize) bound.emplace(static_cast<long>(std::min<std::size_t>(maxsize, std::numeric_limits<long>::max())));
  }

  // From a member's link, in the hub: records its outcome. Never switches.
  void finished(std::size_t index, TaskBase& task) {
    Slot slot;
    slot.index = index;
    slot.error = task.exception();
    if (!slot.error && task.killed()) slot.error = std::make_exception_ptr(GreenletExit());
    if (!slot.error) slot.value.emplace(task_value<R>(task));
    results.put(std::move(slot));  // unbounded: stores without waiting
  }

  // From the feeder's link, in the hub: when it ended before spawning every
  // member, its exception takes the place after the last member it spawned
  // and is the last slot. Never switches.
  void feeder_ended(TaskBase& feeder) {
    if (spawned == total) return;
    Slot slot;
    slot.index = spawned;
    slot.error = feeder.exception();
    if (!slot.error) slot.error = std::make_exception_ptr(GreenletExit());
    expected = spawned + 1;
    results.put(std::move(slot));
  }

  // Blocks for the next slot in the wanted order.
  Slot take() {
    if (!ordered) return results.get();
    for (;;) {
      auto it = early.find(next_index);
      if (it != early.end()) {
        Slot slot = std::move(it->second);
        early.erase(it);
        ++next_index;
        return slot;
      }
      Slot slot = results.get();
      early.emplace(slot.index, std::move(slot));
    }
  }

  Queue<Slot> results;
  std::optional<Semaphore> bound;  // PL-8: one permit per result not yet taken
  std::map<std::size_t, Slot> early;  // ordered: results that overtook an earlier input
  std::size_t total;
  std::size_t spawned = 0;  // members the feeder spawned and linked
  std::size_t expected = total;  // slots the consumer takes (feeder_ended)
  std::size_t yielded = 0;
  std::size_t next_index = 0;
  bool ordered;
};

}  // namespace detail

template <class R>
class IMap {
 public:
  IMap(std::shared_ptr<detail::IMapState<R>> state, AnyTask feeder)
      : state_(std::move(state)), feeder_(std::move(feeder)) {}

  // Blocks (switches to the hub) for the next result; rethrows a worker's
  // exception at its position (and a feeder's, after its members' results);
  // std::nullopt once every input was yielded.
  std::optional<R> next() {
    if (state_->yielded == state_->expected) return std::nullopt;
    auto slot = state_->take();
    ++state_->yielded;
    if (state_->bound) state_->bound->release();
    if (slot.error) std::rethrow_exception(slot.error);
    return std::move(slot.value);
  }
  // How many inputs there are.
  std::size_t size() const noexcept { return state_->total; }
  // The task that spawns the members (it may block while a Pool is full).
  const AnyTask& feeder() const noexcept { return feeder_; }

  class iterator {
   public:
    using value_type = R;
    using reference = R&;
    using pointer = R*;
    using difference_type = std::ptrdiff_t;
    using iterator_category = std::input_iterator_tag;

    iterator() = default;
    reference operator*() { return *current_; }
    iterator& operator++() {
      current_ = owner_->next();
      if (!current_) owner_ = nullptr;
      return *this;
    }
    friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.owner_ == b.owner_; }
    friend bool operator!=(const iterator& a, const iterator& b) noexcept { return a.owner_ != b.owner_; }

   private:
    friend class IMap;
    explicit iterator(IMap* owner) : owner_(owner) { ++*this; }
    IMap* owner_ = nullptr;
    std::optional<R> current_;
  };
  // Blocks for the first result.
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

 private:
  std::shared_ptr<detail::IMapState<R>> state_;
  AnyTask feeder_;
};

}  // namespace fern
