// Greenlet trees on top of arch::switch_fiber.
//
// Invariants:
// - ThreadState::current holds one reference to the running greenlet. A
//   switch hands that reference to the target and leaves the old one in
//   `previous`; the side that lands drops it (it may be the last one, which
//   kills a suspended greenlet: never do that before the landing is complete).
// - A finishing greenlet cannot free the stack it runs on: it parks itself in
//   `zombie` and the side that lands returns the stack to the pool.
// - A Transfer and what it points to live on the sender's stack (a finishing
//   greenlet's in ThreadState: `ending` and the result slot, which
//   bury_zombie empties after the landing); the receiver moves them out
//   before anything else, since the sender's stack may be released right after.
// - The hot path (Greenlet::switch_value, inline in the caller, around
//   begin_switch and finish_switch) takes an active or unstarted greenlet of
//   this thread: it moves the value once and touches no exception_ptr when
//   there is no error. Everything else goes through switch_general.
#include "fern/core/greenlet.h"

#include <cxxabi.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "fern/arch/fiber.h"
#include "fern/arch/thread_id.h"

extern "C" void* __dso_handle;  // this library's handle, for __cxa_thread_atexit

namespace fern {
namespace detail {
namespace {

// libstdc++ and libc++abi both lay out __cxa_eh_globals like this.
struct EhGlobals {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
};

enum class State : unsigned char { kUnstarted, kActive, kDead };

}  // namespace

class GreenletImpl : public GreenletHead {
 public:
  arch::Fiber fiber;
  arch::Stack stack;  // until started: no base, and the size asked for (0: the default)
  RunSlot run;
  GreenletImpl* parent = nullptr;  // holds a reference
  std::uint64_t thread = 0;  // ThreadState::serial of its thread
  // Its C++ exception state while it is not running: __cxa_eh_globals' two
  // fields, copied one by one so that the rest of this word is not padding
  // (a greenlet is most of an idle connection's heap). A count of exceptions
  // in flight at once on one stack never nears 65,535.
  void* eh_caught = nullptr;
  std::uint16_t eh_uncaught = 0;
  State state = State::kUnstarted;
  bool is_main = false;
  unsigned refs = 1;
  unsigned long id = 0;
  GreenletExitHook* exit_hooks = nullptr;  // newest first

