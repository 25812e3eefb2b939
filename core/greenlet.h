#pragma once
// Greenlets: stackful coroutines arranged in a tree, as in Python's greenlet.
//
// Mapping from greenlet (Python) to fern:
//   greenlet(run, parent)      Greenlet(run, parent)  (parent defaults to current)
//   g.switch(*args)            g.switch_to(args...)   -> fern::Value
//   g.throw(exc) / g.throw()   g.throw_in(exc) / g.throw_in()  (GreenletExit)
//   getcurrent()               Greenlet::current()
//   bool(g), g.dead            g.active(), g.dead();  g.started() = active or dead
//   g.parent = p               g.set_parent(p)  (typed errors, GL-14)
//   greenlet.error             GreenletError, CrossThreadError, CyclicParentError
//   g.gr_context               g.context() / g.set_context(ctx)  (context.h)
//   repr(g)                    g.describe(): "<fern::Greenlet #3 at 0x...: suspended active started>"
//                              (pending / current|suspended active started [main] / dead, GL-29)
//   greenlet.settrace(f)       Greenlet::set_trace(f) -> the previous one; gettrace(): trace()
//                              f(TraceEvent::kSwitch or kThrow, origin, target) (GL-24)
//
// Values (GL-3): a switch packs its arguments into one fern::Value (value.h),
// the value the other side's switch returns (or run receives): no arguments
// -> an empty Value; one argument -> that value (decayed); several -> a
// std::tuple of them. Read it with value_cast<T> or get_if<T>. C++ has no
// keyword arguments. A body's return value (empty for void) travels to its
// parent the same way; a body that lets GreenletExit escape sends a Value
// holding the GreenletExit (GL-7). A switch moves the value once, from the
// sender's frame into the receiver's result: no allocation for values that
// fit a Value's inline storage (ints, pointers, small PODs).
//
// Ownership: Greenlet is a reference-counted handle (copies share one
// greenlet); a child holds its parent; the running greenlet lives while it
// runs (without a count, greenlet_core.h) and is dropped (killed, if it is
// suspended) when it switches out with nothing holding it.
// Handles that live on a greenlet's own stack do not count for it (C++ has
// no cycle collector: `Greenlet me = Greenlet::current();` in a body must
// not keep it alive forever). When the last counting handle to a suspended
// greenlet goes, GreenletExit is thrown into it so every destructor on its
// stack runs (GL-19). Handles, like greenlets, belong to their thread.
#include <cstddef>
#include <exception>
#include <functional>
#include <new>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "fern/arch/fiber.h"
#include "fern/core/exceptions.h"
#include "fern/core/greenlet_core.h"
#include "fern/core/value.h"

