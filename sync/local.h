#pragma once
// Greenlet-local storage (gevent.local.local): one value per greenlet.
//
// Mapping from gevent:
//   class L(local): def __init__(self, *args)   local<T> l(args...): each greenlet's T is
//                                  constructed from copies of args on its first access (LOC-2)
//   l.attr (per greenlet)          l->member, *l, l.get()   (LOC-1)
//   hasattr(l, 'attr')             l.has_value(): has this greenlet made its value yet?
//   del l.attr                     l.reset(): destroys this greenlet's value
// Lifetime (LOC-3): a greenlet's value is destroyed when that greenlet ends
// (a Greenlet::at_exit hook, on its own stack), and every value is destroyed
// with the local. The main greenlet's value lives until the local goes.
// A task is already dead (its joiners may have returned) when its values
// are destroyed, as in gevent, where they go with the greenlet's last
// reference. A destructor may block (switch): the greenlet keeps itself
// alive until its values are gone, even with no handle left.
// A value whose destructor throws is reported and freed; the others go on.
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
  // Deletes a value; what its destructor throws is reported, not propagated.
  using Destroy = void (*)(void*);
  explicit LocalTable(Destroy destroy) noexcept : destroy_(destroy) {}
  LocalTable(const LocalTable&) = delete;
  LocalTable& operator=(const LocalTable&) = delete;
  ~LocalTable();

  // The calling greenlet's value, or nullptr.
  void* find() const noexcept;
  // Stores `value` for the calling greenlet and returns it; the table owns
  // it once this returns. If the greenlet has a value already, returns that
  // one and stores nothing: the caller still owns `value` (as when this throws).
  void* insert(void* value);
  // Destroys the calling greenlet's value; false if it had none.
  bool erase() noexcept;
  std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    GreenletExitHook hook;  // first: the hook's address is the entry's
    LocalTable* table;
    void* value;
  };
  static void on_exit(GreenletExitHook* hook) noexcept;
  void destroy(void* value) noexcept;
  std::unordered_map<unsigned long, Entry> entries_;  // by Greenlet::id(); nodes never move
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
  // If T's constructor itself reaches this local (and so makes a value
  // first), that value is the greenlet's and the outer one is destroyed.
  T& get() {
    if (void* v = table_.find()) return *static_cast<T*>(v);
    std::unique_ptr<T> made(make_());
    void* kept = table_.insert(made.get());
    if (kept != made.get()) return *static_cast<T*>(kept);
    return *made.release();
  }
  T& operator*() { return get(); }
  T* operator->() { return &get(); }

  // Whether the calling greenlet has a value (LOC-1: gevent's hasattr).
  bool has_value() const noexcept { return table_.find() != nullptr; }
  // Destroys the calling greenlet's value; its next access makes a new one.
  void reset() noexcept { table_.erase(); }
  // Values currently held (one per greenlet that made one and still runs).
  std::size_t size() const noexcept { return table_.size(); }

 private:
  // May throw (a T whose destructor is noexcept(false)): the table reports it.
  static void destroy(void* v) { delete static_cast<T*>(v); }

  std::function<T*()> make_;
  detail::LocalTable table_;
};

}  // namespace fern
