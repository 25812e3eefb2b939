#pragma once
// Greenlet-local storage (gevent.local.local): one value per greenlet.
//
// Mapping from gevent:
//   class L(local): def __init__(self, *args)   local<T> l(args...): each greenlet's T is
//                                  constructed from copies of args on its first access (LOC-2)
//   l.attr (per greenlet)          l->member, *l, l.get()   (LOC-1)
//   hasattr(l, 'attr')             l.has_value(): has this greenlet made its value yet?
//   del l.attr                     l.reset(): destroys this greenlet's value
// Lifetime (LOC-3): every value is destroyed with the local. A value of a
// greenlet that has ended is destroyed lazily, because core has no
// greenlet-end hook: by collect(), or by the sweep that runs when a new
// greenlet's value makes the table twice as big as after the last sweep (so
// at most about as many dead values as live ones are kept). Until then the
// table keeps a handle to each greenlet that made a value, so such a
// greenlet's record (not its stack, which goes when it ends) lives on.
// One thread: use one local per thread (e.g. thread_local) for threads.
#include <cstddef>
#include <functional>
#include <memory>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "fern/core/greenlet.h"

namespace fern {
namespace detail {

// Values by greenlet id, type-erased; the owner handle tells when it ended.
class LocalTable {
 public:
  using Destroy = void (*)(void*) noexcept;
  explicit LocalTable(Destroy destroy) noexcept : destroy_(destroy) {}
  LocalTable(const LocalTable&) = delete;
  LocalTable& operator=(const LocalTable&) = delete;
  ~LocalTable();

  // The calling greenlet's value, or nullptr.
  void* find() const noexcept;
  // Stores `value` (owned from now on) for the calling greenlet, which has
  // none; may first sweep values of ended greenlets.
  void insert(void* value);
  // Destroys the calling greenlet's value; false if it had none.
  bool erase() noexcept;
  // Destroys the values of greenlets that have ended; returns how many.
  std::size_t collect();
  std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    Greenlet owner;
    void* value;
  };
  std::unordered_map<unsigned long, Entry> entries_;  // by Greenlet::id()
  std::size_t sweep_at_ = 16;
  Destroy destroy_;
};

}  // namespace detail

template <class T>
class local {
 public:
  // Each greenlet's value will be T(args...) with copies of these args.
  template <class... Args>
  explicit local(Args&&... args)
      : make_([saved = std::make_tuple(std::forward<Args>(args)...)]() {
          return std::apply([](const auto&... a) { return new T(a...); }, saved);
        }),
        table_(&destroy) {}
  local(const local&) = delete;
  local& operator=(const local&) = delete;
  // Destroys every greenlet's value (LOC-3).
  ~local() = default;

  // The calling greenlet's value, made on its first access. Never switches.
  T& get() {
    if (void* v = table_.find()) return *static_cast<T*>(v);
    std::unique_ptr<T> made(make_());
    table_.insert(made.get());
    return *made.release();
  }
  T& operator*() { return get(); }
  T* operator->() { return &get(); }

  // Whether the calling greenlet has a value (LOC-1: gevent's hasattr).
  bool has_value() const noexcept { return table_.find() != nullptr; }
  // Destroys the calling greenlet's value; its next access makes a new one.
  void reset() noexcept { table_.erase(); }
  // Destroys the values of greenlets that have ended; returns how many.
  std::size_t collect() { return table_.collect(); }
  // Values currently held (live greenlets' and not yet collected ones).
  std::size_t size() const noexcept { return table_.size(); }

 private:
  static void destroy(void* v) noexcept { delete static_cast<T*>(v); }

  std::function<T*()> make_;
  detail::LocalTable table_;
};

}  // namespace fern
