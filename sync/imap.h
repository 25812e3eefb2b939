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
// The feeder (gevent's IMap greenlet) reads the input as it goes, so the
// input may be a Queue the consumer feeds. A feeder that fails (the input's
// iterator threw, or a spawn did) or is killed ends the results as in
// gevent: those of the members it spawned, then its exception (GreenletExit
// for a kill) once, in input order after them for imap, when it came for
// imap_unordered; then std::nullopt (where gevent's iterator would wait
// forever after a kill). One thread: the hub's.
#include <algorithm>
#include <cstddef>
#include <limits>
#include <exception>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <type_traits>
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
    bool end = false;     // no member after it (index: the members spawned)
    bool feeder = false;  // the feeder's slot, not a member's
  };

  IMapState(bool in_order, std::size_t maxsize) : ordered(in_order) {
    // A maxsize past what a semaphore counts is the same as no bound at all.
    if (maxsize) bound.emplace(static_cast<long>(std::min<std::size_t>(maxsize, std::numeric_limits<long>::max())));
  }

  // From a member's link, in the hub: records its outcome. Never switches.
  void finished(std::size_t index, TaskBase& task) {
    std::exception_ptr error = task.exception();
    if (!error && task.killed()) error = std::make_exception_ptr(GreenletExit());
    finished_with(index, error ? std::nullopt : std::optional<R>(task_value<R>(task)), error);
  }
  // The same for an outcome from elsewhere (ThreadPool::imap): a value, or
  // an error when error is set.
  void finished_with(std::size_t index, std::optional<R> value, std::exception_ptr error) {
    Slot slot;
    slot.index = index;
    slot.error = std::move(error);
    slot.value = std::move(value);
    results.put(std::move(slot));  // unbounded: stores without waiting
  }

  // From the feeder's link, in the hub: the end of the members, with the
  // feeder's exception when it failed (its input threw, or a spawn did) or
  // was killed. Never switches.
  void feeder_ended(TaskBase& feeder) {
    Slot slot;
    slot.index = spawned;
    slot.end = true;
    slot.feeder = true;
    slot.error = feeder.exception();
    if (!slot.error && feeder.killed()) slot.error = std::make_exception_ptr(GreenletExit());
    results.put(std::move(slot));
  }

  // Blocks for the next slot in the wanted order: in input order the end
  // comes after every member; in completion order an end with an exception
  // comes when it came, a plain end once every member's slot was taken.
  Slot take() {
    if (!ordered) {
      for (;;) {
        if (end_at && taken == *end_at) {
          Slot end;
          end.end = true;
          return end;
        }
        Slot slot = results.get();
        if (!slot.end) return slot;
        end_at = slot.index;
        if (slot.error) {
          slot.end = false;  // an error in the stream; the end itself comes later
          return slot;
        }
      }
    }
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
  std::size_t spawned = 0;  // members the feeder spawned and linked
  std::size_t taken = 0;    // members' slots the consumer took
  std::size_t next_index = 0;
  std::optional<std::size_t> end_at;  // unordered: members spawned, once the feeder ended
  bool done = false;  // the end was taken: every next() is std::nullopt now
  bool ordered;
};

// What an imap's feeder iterates: a copy of a copyable lvalue range (the
// caller's may change or go meanwhile), a moved-in rvalue one, or the
// caller's own non-copyable range (a Queue or Channel of std::optional
// items), which must then outlive the feeder.
template <class Range, class Plain = std::remove_cv_t<std::remove_reference_t<Range>>,
          bool kByReference = std::is_lvalue_reference_v<Range> && !std::is_copy_constructible_v<Plain>>
class FeedRange {
 public:
  explicit FeedRange(Range&& range) : range_(std::forward<Range>(range)) {}
  Plain& get() noexcept { return range_; }

 private:
  Plain range_;
};
template <class Range, class Plain>
class FeedRange<Range, Plain, true> {
 public:
  explicit FeedRange(Range&& range) noexcept : range_(&range) {}
  Plain& get() noexcept { return *range_; }

 private:
  Plain* range_;
};

// The type of an input of a range (what its iterator yields).
template <class Range>
using RangeItem = std::decay_t<decltype(*std::begin(std::declval<std::remove_reference_t<Range>&>()))>;

// imap and imap_unordered of an Owner (Group, ThreadPool) that makes its
// IMap with make_imap(fn, inputs, ordered, maxsize).
template <class Owner>
class IMapFront {
 public:
  template <class F, class Range>
  auto imap(F fn, Range&& inputs, std::size_t maxsize = 0) {
    return static_cast<Owner*>(this)->make_imap(std::move(fn), std::forward<Range>(inputs), true, maxsize);
  }
  template <class F, class Range>
  auto imap_unordered(F fn, Range&& inputs, std::size_t maxsize = 0) {
    return static_cast<Owner*>(this)->make_imap(std::move(fn), std::forward<Range>(inputs), false, maxsize);
  }
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
    if (state_->done) return std::nullopt;
    auto slot = state_->take();
    if (slot.end) {
      state_->done = true;
      if (slot.error) std::rethrow_exception(slot.error);
      return std::nullopt;
    }
    if (!slot.feeder) {
      ++state_->taken;
      if (state_->bound) state_->bound->release();
    }
    if (slot.error) std::rethrow_exception(slot.error);
    return std::move(slot.value);
  }
  // How many members the feeder spawned so far (every input's, once it ended).
  std::size_t size() const noexcept { return state_->spawned; }
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