namespace fern {
class Greenlet;
class Context;
namespace detail {
class GreenletImpl;
class CountingGreenlet;
}

// A hook run when a greenlet ends (its run returned or raised, including by
// a kill), on that greenlet's stack, before its stack is released; hooks run
// newest first. Intrusive: the node stays valid until it ran or is removed.
// For greenlet-local storage (sync/local.h) and similar per-greenlet state.
struct GreenletExitHook {
  void (*fn)(GreenletExitHook*) = nullptr;
  GreenletExitHook* prev = nullptr;
  GreenletExitHook* next = nullptr;
  detail::GreenletImpl* owner = nullptr;  // set while registered
};

// What a trace (Greenlet::set_trace, GL-24) is told of a switch: greenlet's
// "switch" for one that carries a value, "throw" for one that carries an
// error (throw_in, a kill, a greenlet ending with an exception).
enum class TraceEvent { kSwitch, kThrow };

namespace detail {

// One greenlet of the calling thread as for_each_greenlet reports it.
struct GreenletView {
  const GreenletHead* head;
  unsigned long id;
  unsigned long parent_id;      // 0 also for a main greenlet (no parent)
  enum State { kUnstarted, kRunning, kSuspended, kDead } state;
  bool is_main;
  const void* stack_base;       // null for a main greenlet and when not started
  std::size_t stack_size;
  std::size_t stack_used;       // from the first frame (arch::stack_color) to the saved (or current) stack pointer
};
// Calls fn for every greenlet of the calling thread (main first, then the
// others newest first). fn must not create or destroy greenlets. No switch.
void for_each_greenlet(void (*fn)(const GreenletView&, void*), void* ctx);
// Records the thread's hub (or null) where debuggers find it (the registry),
// and its hand-off for greenlets that end (ThreadState::end_handoff).
// hub_greenlet: refused by throw_in (null while the hub tears itself down).
void note_thread_hub(const void* hub, GreenletImpl* (*end_handoff)(GreenletImpl*) noexcept = nullptr,
                     const GreenletImpl* hub_greenlet = nullptr) noexcept;
// The running greenlet of the calling thread (null before its first use)
// and its id. Async-signal-safe: they read, never create, the thread's state.
const GreenletHead* running_head() noexcept;
unsigned long running_id() noexcept;

// For the hub's hot paths, which park and resume greenlets by pointer
// without building handles: the running greenlet, and the greenlet a
// handle refers to. A parked greenlet stays alive while it waits (killing
// it unwinds the wait first), so a pointer to it is enough.
GreenletImpl* current_impl() noexcept;
inline GreenletImpl* impl_of(const Greenlet& g) noexcept;

// The count of a greenlet of this thread dropped to zero: destroys it, or
// leaves the running one to live on (greenlet_core.h). greenlet.cpp.
void released_last(GreenletImpl* g) noexcept;

// Says on stderr that a run callable's destructor threw where nothing can
// take the error (the exception being handled), and goes on.
void report_run_destructor_error() noexcept;

// A greenlet's run callable, kept inside the greenlet: no allocation when it
// fits (32 bytes: a lambda capturing up to four references or handles), else one.
struct RunSlot {
  static constexpr std::size_t kInlineSize = 32;
  static constexpr std::size_t kInlineAlign = alignof(void*);  // over-aligned callables go to the heap

  RunSlot() noexcept = default;
  RunSlot(const RunSlot&) = delete;
  RunSlot& operator=(const RunSlot&) = delete;
  ~RunSlot() { reset(); }

  explicit operator bool() const noexcept { return manage != nullptr; }
  // Destroys the callable (its destructor may run user code: clear first).
  void reset() noexcept {
    if (auto* m = std::exchange(manage, nullptr)) m(kDestroy, storage, nullptr);
  }
  // Calls the callable with the first switch's value and destroys it as
  // soon as it returns or throws (its captures die on the greenlet's stack
  // while it still runs); the slot is empty from the call on (GL-16: a
  // started greenlet has no run). One call for both.
  Value run_once(Value&& first) { return std::exchange(manage, nullptr)(kRunOnce, storage, &first); }

  // One function pointer for both operations (a greenlet is most of an idle
  // connection's heap: 8 bytes each count).
  enum Op { kRunOnce, kDestroy };
  alignas(kInlineAlign) unsigned char storage[kInlineSize];
  Value (*manage)(Op op, void* storage, Value* first) = nullptr;  // null: no run
};

// A run that is one plain call, fn(arg): the first switch's value is
// dropped (a value the switch carries in registers; any other takes the
// generic path) and the result is empty. The greenlet's entry calls it
// directly, without the generic run's Value in and out (greenlet.cpp): a
// task's greenlet (task.h) runs its body so. What escapes fn is handled as
// for any run (GL-6, GL-7).
struct DirectRun {
  void (*fn)(void* arg);
  void* arg;
};
// The RunSlot's manage of a DirectRun, one function the entry recognizes.
Value direct_manage(RunSlot::Op op, void* storage, Value* first);

// How a callable of type Fn sits in a RunSlot and is called: with the first
// switch's value when it takes one, else with nothing; void returns empty.
template <class Fn>
struct RunThunk {
  static constexpr bool kInline =
      sizeof(Fn) <= RunSlot::kInlineSize && alignof(Fn) <= RunSlot::kInlineAlign;
  static constexpr bool kTakesValue = std::is_invocable_v<Fn&, Value>;
  static_assert(kTakesValue || std::is_invocable_v<Fn&>,
                "fern::Greenlet run must take a fern::Value or nothing");