  static void entry(void* arg, void* data);
};
// 152 bytes, a 160-byte malloc chunk: an idle connection pays it (with a
// plain Fiber; sanitizer builds add their fiber handles).
static_assert(sizeof(arch::Fiber) != sizeof(void*) || sizeof(GreenletImpl) <= 152,
              "fern: GreenletImpl grew past 152 bytes");

// Trivially constructible and destructible, so that it can be read at any
// time (even from the overflow signal handler or after thread exit).
struct ThreadState {
  // Never reused, unlike the address of a thread's state: a new thread may
  // get the address of one that exited, whose greenlets must stay foreign.
  std::uint64_t serial;
  GreenletImpl* current;
  GreenletImpl* main;
  GreenletImpl* previous;  // reference to drop after landing
  GreenletImpl* zombie;    // finished greenlet whose stack to release after landing
  Transfer ending;         // the finishing greenlet's transfer of its result
  // ... and the result itself, constructed by the finishing greenlet and
  // destroyed by bury_zombie once the landing moved it out (raw storage:
  // this struct stays trivially destructible).
  alignas(Value) unsigned char ending_value[sizeof(Value)];
  alignas(std::exception_ptr) unsigned char ending_error[sizeof(std::exception_ptr)];
  EhGlobals* eh;
  unsigned long next_id;
  std::size_t live;
  void* free_blocks;       // memory of destroyed greenlets, for new ones (a list)
  std::size_t free_count;
  bool alive;              // between the first use and the thread's cleanup
  bool ended;              // the thread's cleanup ran: no new main greenlet
  // Thread-local destructors began while a greenlet other than main ran
  // (exit() or pthread_exit inside a greenlet): no switch happens any more.
  bool exiting;
  unsigned sentinels;          // exit sentinels registered (see arm_exit_sentinel)
  unsigned long sentinel_mark; // next_id when the last one was registered
  unsigned long starts;        // greenlets started
  // The registry (debuggers and dump_greenlets read it): this thread's
  // greenlets, this thread in the process's list, its hub.
  GreenletHead* greenlets;
  ThreadState* reg_prev;
  ThreadState* reg_next;
  const void* hub;
  long tid;
};

// Every thread that has greenlets, for debuggers (tools/fern_gdb.py walks it
// from fern::detail::g_registry). Locked only when a thread starts or ends.
struct ThreadRegistry {
  std::mutex mutex;
  ThreadState* threads = nullptr;
};
ThreadRegistry g_registry;

namespace {

thread_local ThreadState t_state;
std::atomic<std::uint64_t> g_next_serial{1};

void retain(GreenletImpl* g) noexcept { ++g->refs; }

// O(1), no allocation; only the owning thread touches its list.
void registry_link(ThreadState& ts, GreenletImpl* g) noexcept {
  GreenletHead* h = g;
  h->reg_prev = nullptr;
  h->reg_next = ts.greenlets;
  if (ts.greenlets) ts.greenlets->reg_prev = h;
  ts.greenlets = h;
}

void registry_unlink(ThreadState& ts, GreenletImpl* g) noexcept {
  GreenletHead* h = g;
  if (h->reg_prev) h->reg_prev->reg_next = h->reg_next;
  else if (ts.greenlets == h) ts.greenlets = h->reg_next;
  if (h->reg_next) h->reg_next->reg_prev = h->reg_prev;
  h->reg_prev = h->reg_next = nullptr;
}

void registry_add_thread(ThreadState& ts) {
  ts.tid = arch::thread_id();
  std::lock_guard<std::mutex> lock(g_registry.mutex);
  ts.reg_prev = nullptr;
  ts.reg_next = g_registry.threads;
  if (g_registry.threads) g_registry.threads->reg_prev = &ts;
  g_registry.threads = &ts;
}

// The thread ends: its state's memory goes with it. Greenlets that outlive it
// (held by handles elsewhere) are detached, so their destruction touches no
// list of a thread that is gone.
void registry_remove_thread(ThreadState& ts) noexcept {
  {
    std::lock_guard<std::mutex> lock(g_registry.mutex);
    if (ts.reg_prev) ts.reg_prev->reg_next = ts.reg_next;
    else if (g_registry.threads == &ts) g_registry.threads = ts.reg_next;
    if (ts.reg_next) ts.reg_next->reg_prev = ts.reg_prev;
    ts.reg_prev = ts.reg_next = nullptr;
  }
  while (GreenletHead* h = ts.greenlets) {
    ts.greenlets = h->reg_next;
    h->reg_prev = h->reg_next = nullptr;
  }
}
void release(GreenletImpl* g) noexcept;

// Greenlet memory is kept per thread for reuse: creating one then costs no
// malloc/free pair. Not under ASan, which should see every use after free.
#if FERN_ASAN
constexpr std::size_t kKeptBlocks = 0;
#else
constexpr std::size_t kKeptBlocks = 1024;  // as many as the stack pool keeps
#endif

GreenletImpl* new_greenlet(ThreadState& ts) {
  void* block = ts.free_blocks;
  if (block) {
    ts.free_blocks = *static_cast<void**>(block);
    --ts.free_count;
  } else {
    block = ::operator new(sizeof(GreenletImpl));
  }
  return ::new (block) GreenletImpl;
}

void delete_greenlet(GreenletImpl* g) noexcept {
  bool ours = g->thread == t_state.serial;
  g->~GreenletImpl();  // may run user code (the run callable's captures)
  if (ours && t_state.alive && t_state.free_count < kKeptBlocks) {
    void* block = g;
    *static_cast<void**>(block) = t_state.free_blocks;
    t_state.free_blocks = block;
    ++t_state.free_count;
  } else {
    ::operator delete(static_cast<void*>(g));
  }
}

arch::OverflowInfo describe_current() noexcept {
  GreenletImpl* g = t_state.current;
  if (!g) return {arch::Stack{}, "greenlet", 0};
  return {g->stack, "greenlet", g->id};
}

// Drops the main greenlet when the thread ends.
struct ThreadCleanup {
  ~ThreadCleanup() {
    ThreadState& ts = t_state;
    ts.alive = false;
    ts.ended = true;
    GreenletImpl* current = std::exchange(ts.current, nullptr);
    GreenletImpl* main = std::exchange(ts.main, nullptr);
    if (current) release(current);
    if (main) release(main);  // survives only while suspended children hold it
    while (void* block = ts.free_blocks) {
      ts.free_blocks = *static_cast<void**>(block);
      ::operator delete(block);
    }
    ts.free_count = 0;
    registry_remove_thread(ts);
  }
};

ThreadState& state() {
  ThreadState& ts = t_state;
  if (__builtin_expect(ts.main == nullptr, 0)) {
    if (ts.ended) throw GreenletError("fern: greenlets used after their thread's cleanup");
    thread_local ThreadCleanup cleanup;
    (void)cleanup;
    auto* main = new_greenlet(ts);
    ts.serial = g_next_serial.fetch_add(1, std::memory_order_relaxed);
    main->thread = ts.serial;
    main->state = State::kActive;
    main->is_main = true;
    main->refs = 2;  // one for `current`, one for `main`
    arch::fiber_adopt_thread(main->fiber);
    ts.current = main;
    ts.main = main;
    ts.eh = reinterpret_cast<EhGlobals*>(abi::__cxa_get_globals());
    ts.next_id = 1;
    ts.live = 1;
    ts.alive = true;
    // GreenletHead must sit at the start (head_of casts): check once a thread.
    if (head_of(main) != static_cast<GreenletHead*>(main)) std::abort();
    registry_link(ts, main);
    registry_add_thread(ts);
    arch::install_overflow_reporter(&describe_current);
  }
  return ts;
}


// A finished greenlet's stack goes back once nothing runs on it any more.
[[gnu::noinline]] void bury_zombie(ThreadState& ts) noexcept {
  GreenletImpl* z = ts.zombie;
  ts.zombie = nullptr;
  arch::fiber_retire(z->fiber);
  arch::release_stack(z->stack);
  z->stack = {};
  std::launder(reinterpret_cast<Value*>(ts.ending_value))->~Value();
  std::launder(reinterpret_cast<std::exception_ptr*>(ts.ending_error))->~exception_ptr();
}

// Work the landing side does for the switch that brought it here.
inline void after_landing(ThreadState& ts) noexcept {
  if (__builtin_expect(ts.zombie != nullptr, 0)) bury_zombie(ts);
  GreenletImpl* p = ts.previous;  // every switch sets it
  ts.previous = nullptr;
  release(p);
}

[[noreturn, gnu::noinline]] void land_with_error(ThreadState& ts, Transfer* in) {
  std::exception_ptr error = std::move(*in->error);
  after_landing(ts);
  std::rethrow_exception(std::move(error));
}

// Finishes the landing when the receiver's result has been built.
struct Landing {
  ThreadState& ts;
  ~Landing() { after_landing(ts); }
};

// Takes the sender's transfer (it lives on the sender's stack, which may be
// released by after_landing) and finishes the landing. The result is built
// in the caller's return slot: the one move of the switch.
inline Value receive(ThreadState& ts, void* arg) {
  auto* in = static_cast<Transfer*>(arg);
  if (__builtin_expect(in->error != nullptr, 0)) land_with_error(ts, in);
  Landing landing{ts};
  return std::move(*in->value);
}

// The bookkeeping of a switch from `from` (running) to `target`.
inline void prepare_transfer(ThreadState& ts, GreenletImpl* from, GreenletImpl* target) noexcept {
  EhGlobals* eh = ts.eh;
  from->eh_caught = eh->caught_exceptions;  // per-greenlet C++ exception state (GL-21, GL-22)
  from->eh_uncaught = static_cast<std::uint16_t>(eh->uncaught_exceptions);
  eh->caught_exceptions = target->eh_caught;
  eh->uncaught_exceptions = target->eh_uncaught;
  retain(target);
  ts.current = target;
  ts.previous = from;
}

// Switches stacks (the hot path does the same in Greenlet::switch_value,
// inline in the caller). `ending`: the caller never resumes.
inline void* transfer(ThreadState& ts, GreenletImpl* from, GreenletImpl* target, Transfer* out,
                      bool ending) noexcept {
  prepare_transfer(ts, from, target);
  return arch::switch_fiber(from->fiber, target->fiber, out, ending);
}

// Runs among the thread-local destructors. When they run on a greenlet
// other than main, the thread (or with exit() the process) ends from inside
// that greenlet: the frames of main and of every suspended greenlet will
// never be returned to, so switching into them (a hub's destructor killing
// its tasks, say) would resume code that expects the thread to go on.
// Switches stop; suspended greenlets are abandoned, as other threads' stacks
// are at exit().
void on_thread_locals_ending(void*) {
  ThreadState& ts = t_state;
  if (!ts.alive || ts.current == ts.main || ts.exiting) return;
  ts.exiting = true;
  ts.serial = 0;  // every greenlet is foreign now: the hot path refuses them too
}

// Thread-local destructors run newest first, so the sentinel must be
// registered after the thread-locals that switch in their destructors (a
// hub, which makes a greenlet and then registers itself). It is registered
// when a greenlet starts after new greenlets were made: at most 16 times,
// then at every power-of-two start (O(log n) registrations in all).
void arm_exit_sentinel(ThreadState& ts) {
  ++ts.starts;
  if (ts.sentinel_mark == ts.next_id) return;
  if (ts.sentinels >= 16 && (ts.starts & (ts.starts - 1)) != 0) return;
  if (abi::__cxa_thread_atexit(&on_thread_locals_ending, nullptr, &__dso_handle) != 0) return;
  ++ts.sentinels;
  ts.sentinel_mark = ts.next_id;
}

void start(GreenletImpl* g) {
  arm_exit_sentinel(t_state);
  g->stack = arch::allocate_stack(g->stack.size);  // the size asked for
  arch::fiber_start(g->fiber, g->stack, &GreenletImpl::entry, g);
  g->state = State::kActive;
}

// A GreenletExit that reaches a dead greenlet, or dies with an unstarted
// one, travels on as a value (GL-7, GL-11; greenlet's throw_greenlet).
void eat_greenlet_exit(Transfer& t) {
  try {
    std::rethrow_exception(*t.error);
  } catch (const GreenletExit& e) {
    *t.value = Value(e);
    t.error = nullptr;
  } catch (...) {
  }
}

// Where a switch or a finished greenlet's result goes: the first live
// ancestor (GL-8); an unstarted one is started with the value (GL-9) or, for
// an error, dies without running and passes it on (GL-11). Throws
// GreenletError for an unstarted one without run (GL-17) and StackError when
// its stack cannot be had; `target` is then the greenlet that could not be
// started, which stays unstarted (GL-9).
GreenletImpl* resolve(GreenletImpl*& target, Transfer& t) {
  for (;;) {
    if (target->state == State::kDead) {
      if (t.error) eat_greenlet_exit(t);
      target = target->parent;
      continue;
    }
    if (target->state == State::kActive) return target;
    if (!target->run) {
      throw GreenletError("fern: cannot switch to or throw into a greenlet without a run function");
    }
    if (t.error) {
      target->state = State::kDead;
      target->run.reset();
      eat_greenlet_exit(t);
      target = target->parent;
      continue;
    }
    start(target);
    return target;
  }
}

}  // namespace

// Any switch: checks, resolves the target, and handles a switch to oneself.
Value switch_general(GreenletImpl* target, Transfer* t) {
  if (!target) throw GreenletError("fern: empty Greenlet handle");
  ThreadState& ts = state();
  if (__builtin_expect(ts.exiting, 0))
    throw GreenletError("fern: no greenlet switches while the thread exits from inside a greenlet "
                        "(exit() or pthread_exit there); suspended greenlets are abandoned");
  if (__builtin_expect(target->thread != ts.serial, 0))
    throw CrossThreadError("fern: cannot switch to a greenlet of a different thread "
                           "(or of a thread that has exited)");
  if (__builtin_expect(target->state != State::kActive, 0)) target = resolve(target, *t);
  if (__builtin_expect(target == ts.current, 0)) {
    if (t->error) std::rethrow_exception(*t->error);
    return std::move(*t->value);
  }
  return receive(ts, transfer(ts, ts.current, target, t, false));
}

namespace {
// begin_switch for an unstarted or dead target: a dead one needs resolving.
[[gnu::noinline]] SwitchFibers begin_start(ThreadState& ts, GreenletImpl* from, GreenletImpl* target) {
  if (target->state == State::kDead || !target->run) return {nullptr, nullptr};
  start(target);  // GL-9: it starts with the value; may throw StackError
  prepare_transfer(ts, from, target);
  return {&from->fiber, &target->fiber};
}
}  // namespace

// The hot path (Greenlet::switch_value): an active or startable greenlet of
// this thread other than the running one needs no resolving.
SwitchFibers begin_switch(GreenletImpl* target) {
  ThreadState& ts = t_state;
  GreenletImpl* from = ts.current;
  if (__builtin_expect(target == nullptr || target->thread != ts.serial || target == from || from == nullptr, 0))
    return {nullptr, nullptr};
  if (__builtin_expect(target->state != State::kActive, 0)) return begin_start(ts, from, target);
  prepare_transfer(ts, from, target);
  return {&from->fiber, &target->fiber};
}

GreenletImpl* current_impl() noexcept {
  ThreadState& ts = t_state;
  if (__builtin_expect(ts.current == nullptr, 0)) {
    try {
      return state().current;
    } catch (...) {
      return nullptr;  // after the thread's cleanup
    }
  }
  return ts.current;
}

Value finish_switch(void* arg) { return receive(t_state, arg); }

namespace {

// Kills a suspended greenlet whose last handle went away (GL-19): it unwinds
// and returns to the current greenlet. Anything but GreenletExit that it
// raises is reported, not propagated ("unraisable").
void kill_on_release(GreenletImpl* g) noexcept {
  ThreadState& ts = t_state;
  g->refs = 1;  // alive again while it unwinds
  // The kill comes back here: the killer is its parent while it unwinds, and
  // the old parent is back afterwards for one that survives (GL-20).
  GreenletImpl* old_parent = g->parent;  // keeps its reference
  g->parent = ts.current;
  retain(ts.current);
  try {
    Value none;
    std::exception_ptr exit = std::make_exception_ptr(GreenletExit());
    Transfer t{&none, &exit};
    switch_general(g, &t);
  } catch (const GreenletError& e) {
    std::fprintf(stderr, "fern: while killing greenlet #%lu: %s\n", g->id, e.what());
  } catch (...) {
    std::fprintf(stderr, "fern: greenlet #%lu raised an exception while being killed; ignored\n", g->id);
  }
  release(std::exchange(g->parent, old_parent));
}

void destroy(GreenletImpl* g) noexcept {
  if (g->state == State::kActive && !g->is_main) {
    if (t_state.exiting) {
      g->stack = {};  // abandoned without unwinding (see on_thread_locals_ending)
    } else if (!t_state.alive || g->thread != t_state.serial) {
      // Its thread is gone or it is not ours: nothing can run its unwinding.
      std::fprintf(stderr, "fern: greenlet #%lu dropped while suspended outside its thread; "
                           "its stack is leaked\n", g->id);
      g->stack = {};
    } else {
      kill_on_release(g);
      if (--g->refs != 0) return;  // it switched away and was referenced again
      if (g->state == State::kActive)
        std::fprintf(stderr, "fern: greenlet #%lu survived GreenletExit while being dropped; "
                             "its stack is released without unwinding\n", g->id);
    }
  }
  bool ours = g->thread == t_state.serial;
  if (g->stack && ours) {  // another thread's stack belongs to that thread's pool
    arch::fiber_retire(g->fiber);
    arch::release_stack(g->stack);
  }
  if (g->parent) release(g->parent);
  if (ours) {
    --t_state.live;
    registry_unlink(t_state, g);
  }
  delete_greenlet(g);
}

void release(GreenletImpl* g) noexcept {
  if (--g->refs == 0) destroy(g);
}

// The body, with what it lets escape turned into the result (GL-7) or the
// error (GL-6). pthread_exit (and cancellation) unwind with
// abi::__forced_unwind, which must go on: it unwinds this stack (destructors
// run) up to the trampoline, whose unwind info ends the stack, and the C
// library then leaves the thread from its own start frame. The greenlet is
// dead; frames on the thread's own stack are skipped, as by longjmp.
// (A forced unwind carries no C++ object: the handler's reference is null by
// design, which UBSan would report.)
[[gnu::no_sanitize_undefined]] Value run_body(GreenletImpl* self, Value first, std::exception_ptr& error) {
  try {
    return self->run.invoke(std::move(first));
  } catch (const GreenletExit& e) {
    return Value(e);  // GL-7: a kill is a result, not an error
  } catch (abi::__forced_unwind&) {
    self->state = State::kDead;
    throw;
  } catch (...) {
    error = std::current_exception();  // GL-6: rethrown in the parent
    return Value();
  }
}

// Runs the body and finds where its result goes (GL-4, GL-8). The result
// and the transfer that carries it end in `ts`, not on this stack: see entry.
[[gnu::noinline]] GreenletImpl* run_to_end(ThreadState& ts, GreenletImpl* self, void* arg) {
  // A fresh greenlet never receives an error.
  std::exception_ptr failure;
  Value result = run_body(self, receive(ts, arg), failure);
  // Its captures die on this stack while it still runs; a started greenlet
  // has no run (GL-16).
  self->run.reset();
  while (GreenletExitHook* hook = self->exit_hooks) {
    Greenlet::cancel_exit(hook);
    try {
      hook->fn(hook);
    } catch (...) {
      std::fprintf(stderr, "fern: an exit hook of greenlet #%lu raised; ignored\n", self->id);
    }
  }
  self->state = State::kDead;
  // Exit hooks may switch: only now, with no switch before the last one,
  // does the result move to the thread's one slot.
  auto* error = ::new (ts.ending_error) std::exception_ptr(std::move(failure));
  Transfer& out = ts.ending;
  out = Transfer{::new (ts.ending_value) Value(std::move(result)), *error ? error : nullptr};
  GreenletImpl* target = self->parent;
  for (;;) {
    try {
      return resolve(target, out);
    } catch (...) {
      // An ancestor that could not be started stays unstarted (GL-9); the
      // error goes on to its parent. The main greenlet ends the walk: it is
      // always active.
      *error = std::current_exception();
      out.error = error;
      target = target->parent;
    }
  }
}

}  // namespace

// No local of this frame has its address taken: it is never returned from,
// so ASan would keep such a local's redzones poisoned on the pooled stack.
void GreenletImpl::entry(void* arg, void* data) {
  auto* self = static_cast<GreenletImpl*>(data);
  arch::fiber_after_switch(self->fiber);
  ThreadState& ts = t_state;
  GreenletImpl* target = run_to_end(ts, self, arg);
  ts.zombie = self;
  transfer(ts, self, target, &ts.ending, true);
  std::fputs("fern: a finished greenlet was resumed\n", stderr);
  std::abort();
}

}  // namespace detail

using detail::GreenletImpl;
using detail::State;

Greenlet::Greenlet(const Greenlet& parent, std::size_t stack_size) {
  detail::ThreadState& ts = detail::state();
  GreenletImpl* p = parent.impl_ ? parent.impl_ : ts.current;
  if (p->thread != ts.serial) throw CrossThreadError("fern: parent cannot be on a different thread");
  impl_ = detail::new_greenlet(ts);
  impl_->parent = p;
  detail::retain(p);
  impl_->thread = ts.serial;
  impl_->id = ts.next_id++;
  impl_->stack.size = stack_size;  // the size asked for, until started
  ++ts.live;
  detail::registry_link(ts, impl_);
}

namespace detail {
namespace {
// A handle on the greenlet's own stack is a weak self-reference.
// Only the greenlet itself touches handles in its own frames, so it is the
// running one whenever such a handle is made, moved or dropped.
bool counts(const void* where, const GreenletImpl* g) noexcept {
  auto at = reinterpret_cast<std::uintptr_t>(where);
  auto base = reinterpret_cast<std::uintptr_t>(g->stack.base);
  if (base != 0 && at - base < g->stack.size) return false;
  return !(g == t_state.current && arch::in_running_fake_frame(where));
}
}  // namespace
}  // namespace detail

void Greenlet::hold_slow() noexcept {
  if (detail::counts(this, impl_)) detail::retain(impl_);
}

void Greenlet::drop_slow() noexcept {
  GreenletImpl* g = std::exchange(impl_, nullptr);
  if (detail::counts(this, g)) detail::release(g);
}

// A move keeps the count unless it crosses the edge of the greenlet's own
// stack. Moving onto its own stack can only happen while it runs, when
// ThreadState::current still holds it, so the count never reaches zero here.
void Greenlet::rehold_slow(const Greenlet* from) noexcept {
  bool before = detail::counts(from, impl_), now = detail::counts(this, impl_);
  if (now && !before) detail::retain(impl_);
  if (before && !now) --impl_->refs;
}

Greenlet Greenlet::current() {
  return Greenlet(detail::state().current);
}

detail::RunSlot& Greenlet::run_slot() noexcept { return impl_->run; }

GreenletImpl& Greenlet::checked() const {
  if (!impl_) throw GreenletError("fern: empty Greenlet handle");
  return *impl_;
}

Value Greenlet::throw_in(std::exception_ptr error) {
  if (!error) throw GreenletError("fern: throw_in needs an exception");
  Value none;
  detail::Transfer t{&none, &error};
  return detail::switch_general(impl_, &t);
}

bool Greenlet::started() const noexcept { return impl_ && impl_->state != State::kUnstarted; }
bool Greenlet::active() const noexcept { return impl_ && impl_->state == State::kActive; }
bool Greenlet::dead() const noexcept { return impl_ && impl_->state == State::kDead; }
bool Greenlet::is_main() const noexcept { return impl_ && impl_->is_main; }
unsigned long Greenlet::id() const noexcept { return impl_ ? impl_->id : 0; }
std::size_t Greenlet::stack_size() const noexcept { return impl_ && impl_->stack ? impl_->stack.size : 0; }

Greenlet Greenlet::parent() const {
  return Greenlet(checked().parent);
}

void Greenlet::set_parent(const Greenlet& parent) {
  GreenletImpl& self = checked();
  if (self.is_main) throw GreenletError("fern: a main greenlet has no parent to set");
  if (!parent.impl_) throw GreenletError("fern: a greenlet's parent cannot be removed");
  if (parent.impl_->thread != self.thread)
    throw CrossThreadError("fern: parent cannot be on a different thread");
  for (GreenletImpl* p = parent.impl_; p; p = p->parent)
    if (p == &self) throw CyclicParentError();
  detail::retain(parent.impl_);
  GreenletImpl* old = std::exchange(self.parent, parent.impl_);
  detail::release(old);
}

bool is_greenlet_exit(const std::exception_ptr& error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const GreenletExit&) {
    return true;
  } catch (...) {
    return false;
  }
}

