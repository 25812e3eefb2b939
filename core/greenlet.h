#pragma once
// Greenlets: stackful coroutines arranged in a tree, as in Python's greenlet.
//
// Mapping from greenlet (Python) to fern:
//   greenlet(run, parent)      Greenlet(run, parent)  (parent defaults to current)
//   g.switch(*args)            g.switch_to(args...)   -> std::any
//   g.throw(exc) / g.throw()   g.throw_in(exc) / g.throw_in()  (GreenletExit)
//   getcurrent()               Greenlet::current()
//   bool(g), g.dead            g.active(), g.dead();  g.started() = active or dead
//   g.parent = p               g.set_parent(p)  (typed errors, GL-14)
//   greenlet.error             GreenletError, CrossThreadError, CyclicParentError
//
// Values (GL-3): a switch packs its arguments into one std::any, the value
// the other side's switch returns (or run receives): no arguments -> an empty
// std::any; one argument -> that value (decayed); several -> a std::tuple of
// them. C++ has no keyword arguments. A body's return value (empty for void)
// travels to its parent the same way; a body that lets GreenletExit escape
// sends the GreenletExit object as the value (GL-7).
//
// Ownership: Greenlet is a reference-counted handle (copies share one
// greenlet); a child holds its parent, the running greenlet holds itself.
// Handles that live on a greenlet's own stack do not count for it (C++ has
// no cycle collector: `Greenlet me = Greenlet::current();` in a body must
// not keep it alive forever). When the last counting handle to a suspended
// greenlet goes, GreenletExit is thrown into it so every destructor on its
// stack runs (GL-19). Handles, like greenlets, belong to their thread.
#include <any>
#include <cstddef>
#include <exception>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "fern/core/exceptions.h"

namespace fern {
namespace detail {
class GreenletImpl;
}

class Greenlet {
 public:
  using Run = std::function<std::any(std::any)>;

  // An empty handle: refers to no greenlet.
  Greenlet() noexcept = default;

  // Creates a greenlet that calls run(value of the first switch) on a stack
  // of stack_size bytes (0: arch::default_stack_size()) the first time it is
  // switched to; does not run it (GL-1). Its parent is `parent`, or the
  // current greenlet when parent is empty (GL-5). `run` may also take no
  // argument, and may return void.
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Greenlet>>>
  explicit Greenlet(F&& run, const Greenlet& parent = {}, std::size_t stack_size = 0)
      : Greenlet(wrap(std::forward<F>(run)), parent, stack_size, 0) {}

  Greenlet(const Greenlet& other) noexcept : impl_(other.impl_) { hold(); }
  Greenlet(Greenlet&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) { rehold(&other); }
  Greenlet& operator=(const Greenlet& other) noexcept {
    if (impl_ != other.impl_) {
      drop();
      impl_ = other.impl_;
      hold();
    }
    return *this;
  }
  Greenlet& operator=(Greenlet&& other) noexcept {
    if (this != &other) {
      drop();
      impl_ = std::exchange(other.impl_, nullptr);
      rehold(&other);
    }
    return *this;
  }
  // Dropping the last handle to a suspended greenlet kills it (see above).
  ~Greenlet() { drop(); }

  // The running greenlet of this thread (its main greenlet outside any other).
  static Greenlet current();

  // Suspends the caller and resumes this greenlet with the packed arguments
  // (starting it if new; a dead one hands them to its first live ancestor,
  // GL-8). Returns the value of whichever switch resumes the caller, or
  // rethrows the exception thrown to it. Throws GreenletError for an empty
  // handle or a greenlet without run, CrossThreadError for another thread's.
  template <class... Args>
  std::any switch_to(Args&&... args) {
    return switch_value(pack(std::forward<Args>(args)...));
  }
  std::any switch_value(std::any value);