  static Fn& get(void* storage) noexcept {
    if constexpr (kInline) {
      return *std::launder(reinterpret_cast<Fn*>(storage));
    } else {
      return **std::launder(reinterpret_cast<Fn**>(storage));
    }
  }
  template <class F>
  static void emplace(RunSlot& slot, F&& f) {
    if constexpr (kInline) {
      ::new (static_cast<void*>(slot.storage)) Fn(std::forward<F>(f));
    } else {
      ::new (static_cast<void*>(slot.storage)) Fn*(new Fn(std::forward<F>(f)));
    }
    slot.manage = &manage;
  }
  // A capture whose destructor throws (noexcept(false)): at the body's end
  // its error is the body's (GL-6: it goes to the parent) unless the body
  // threw already; a run destroyed unrun (or after the body threw) reports
  // it and goes on, as a kill's other exception does (GL-19).
  // (Every callable that cannot throw there takes the first path: the
  // result is returned in place.)
  static Value manage(RunSlot::Op op, void* storage, Value* first) {
    if (op == RunSlot::kDestroy) {
      destroy_reporting(storage);
      return {};
    }
    if constexpr (std::is_nothrow_destructible_v<Fn>) {
      struct Done {
        void* storage;
        ~Done() { destroy(storage); }
      } done{storage};
      return invoke(storage, std::move(*first));
    } else {
      Value result;
      try {
        result = invoke(storage, std::move(*first));
      } catch (...) {
        destroy_reporting(storage);
        throw;
      }
      destroy(storage);
      return result;
    }
  }
  static void destroy_reporting(void* storage) noexcept {
    if constexpr (std::is_nothrow_destructible_v<Fn>) {
      destroy(storage);
    } else {
      try {
        destroy(storage);
      } catch (...) {
        report_run_destructor_error();
      }
    }
  }
  static Value invoke(void* storage, Value&& first) {
    Fn& fn = get(storage);
    if constexpr (kTakesValue) {
      if constexpr (std::is_void_v<std::invoke_result_t<Fn&, Value>>) {
        fn(std::move(first));
        return {};
      } else {
        return Value(fn(std::move(first)));
      }
    } else {
      if constexpr (std::is_void_v<std::invoke_result_t<Fn&>>) {
        fn();
        return {};
      } else {
        return Value(fn());
      }
    }
  }
  static void destroy(void* storage) noexcept(std::is_nothrow_destructible_v<Fn>) {
    if constexpr (kInline) {
      get(storage).~Fn();
    } else {
      delete &get(storage);
    }
  }
};

}  // namespace detail

class Greenlet {
 public:
  // A run function as an object; an empty one makes a greenlet without run.
  using Run = std::function<Value(Value)>;

  // An empty handle: refers to no greenlet. (Not defaulted: the default
  // argument below needs it before impl_'s initializer is parsed.)
  Greenlet() noexcept : impl_(nullptr) {}

  // Creates a greenlet that calls run(value of the first switch) on a stack
  // of stack_size bytes (0: arch::default_stack_size()) the first time it is
  // switched to; does not run it (GL-1). Its parent is `parent`, or the
  // current greenlet when parent is empty (GL-5). `run` may also take no
  // argument, and may return void. An empty Run or a null function pointer
  // makes a greenlet without run (switching to it is a GreenletError).
  // Throws CrossThreadError for another thread's parent.
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Greenlet>>>
  explicit Greenlet(F&& run, const Greenlet& parent = {}, std::size_t stack_size = 0)
      : Greenlet(parent, stack_size) {
    // The delegating constructor finished: if this throws, ~Greenlet drops
    // the new (unstarted, run-less) greenlet.
    using Fn = std::decay_t<F>;
    if constexpr (std::is_pointer_v<Fn> || std::is_same_v<Fn, Run>) {
      if (!run) return;
    }
    if constexpr (std::is_same_v<Fn, detail::DirectRun>) {
      ::new (static_cast<void*>(run_slot().storage)) detail::DirectRun(run);
      run_slot().manage = &detail::direct_manage;
    } else {
      detail::RunThunk<Fn>::emplace(run_slot(), std::forward<F>(run));
    }
  }

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
  [[gnu::always_inline]] Value switch_to(Args&&... args) {
    if constexpr (sizeof...(Args) == 0) {
      return detail::switch_word(impl_, 0, nullptr);
    } else if constexpr (sizeof...(Args) == 1 && (detail::ValueAccess::kRegister<std::decay_t<Args>> && ...)) {
      // An int, a pointer, a small POD: in registers, no Value made here.
      return (detail::switch_word(impl_, detail::value_word<std::decay_t<Args>>(),
                                  detail::ValueAccess::register_bits<std::decay_t<Args>>(std::forward<Args>(args))),
              ...);
    } else {
      return switch_value(pack(std::forward<Args>(args)...));
    }
  }
  // switch_to with the value already packed (moved, never copied).
  [[gnu::always_inline]] Value switch_value(Value value) {
    return detail::switch_to_impl(impl_, std::move(value));
  }