bool Greenlet::at_exit(GreenletExitHook* hook) noexcept {
  GreenletImpl* g = detail::current_impl();
  if (!g || g->is_main) return false;
  cancel_exit(hook);
  hook->owner = g;
  hook->prev = nullptr;
  hook->next = g->exit_hooks;
  if (g->exit_hooks) g->exit_hooks->prev = hook;
  g->exit_hooks = hook;
  return true;
}

void Greenlet::cancel_exit(GreenletExitHook* hook) noexcept {
  GreenletImpl* g = hook->owner;
  if (!g) return;
  if (hook->prev) hook->prev->next = hook->next;
  else g->exit_hooks = hook->next;
  if (hook->next) hook->next->prev = hook->prev;
  hook->owner = nullptr;
  hook->prev = hook->next = nullptr;
}

std::size_t Greenlet::live_count() noexcept { return detail::t_state.live; }

namespace detail {

void note_thread_hub(const void* hub) noexcept { t_state.hub = hub; }

const GreenletHead* running_head() noexcept { return t_state.current; }
unsigned long running_id() noexcept { return t_state.current ? t_state.current->id : 0; }

void for_each_greenlet(void (*fn)(const GreenletView&, void*), void* ctx) {
  ThreadState& ts = state();
  char here;
  auto visit = [&](GreenletImpl* g) {
    GreenletView v{};
    v.head = g;
    v.id = g->id;
    v.parent_id = g->parent ? g->parent->id : 0;
    v.is_main = g->is_main;
    bool running = g == ts.current;
    if (g->state == State::kUnstarted) v.state = GreenletView::kUnstarted;
    else if (g->state == State::kDead) v.state = GreenletView::kDead;
    else v.state = running ? GreenletView::kRunning : GreenletView::kSuspended;
    if (g->stack) {
      v.stack_base = g->stack.base;
      v.stack_size = g->stack.size;
      auto top = reinterpret_cast<std::uintptr_t>(g->stack.base) + g->stack.size;
      auto sp = running ? reinterpret_cast<std::uintptr_t>(&here) : reinterpret_cast<std::uintptr_t>(g->fiber.context);
      if (v.state != GreenletView::kDead && sp && sp <= top) v.stack_used = top - sp;
    }
    fn(v, ctx);
  };
  visit(ts.main);
  for (GreenletHead* h = ts.greenlets; h; h = h->reg_next) {
    auto* g = static_cast<GreenletImpl*>(h);
    if (g != ts.main) visit(g);
  }
}

}  // namespace detail

}  // namespace fern