  // Raises `error` in this greenlet at its switch point (an unstarted one
  // dies without running and the error goes on to its parent, GL-11) and
  // suspends the caller; returns what is next switched to the caller (GL-10).
  // throw_in() throws GreenletExit.
  std::any throw_in(std::exception_ptr error);
  std::any throw_in() { return throw_in(std::make_exception_ptr(GreenletExit())); }
  template <class E, class = std::enable_if_t<!std::is_same_v<std::decay_t<E>, std::exception_ptr>>>
  std::any throw_in(E&& error) {
    return throw_in(std::make_exception_ptr(std::forward<E>(error)));
  }

  // GL-16: started = active or dead; active = started and not dead ("bool(g)").
  bool started() const noexcept;
  bool active() const noexcept;
  bool dead() const noexcept;
  bool is_main() const noexcept;

  // The parent (empty for a main greenlet). set_parent throws
  // CyclicParentError, CrossThreadError, or GreenletError for an empty
  // parent or a main greenlet (GL-14, GL-18).
  Greenlet parent() const;
  void set_parent(const Greenlet& parent);

  // A number unique among this thread's greenlets (the main greenlet is 0).
  unsigned long id() const noexcept;
  // Usable bytes of its stack (0 until started, and for a main greenlet).
  std::size_t stack_size() const noexcept;

  explicit operator bool() const noexcept { return impl_ != nullptr; }
  friend bool operator==(const Greenlet& a, const Greenlet& b) noexcept { return a.impl_ == b.impl_; }
  friend bool operator!=(const Greenlet& a, const Greenlet& b) noexcept { return a.impl_ != b.impl_; }

  // Greenlets of this thread that exist (main and dead ones included) and
  // stacks in use: for leak checks in tests.
  static std::size_t live_count() noexcept;

 private:
  friend class detail::GreenletImpl;
  Greenlet(Run run, const Greenlet& parent, std::size_t stack_size, int);
  // Shares g. Returned as a prvalue, the handle is built in its final place,
  // which is what hold() must see.
  explicit Greenlet(detail::GreenletImpl* g) noexcept : impl_(g) { hold(); }
  detail::GreenletImpl& checked() const;
  // Reference counting by where the handle lives (see Ownership above).
  void hold() noexcept {
    if (impl_) hold_slow();
  }
  void drop() noexcept {
    if (impl_) drop_slow();
  }
  void rehold(const Greenlet* from) noexcept {
    if (impl_) rehold_slow(from);
  }
  void hold_slow() noexcept;
  void drop_slow() noexcept;
  void rehold_slow(const Greenlet* from) noexcept;

  static std::any pack() { return {}; }
  template <class A>
  static std::any pack(A&& a) {
    return std::any(std::forward<A>(a));
  }
  template <class A, class B, class... Rest>
  static std::any pack(A&& a, B&& b, Rest&&... rest) {
    return std::any(std::make_tuple(std::forward<A>(a), std::forward<B>(b), std::forward<Rest>(rest)...));
  }

  template <class F>
  static Run wrap(F&& f) {
    using Fn = std::decay_t<F>;
    if constexpr (std::is_same_v<Fn, Run>) {
      return std::forward<F>(f);
    } else if constexpr (std::is_invocable_v<Fn&, std::any>) {
      return [fn = Fn(std::forward<F>(f))](std::any v) mutable -> std::any {
        if constexpr (std::is_void_v<std::invoke_result_t<Fn&, std::any>>) {
          fn(std::move(v));
          return {};
        } else {
          return std::any(fn(std::move(v)));
        }
      };
    } else {
      static_assert(std::is_invocable_v<Fn&>, "fern::Greenlet run must take std::any or nothing");
      return [fn = Fn(std::forward<F>(f))](std::any) mutable -> std::any {
        if constexpr (std::is_void_v<std::invoke_result_t<Fn&>>) {
          fn();
          return {};
        } else {
          return std::any(fn());
        }
      };
    }
  }

  detail::GreenletImpl* impl_ = nullptr;
};

}  // namespace fern