  // Raises `error` in this greenlet at its switch point (an unstarted one
  // dies without running and the error goes on to its parent, GL-11) and
  // suspends the caller; returns what is next switched to the caller (GL-10).
  // throw_in() throws GreenletExit.
  Value throw_in(std::exception_ptr error);
  Value throw_in() { return throw_in(std::make_exception_ptr(GreenletExit())); }
  template <class E, class = std::enable_if_t<!std::is_same_v<std::decay_t<E>, std::exception_ptr>>>
  Value throw_in(E&& error) {
    return throw_in(std::make_exception_ptr(std::forward<E>(error)));
  }

  // GL-16: started = active or dead; active = started and not dead ("bool(g)").
  bool started() const noexcept;
  bool active() const noexcept;
  bool dead() const noexcept;
  bool is_main() const noexcept;
  // greenlet's repr (GL-29): "<fern::Greenlet #id at 0x...: STATE>", STATE
  // one of "pending" (not started), "current active started" (running in
  // the calling thread), "suspended active started" (suspended, or another
  // thread's running one), "dead", with " main" after a main greenlet's
  // (whose thread has exited: "(thread exited) dead"); "<fern::Greenlet
  // empty>" for an empty handle. Another thread's greenlet may be described
  // while that thread is not switching it (or once it has exited): its state
  // is read without synchronization.
  std::string describe() const;

  // FP-neutral (false by default): the greenlet owns no FP environment (on
  // x86-64 the x87 control word and the whole MXCSR, status flags included,
  // which every other greenlet keeps as its own; FPCR on AArch64 when
  // FERN_FP_CONTROL keeps it per greenlet). Switching out of it saves none
  // and switching into it loads none: it runs with whatever the thread has
  // (the flags it raises go with that: to the next FP-neutral greenlet, not
  // to an owner, which gets its own loaded), so between two FP-neutral
  // greenlets a switch is the bare register switch. In exchange it must leave the FP control it found, rounding mode
  // and exception masks included, at each switch out: code that calls
  // fesetround or _mm_setcsr and switches before restoring them must not run
  // in an FP-neutral greenlet. Debug and sanitizer builds (FERN_FP_CHECKS)
  // abort with a message when one does. A greenlet that owns FP control again
  // starts from the caller's. Any state, any greenlet of this thread (the
  // main greenlet and a task's greenlet too); throws GreenletError for an
  // empty handle, CrossThreadError for another thread's.
  void set_fp_neutral(bool neutral) const;
  bool fp_neutral() const noexcept;

  // Its current context of context variables (GL-23, core/context.h;
  // Python's gr_context): empty (None) until one is set or assigned. Any
  // state; a running greenlet's assignment takes effect at once. Throws
  // GreenletError for an empty handle, CrossThreadError for another
  // thread's greenlet.
  Context context() const;
  void set_context(const Context& context) const;

  // The parent (empty for a main greenlet). set_parent throws
  // CyclicParentError, CrossThreadError, or GreenletError for an empty
  // parent or a main greenlet (GL-14, GL-18).
  Greenlet parent() const;
  void set_parent(const Greenlet& parent);

  // Registers hook for the running greenlet; false for a main greenlet,
  // which ends only with its thread, and when out of memory (the hook is
  // then not registered).
  static bool at_exit(GreenletExitHook* hook) noexcept;
  // Unregisters a hook that has not run; a no-op otherwise.
  static void cancel_exit(GreenletExitHook* hook) noexcept;

  // greenlet.settrace / gettrace (GL-24): `trace` is called for every switch
  // between this thread's greenlets (the hub's too) with the event, the
  // greenlet switched from and the one switched to, in the latter, after
  // the switch and before the switch call returns there (as greenlet
  // does). What it throws is thrown from that switch call (a greenlet that
  // was starting ends with it, without running) and turns tracing off. It
  // must not switch. Returns the previous trace; an empty one turns tracing
  // off. Per thread. While a trace is set every switch takes the general
  // path; without one no switch pays anything for it.
  using Trace = std::function<void(TraceEvent event, const Greenlet& origin, const Greenlet& target)>;
  static Trace set_trace(Trace trace);
  static Trace trace();

  // A number unique among this thread's greenlets (the main greenlet is 0).
  unsigned long id() const noexcept;
  // Bytes of its stack (0 until started, and for a main greenlet); its
  // frames start arch::stack_color bytes (at most 960) below the top.
  std::size_t stack_size() const noexcept;

  explicit operator bool() const noexcept { return impl_ != nullptr; }
  friend bool operator==(const Greenlet& a, const Greenlet& b) noexcept { return a.impl_ == b.impl_; }
  friend bool operator!=(const Greenlet& a, const Greenlet& b) noexcept { return a.impl_ != b.impl_; }

  // Greenlets of this thread that exist (main and dead ones included) and
  // stacks in use: for leak checks in tests.
  static std::size_t live_count() noexcept;

 private:
  friend class detail::GreenletImpl;
  friend class detail::CountingGreenlet;
  friend detail::GreenletImpl* detail::impl_of(const Greenlet& g) noexcept;
  // A new greenlet without run (the templated constructor adds it).
  Greenlet(const Greenlet& parent, std::size_t stack_size);
  // The constructor's first use of the thread, empty block list or
  // foreign parent (a call: the common case stays a leaf).
  void make_slow(const Greenlet& parent, std::size_t stack_size);
  detail::RunSlot& run_slot() noexcept {
    return *reinterpret_cast<detail::RunSlot*>(reinterpret_cast<char*>(impl_) + detail::kRunSlotOffset);
  }
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
  // drop() for a handle that counts wherever it is (detail::CountingGreenlet).
  void drop_counting() noexcept {
    detail::GreenletImpl* g = std::exchange(impl_, nullptr);
    if (g && --detail::core_of(g)->refs == 0) detail::released_last(g);
  }
  void hold_slow() noexcept;
  void drop_slow() noexcept;
  void rehold_slow(const Greenlet* from) noexcept;

  static Value pack() noexcept { return {}; }
  template <class A>
  static Value pack(A&& a) {
    return Value(std::forward<A>(a));
  }
  template <class A, class B, class... Rest>
  static Value pack(A&& a, B&& b, Rest&&... rest) {
    return Value(std::make_tuple(std::forward<A>(a), std::forward<B>(b), std::forward<Rest>(rest)...));
  }

  detail::GreenletImpl* impl_ = nullptr;
};

namespace detail {
inline GreenletImpl* impl_of(const Greenlet& g) noexcept { return g.impl_; }

// A handle that always counts: one that never lives on its greenlet's own
// stack (nor in its fake frames), such as a task's to the greenlet it makes
// (task.h). Dropped without asking where it lives. Neither copied nor moved.
class CountingGreenlet : public Greenlet {
 public:
  using Greenlet::Greenlet;
  CountingGreenlet(const CountingGreenlet&) = delete;
  CountingGreenlet& operator=(const CountingGreenlet&) = delete;
  ~CountingGreenlet() { drop_counting(); }
};
}  // namespace detail

}  // namespace fern
