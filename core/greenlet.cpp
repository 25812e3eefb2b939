// Greenlet trees on top of arch::switch_fiber.
//
// Invariants:
// - Running holds no reference (greenlet_core.h): a running greenlet whose
//   count drops to zero lives on and its next switch is a general one, which
//   lends it a reference and leaves it in `previous`; the side that lands
//   drops it (it may be the last one, which kills a suspended greenlet: never
//   do that before the landing is complete).
// - A finishing greenlet cannot free the stack it runs on: it parks itself in
//   `zombie` and the side that lands returns the stack to the pool.
// - A Transfer and what it points to live on the sender's stack (a finishing
//   greenlet's in ThreadState, unless its result goes in registers:
//   `ending` and the result slot, which bury_zombie empties after the
//   landing); the receiver moves them out
//   before anything else, since the sender's stack may be released right after.
// - The hot path (switch_to_impl, inline in the caller) takes a suspended
//   greenlet of this thread, admitted by one compare of its key: it moves
//   the value once and touches no exception_ptr and no count. begin_slow
//   adds starts and lent references; everything else goes through
//   switch_general.
#include "fern/core/greenlet.h"

#include <cxxabi.h>

#include <atomic>
#include <cassert>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "fern/arch/fiber.h"
#include "fern/arch/thread_id.h"
#include "fern/core/context.h"

extern "C" void* __dso_handle;  // this library's handle, for __cxa_thread_atexit

namespace fern {
namespace detail {

class GreenletImpl : public GreenletCore {
 public:
  arch::Stack stack;  // until started: no base, and the size asked for (0: the default)
  RunSlot run;
  GreenletImpl* parent = nullptr;  // holds a reference
  unsigned long id = 0;
  // What few greenlets use, out of line (every byte above is an idle
  // connection's): made on first use, freed with the greenlet.
  struct Extras {
    GreenletExitHook* exit_hooks = nullptr;  // newest first
    ContextRef context;                      // its current context (GL-23)
  };
  Extras* extras = nullptr;

  GreenletImpl() noexcept = default;
  GreenletImpl(const GreenletImpl&) = delete;
  GreenletImpl& operator=(const GreenletImpl&) = delete;
  ~GreenletImpl() { delete extras; }  // a context's values may run user code

  static void entry(void* arg, void* data);
  // A counting handle (Greenlet's constructor from an impl is private).
  static Greenlet handle(GreenletImpl* g) { return Greenlet(g); }
};
// 152 bytes, a 160-byte malloc chunk: an idle connection pays it (with a
// plain Fiber; sanitizer builds add their fiber handles).
static_assert(sizeof(arch::Fiber) != sizeof(void*) || sizeof(GreenletImpl) <= 152,
              "fern: GreenletImpl grew past 152 bytes");

// Every thread that has greenlets, for debuggers (tools/fern_gdb.py walks it
// from fern::detail::g_registry). Locked only when a thread starts or ends.
struct ThreadRegistry {
  std::mutex mutex;
  ThreadState* threads = nullptr;
};
ThreadRegistry g_registry;

__thread ThreadState t_state;

namespace {

GreenletImpl* impl(GreenletCore* g) noexcept { return static_cast<GreenletImpl*>(g); }
std::uint64_t status(const GreenletImpl* g) noexcept { return g->key & kStatusMask; }
bool is_active(const GreenletImpl* g) noexcept { return (g->key & kInactiveBit) == 0; }
std::uint64_t thread_of(const GreenletImpl* g) noexcept { return g->key >> kStatusBits; }
void set_status(GreenletImpl* g, std::uint64_t s) noexcept { g->key = (g->key & ~kStatusMask) | s; }

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

// Leaves g's links as they were: it is deleted next.
void registry_unlink(ThreadState& ts, GreenletImpl* g) noexcept {
  GreenletHead* h = g;
  if (h->reg_prev) h->reg_prev->reg_next = h->reg_next;
  else if (ts.greenlets == h) ts.greenlets = h->reg_next;
  if (h->reg_next) h->reg_next->reg_prev = h->reg_prev;
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
void destroy(GreenletImpl* g) noexcept;

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
    ++ts.free_room;
  } else {
    block = ::operator new(sizeof(GreenletImpl));
  }
  return ::new (block) GreenletImpl;
}

// A destroyed greenlet's memory joins the thread's list (free_room != 0).
inline void keep_block(ThreadState& ts, void* block) noexcept {
  *static_cast<void**>(block) = ts.free_blocks;
  ts.free_blocks = block;
  --ts.free_room;
}

// ours: g is of this thread (its memory may join this thread's list).
void delete_greenlet(GreenletImpl* g, bool ours) noexcept {
  g->~GreenletImpl();  // may run user code (the run callable's captures)
  if (ours && t_state.free_room != 0) {
    keep_block(t_state, g);
  } else {
    ::operator delete(static_cast<void*>(g));
  }
}

arch::OverflowInfo describe_current() noexcept {
  GreenletImpl* g = impl(t_state.current);
  if (!g) return {arch::Stack{}, "greenlet", 0};
  return {g->stack, "greenlet", g->id};
}

// Drops the main greenlet when the thread ends.
struct ThreadCleanup {
  ~ThreadCleanup() {
    ThreadState& ts = t_state;
    ts.alive = false;
    ts.ended = true;
    ts.free_room = 0;  // greenlets deleted from now on go to operator delete
    GreenletImpl* current = impl(std::exchange(ts.current, nullptr));
    GreenletImpl* main = std::exchange(ts.main, nullptr);
    if (main) set_status(main, kDead);  // its thread is gone: held by a handle, it reads dead (GL-29)
    ts.fast_key = 0;
    if (current && current != main && current->refs == 0) destroy(current);  // ran without references
    if (main) release(main);  // survives only while suspended children hold it
    while (void* block = ts.free_blocks) {
      ts.free_blocks = *static_cast<void**>(block);
      ::operator delete(block);
    }
    registry_remove_thread(ts);
  }
};

// The thread's state, made on first use.
[[gnu::noinline]] ThreadState& make_state() {
  ThreadState& ts = t_state;
  if (ts.ended) throw GreenletError("fern: greenlets used after their thread's cleanup");
  thread_local ThreadCleanup cleanup;
  (void)cleanup;
  auto* main = new_greenlet(ts);
  ts.serial = g_next_serial.fetch_add(1, std::memory_order_relaxed);
  main->key = ts.serial << kStatusBits | kRunning;
  main->is_main = true;  // its one reference: `main`
  arch::fiber_adopt_thread(main->fiber);
  ts.current = main;
  ts.fast_key = ts.serial << kStatusBits;
  ts.main = main;
  ts.eh = reinterpret_cast<EhGlobals*>(abi::__cxa_get_globals());
  ts.next_id = 1;
  ts.live = 1;
  ts.alive = true;
  ts.free_room = kKeptBlocks;
  // GreenletHead and GreenletCore must sit at the start (head_of, core_of
  // cast), and the run where Greenlet::run_slot reads it: checked once a thread.
  if (head_of(main) != static_cast<GreenletHead*>(main) || core_of(main) != static_cast<GreenletCore*>(main)) std::abort();
  if (reinterpret_cast<char*>(&main->run) - reinterpret_cast<char*>(main) != static_cast<std::ptrdiff_t>(kRunSlotOffset))
    std::abort();
  registry_link(ts, main);
  registry_add_thread(ts);
  arch::install_overflow_reporter(&describe_current);
  return ts;
}

inline ThreadState& state() {
  ThreadState& ts = t_state;
  if (__builtin_expect(ts.main == nullptr, 0)) return make_state();
  return ts;
}


// A finished greenlet's stack goes back once nothing runs on it any more.
inline void bury_zombie(ThreadState& ts) noexcept {
  GreenletImpl* z = ts.zombie;
  ts.zombie = nullptr;
  arch::fiber_retire(z->fiber);
  arch::release_stack(z->stack);
  z->stack = {};
  // A result that went through the slot (see run_to_end).
  if (ts.ending.value) {
    std::launder(reinterpret_cast<Value*>(ts.ending_value))->~Value();
    std::launder(reinterpret_cast<std::exception_ptr*>(ts.ending_error))->~exception_ptr();
    ts.ending = Transfer{nullptr, nullptr};
  }
}

// Per-greenlet C++ exception state (GL-21, GL-22) when either side has some:
// kept by `from` if it has some, restored for a target that kept some, empty
// otherwise. Returns the status `from` suspends with.
[[gnu::noinline]] std::uint64_t swap_eh_state(EhGlobals* eh, GreenletImpl* from, GreenletImpl* target) noexcept {
  bool from_eh = eh->caught_exceptions != nullptr || eh->uncaught_exceptions != 0;
  from->eh_caught = eh->caught_exceptions;
  from->eh_uncaught = static_cast<std::uint16_t>(eh->uncaught_exceptions);
  bool target_eh = status(target) == kSuspendedEh;
  eh->caught_exceptions = target_eh ? target->eh_caught : nullptr;
  eh->uncaught_exceptions = target_eh ? target->eh_uncaught : 0;
  return from_eh ? kSuspendedEh : kSuspended;
}

// A switch while a trace is set: its origin, held until the landing traces
// it (it may be a finishing greenlet whose last handle is gone). Every
// landing takes the origin its switch noted (finish_switch), so none is
// left here: releasing one now could destroy a greenlet in the middle of
// this switch's bookkeeping.
// `out`: what the switch carries when not in registers; a finishing
// greenlet's is in `ts` (ThreadState::ending).
[[gnu::noinline]] void note_trace(ThreadState& ts, GreenletImpl* from, const Transfer* out) noexcept {
  assert(ts.trace_origin == nullptr && "a switch's landing left its trace origin");
  ts.trace_origin = from;
  retain(from);
  if (!out && status(from) == kDead && ts.xfer_word == kXferTransfer) out = &ts.ending;
  ts.trace_throw = out && out->error;
  ts.landing_work = true;
}

// The bookkeeping of a switch from `from` (running, or dead when it ends)
// to `target` (of this thread), as switch_to_impl does it plus what its key
// check sends here: exception state, and a reference lent to a running
// greenlet without one, which the landing drops; the fast key is back
// (unless a trace is set: every switch comes here then). `out`: what the
// switch carries in a Transfer (for a trace: "throw" if an error).
// `ending`: `from` is a finished greenlet, whose run has returned: every
// handler on its stack has ended, so it has no exception state to keep.
template <bool ending = false>
[[gnu::always_inline]] inline void prepare_transfer(ThreadState& ts, GreenletImpl* from, GreenletImpl* target,
                                                    const Transfer* out = nullptr) noexcept {
  std::uint64_t suspends_as = kSuspended;
  EhGlobals* eh = ts.eh;
  assert(!ending || (eh->caught_exceptions == nullptr && eh->uncaught_exceptions == 0));
  if (__builtin_expect((!ending && (eh->caught_exceptions != nullptr || eh->uncaught_exceptions != 0)) ||
                           status(target) == kSuspendedEh, 0))
    suspends_as = swap_eh_state(eh, from, target);
  if (__builtin_expect(from->refs == 0, 0)) {
    retain(from);
    ts.previous = from;
    ts.landing_work = true;
  }
  std::uint64_t key = ts.serial << kStatusBits;  // 0 while exiting (serial 0)
  if (status(from) == kRunning) from->key = key | suspends_as;
  target->key = (target->key & ~kStatusMask) | kRunning;
  ts.current = target;
  if (__builtin_expect(ts.tracing, 0)) {
    note_trace(ts, from, out);
    key = kSlowKey;
  }
  ts.fast_key = key;
}

// Switches stacks (the hot path does the same in switch_carrying, inline in
// the caller).
inline void* transfer(ThreadState& ts, GreenletImpl* from, GreenletImpl* target, Transfer* out) noexcept {
  prepare_transfer(ts, from, target, out);
  ts.xfer_word = kXferTransfer;
  return switch_stacks(from, target, out);
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
  ts.serial = 0;  // every greenlet is foreign now
  ts.fast_key = 0;  // and the hot path refuses them too
}

// Thread-local destructors run newest first, so the sentinel must be
// registered after the thread-locals that switch in their destructors (a
// hub, which makes a greenlet and then registers itself). It is registered
// when a greenlet starts after new greenlets were made: at most 16 times,
// then at every power-of-two start (O(log n) registrations in all). The
// starts in between only count: sentinel_due is the next that looks (every
// one until 16 are registered).
[[gnu::noinline]] void look_at_exit_sentinel(ThreadState& ts) {
  if (ts.sentinel_mark != ts.next_id &&
      abi::__cxa_thread_atexit(&on_thread_locals_ending, nullptr, &__dso_handle) == 0) {
    ++ts.sentinels;
    ts.sentinel_mark = ts.next_id;
  }
  // The smallest power of two above starts (>= 1), once 16 are registered.
  ts.sentinel_due = ts.sentinels < 16 ? ts.starts + 1 : 2ul << (63 - __builtin_clzl(ts.starts));
}

inline void arm_exit_sentinel(ThreadState& ts) {
  if (++ts.starts >= ts.sentinel_due) look_at_exit_sentinel(ts);
}

inline void start(GreenletImpl* g) {
  arm_exit_sentinel(t_state);
  g->stack = arch::allocate_stack(g->stack.size);  // the size asked for
  // Its frame is FP-neutral until its first switch out: it starts with the
  // FP control of the switch that starts it (right after this), as in
  // Python's greenlet, without reading it here.
  arch::fiber_start(g->fiber, g->stack, &GreenletImpl::entry, g);
  set_status(g, kSuspended);
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
    if (status(target) == kDead) {
      if (t.error) eat_greenlet_exit(t);
      target = target->parent;
      continue;
    }
    if (is_active(target)) return target;
    if (!target->run) {
      throw GreenletError("fern: cannot switch to or throw into a greenlet without a run function");
    }
    if (t.error) {
      set_status(target, kDead);
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

void report_run_destructor_error() noexcept {
  const char* what = "not a std::exception";
  try {
    throw;
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  std::fprintf(stderr, "fern: the destructor of a greenlet's run callable raised an exception (%s); ignored\n",
               what);
}

// A finished greenlet's stack, and a reference lent to a greenlet that ran
// without one, go once nothing runs on that stack any more.
void land_after() noexcept {
  ThreadState& ts = t_state;
  ts.landing_work = false;
  if (ts.zombie) bury_zombie(ts);
  if (GreenletImpl* p = std::exchange(ts.previous, nullptr)) release(p);
}

namespace {
// The thread's trace (Greenlet::set_trace). Destroyed with the thread's
// other thread-locals: it turns tracing off first, so that switches made by
// the ones destroyed after it are not traced.
struct TraceHolder {
  Greenlet::Trace fn;
  ~TraceHolder() { t_state.tracing = false; }
};
TraceHolder& trace_holder() {
  thread_local TraceHolder holder;
  return holder;
}
}  // namespace

void call_trace() {
  ThreadState& ts = t_state;
  struct Drop {
    GreenletImpl* origin;
    ~Drop() {
      if (origin) release(origin);  // may be its last reference (a finished greenlet)
    }
  } drop{std::exchange(ts.trace_origin, nullptr)};
  if (!ts.tracing) return;
  Greenlet::Trace trace = trace_holder().fn;  // a copy: the trace may replace itself
  if (!trace) return;
  try {
    trace(ts.trace_throw ? TraceEvent::kThrow : TraceEvent::kSwitch, GreenletImpl::handle(drop.origin),
          GreenletImpl::handle(impl(ts.current)));
  } catch (...) {
    Greenlet::set_trace(nullptr);  // GL-24: an error turns tracing off, and goes on
    throw;
  }
}

void* call_trace_passing(void* arg) {
  call_trace();
  return arg;
}

namespace {
[[noreturn, gnu::noinline]] void land_with_error(Transfer* in) {
  std::exception_ptr error = std::move(*in->error);
  if (t_state.landing_work) land_after();
  if (t_state.trace_origin) call_trace();  // what it throws replaces the error
  std::rethrow_exception(std::move(error));
}

struct Landing {
  ~Landing() {
    if (t_state.landing_work) land_after();
  }
};

[[gnu::noinline]] Value finish_traced_transfer(Transfer* in) {
  Value value = [in] {
    Landing landing;
    return std::move(*in->value);
  }();
  call_trace();
  return value;
}
}  // namespace

Value finish_transfer(void* arg) {
  auto* in = static_cast<Transfer*>(arg);
  if (__builtin_expect(in->error != nullptr, 0)) land_with_error(in);
  if (__builtin_expect(t_state.trace_origin != nullptr, 0)) return finish_traced_transfer(in);
  Landing landing;
  return std::move(*in->value);
}

// Any switch: checks, resolves the target, and handles a switch to oneself.
Value switch_general(GreenletImpl* target, Transfer* t) {
  if (!target) throw GreenletError("fern: empty Greenlet handle");
  ThreadState& ts = state();
  if (__builtin_expect(ts.exiting, 0))
    throw GreenletError("fern: no greenlet switches while the thread exits from inside a greenlet "
                        "(exit() or pthread_exit there); suspended greenlets are abandoned");
  if (__builtin_expect(thread_of(target) != ts.serial, 0))
    throw CrossThreadError("fern: cannot switch to a greenlet of a different thread "
                           "(or of a thread that has exited)");
  if (__builtin_expect(!is_active(target), 0)) target = resolve(target, *t);
  if (__builtin_expect(target == ts.current, 0)) {
    if (t->error) std::rethrow_exception(*t->error);
    return std::move(*t->value);
  }
  return finish_switch(transfer(ts, impl(ts.current), target, t));
}

// switch_general for a value in either of switch_carrying's forms.
Value switch_general_carrying(GreenletImpl* target, std::uintptr_t word, void* arg) {
  if (word == kXferTransfer) return switch_general(target, static_cast<Transfer*>(arg));
  Value copy = ValueAccess::from_register(word, arg);
  Transfer t{&copy, nullptr};
  return switch_general(target, &t);
}

// What the key does not admit but needs only bookkeeping: a suspended target
// (the running greenlet had no references), an unstarted one with run (GL-9:
// it starts with the value; StackError leaves it unstarted).
SwitchPair begin_slow(GreenletImpl* target, std::uintptr_t word) {
  ThreadState& ts = t_state;
  if (target == nullptr || ts.current == nullptr || ts.exiting || thread_of(target) != ts.serial)
    return {nullptr, nullptr};
  std::uint64_t s = status(target);
  if (s == kUnstarted && target->run) {
    start(target);
  } else if (s != kSuspended && s != kSuspendedEh) {
    return {nullptr, nullptr};
  }
  GreenletImpl* from = impl(ts.current);
  prepare_transfer(ts, from, target);
  ts.xfer_word = xfer_word_for(word);
  return {from, target};
}

Value direct_manage(RunSlot::Op op, void* storage, Value*) {
  if (op == RunSlot::kRunOnce) {
    const DirectRun& run = *std::launder(reinterpret_cast<DirectRun*>(storage));
    run.fn(run.arg);
  }
  return {};
}

bool prepare_start(GreenletImpl* g) noexcept {
  // One compare: unstarted and of this thread (whose serial is 0 while it
  // exits: no greenlet's key matches then).
  if (g->key != (t_state.serial << kStatusBits | kUnstarted) || !g->run) return false;
  try {
    start(g);
  } catch (...) {
    return false;  // StackError: the switch that would start it reports it
  }
  return true;
}

GreenletImpl* current_impl() noexcept {
  ThreadState& ts = t_state;
  if (__builtin_expect(ts.current == nullptr, 0)) {
    try {
      return impl(state().current);
    } catch (...) {
      return nullptr;  // after the thread's cleanup
    }
  }
  return impl(ts.current);
}

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
  g->parent = impl(ts.current);
  retain(g->parent);
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

// A suspended greenlet whose last reference went: unwound (GL-19) where
// its thread can run it, else abandoned. False when it was referenced again
// while it unwound (it lives on).
[[gnu::noinline]] bool unwind_dropped(GreenletImpl* g) noexcept {
  if (t_state.exiting) {
    g->stack = {};  // abandoned without unwinding (see on_thread_locals_ending)
  } else if (!t_state.alive || thread_of(g) != t_state.serial) {
    // Its thread is gone or it is not ours: nothing can run its unwinding.
    if (t_state.ended && thread_of(g) == t_state.serial)
      std::fprintf(stderr, "fern: greenlet #%lu dropped while suspended after its thread's greenlets were "
                           "cleaned up (a static, or a thread_local made before the thread first used a "
                           "greenlet); its stack is leaked without unwinding\n", g->id);
    else
      std::fprintf(stderr, "fern: greenlet #%lu dropped while suspended outside its thread; "
                           "its stack is leaked\n", g->id);
    g->stack = {};
  } else {
    kill_on_release(g);
    if (--g->refs != 0) return false;  // it switched away and was referenced again
    if (is_active(g))
      std::fprintf(stderr, "fern: greenlet #%lu survived GreenletExit while being dropped; "
                           "its stack is released without unwinding\n", g->id);
  }
  return true;
}

[[gnu::noinline]] void destroy_general(GreenletImpl* g) noexcept;

// The common end is a leaf (a dead greenlet of this thread: its stack went
// back when it finished; nothing out of line to free; its parent lives on);
// anything else takes the general path.
void destroy(GreenletImpl* g) noexcept {
  ThreadState& ts = t_state;
  GreenletImpl* p = g->parent;
  if (__builtin_expect(is_active(g) || g->stack || thread_of(g) != ts.serial || !p || p->refs == 1 ||
                           g->extras || g->run.manage || ts.free_room == 0,
                       0))
    return destroy_general(g);
  --p->refs;
  --ts.live;
  registry_unlink(ts, g);
  g->~GreenletImpl();  // nothing to run: no extras, no run
  keep_block(ts, g);
}

void destroy_general(GreenletImpl* g) noexcept {
  if (__builtin_expect(is_active(g) && !g->is_main, 0) && !unwind_dropped(g)) return;
  bool ours = thread_of(g) == t_state.serial;
  if (g->stack && ours) {  // another thread's stack belongs to that thread's pool
    arch::fiber_retire(g->fiber);
    arch::release_stack(g->stack);
  }
  if (g->parent) release(g->parent);
  if (ours) {
    --t_state.live;
    registry_unlink(t_state, g);
  }
  delete_greenlet(g, ours);
}

void release(GreenletImpl* g) noexcept {
  if (--g->refs == 0) released_last(g);
}

// The body, with what it lets escape turned into the result (GL-7) or the
// error (GL-6). pthread_exit (and cancellation) unwind with
// abi::__forced_unwind, which must go on: it unwinds this stack (destructors
// run) up to the trampoline, whose unwind info ends the stack, and the C
// library then leaves the thread from its own start frame. The greenlet is
// dead; frames on the thread's own stack are skipped, as by longjmp.
// (A forced unwind carries no C++ object: the handler's reference is null by
// design, which UBSan would report.)
// The first switch's landing is inside the try: a trace that throws there
// (GL-24) ends the greenlet with that error before its run (greenlet turns
// it into a throw at the start).
[[gnu::no_sanitize_undefined]] Value run_body(GreenletImpl* self, void* arg, std::exception_ptr& error) {
  try {
    return self->run.run_once(finish_switch(arg));
  } catch (const GreenletExit& e) {
    self->run.reset();  // a no-op unless the landing threw: then it never runs
    return Value(e);  // GL-7: a kill is a result, not an error
  } catch (abi::__forced_unwind&) {
    set_status(self, kDead);
    throw;
  } catch (...) {
    self->run.reset();
    error = std::current_exception();  // GL-6: rethrown in the parent
    return Value();
  }
}

// Where a finished greenlet's switch goes and the argument it carries; the
// value's word is in ThreadState::xfer_word already: a result in registers
// (the argument its bits; kXferLanding added: the landing buries this
// greenlet), or kXferTransfer with the result or error in the
// thread's slot (the argument ThreadState::ending).
struct Ending {
  GreenletImpl* target;
  void* arg;
};

// A hook may block (a local's destructor that sleeps): the greenlet holds a
// reference to itself meanwhile, so that losing its last handle then does not
// kill it inside the hook (a GreenletExit leaving a noexcept destructor would
// end the process); it finishes the hook and ends as it would have.
[[gnu::noinline]] void run_exit_hooks(GreenletImpl* self) noexcept {
  retain(self);
  struct Drop {
    GreenletImpl* self;
    ~Drop() { release(self); }
  } drop{self};
  while (GreenletExitHook* hook = self->extras->exit_hooks) {
    Greenlet::cancel_exit(hook);
    try {
      hook->fn(hook);
    } catch (...) {
      std::fprintf(stderr, "fern: an exit hook of greenlet #%lu raised; ignored\n", self->id);
    }
  }
}

// The result goes through the thread's slot: an error, a value that is not
// a register's, or a parent that is not active (GL-8, GL-9, GL-11).
[[gnu::noinline]] Ending end_through_slot(ThreadState& ts, GreenletImpl* self, Value& result,
                                           std::exception_ptr& failure) {
  auto* error = ::new (ts.ending_error) std::exception_ptr(std::move(failure));
  Transfer& out = ts.ending;
  out = Transfer{::new (ts.ending_value) Value(std::move(result)), *error ? error : nullptr};
  GreenletImpl* target = self->parent;
  for (;;) {
    try {
      GreenletImpl* to = resolve(target, out);
      ts.xfer_word = kXferTransfer;
      return {to, &out};
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

// Finds where a finished run's result goes (GL-4, GL-8). A result that
// goes to an active parent in registers (a void body's empty one, an int)
// needs nothing more; anything else ends in `ts` (end_through_slot), not on
// this stack: see entry.
[[gnu::always_inline]] inline Ending end_run(ThreadState& ts, GreenletImpl* self, Value& result,
                                             std::exception_ptr& failure) {
  // Exit hooks may switch: only after them, with no switch before the last
  // one, may the result move to the thread's one slot.
  if (__builtin_expect(self->extras != nullptr, 0)) run_exit_hooks(self);
  set_status(self, kDead);
  GreenletImpl* parent = self->parent;
  if (__builtin_expect(!failure && is_active(parent) && ValueAccess::is_register_value(result), 1)) {
    ts.xfer_word = ValueAccess::word(result) | kXferLanding;  // entry leaves a zombie
    return {parent, ValueAccess::bits(result)};
  }
  return end_through_slot(ts, self, result, failure);
}

// end_through_slot for an empty result and no error.
[[gnu::noinline]] Ending end_empty_through_slot(ThreadState& ts, GreenletImpl* self) {
  std::exception_ptr none;
  Value empty;
  return end_through_slot(ts, self, empty, none);
}

// Runs the body and finds where its result goes.
[[gnu::noinline]] Ending run_to_end(ThreadState& ts, GreenletImpl* self, void* arg) {
  // A fresh greenlet never receives an error.
  std::exception_ptr failure;
  Value result = run_body(self, arg, failure);  // the run is gone (RunSlot::run_once), or never ran
  return end_run(ts, self, result, failure);
}

// A DirectRun's end after it threw, inside the handler that caught it: what
// escaped is handled as run_body does (GL-6, GL-7; a forced unwind goes on).
[[gnu::noinline, gnu::no_sanitize_undefined]] Ending direct_failed(ThreadState& ts, GreenletImpl* self) {
  std::exception_ptr failure;
  Value result;
  try {
    throw;
  } catch (const GreenletExit& e) {
    result = Value(e);
  } catch (abi::__forced_unwind&) {
    set_status(self, kDead);
    throw;
  } catch (...) {
    failure = std::current_exception();
  }
  return end_run(ts, self, result, failure);
}

// run_to_end for a DirectRun (a task's body): the landing of a value in
// registers, which the run does not take, and the call, without the
// generic run's Value in and out. A value in a Transfer, or a trace to
// call, takes the generic path (direct_manage).
[[gnu::noinline]] Ending run_direct(ThreadState& ts, GreenletImpl* self, void* arg) {
  std::uintptr_t word = ts.xfer_word;
  if (__builtin_expect(word == kXferTransfer || ts.trace_origin != nullptr, 0)) return run_to_end(ts, self, arg);
  if (word & kXferLanding) land_after();  // a register value is dropped as it is: nothing to destroy
  DirectRun run = *std::launder(reinterpret_cast<DirectRun*>(self->run.storage));
  self->run.manage = nullptr;  // a started greenlet has no run (GL-16)
  try {
    run.fn(run.arg);
  } catch (...) {
    return direct_failed(ts, self);
  }
  // end_run for an empty result and no error.
  if (__builtin_expect(self->extras != nullptr, 0)) run_exit_hooks(self);
  set_status(self, kDead);
  GreenletImpl* parent = self->parent;
  if (__builtin_expect(!is_active(parent), 0)) return end_empty_through_slot(ts, self);
  ts.xfer_word = kXferLanding;  // an empty value; entry leaves a zombie
  return {parent, nullptr};
}

}  // namespace

// The running greenlet lives on without references (greenlet_core.h).
void released_last(GreenletImpl* g) noexcept {
  if (g == t_state.current) {
    t_state.fast_key = kSlowKey;
    return;
  }
  destroy(g);
}

// No local of this frame has its address taken: it is never returned from,
// so ASan would keep such a local's redzones poisoned on the pooled stack.
void GreenletImpl::entry(void* arg, void* data) {
  auto* self = static_cast<GreenletImpl*>(data);
  arch::fiber_after_switch(self->fiber);
#if FERN_FP_CHECKS
  if (self->fp_neutral) fp_neutral_landed();
#endif
  ThreadState& ts = t_state;
  Ending end = self->run.manage == &direct_manage ? run_direct(ts, self, arg) : run_to_end(ts, self, arg);
  // Ended without an error: the hub may have the next greenlet of its batch
  // for us to switch to directly (its result, empty for a task, is dropped;
  // one in the slot goes with the zombie).
  if (ts.end_handoff && (ts.xfer_word != kXferTransfer || !ts.ending.error) && !ts.exiting) {
    GreenletImpl* next = ts.end_handoff(end.target);
    if (next != end.target) {
      end = {next, nullptr};
      ts.xfer_word = kXferLanding;  // an empty value
    }
  }
  ts.zombie = self;
  ts.landing_work = true;  // and kXferLanding is in a register value's word (run_to_end)
  prepare_transfer<true>(ts, self, end.target);  // a trace finds its Transfer in ts.ending
#if FERN_FP_CHECKS
  if (self->fp_neutral) fp_neutral_leaves(self);
#endif
  // Its FP control is never resumed: it switches as an FP-neutral one.
  arch::switch_fiber(self->fiber, end.target->fiber, end.arg, true, true);
  std::fputs("fern: a finished greenlet was resumed\n", stderr);
  std::abort();
}

#if FERN_FP_CHECKS
void fp_neutral_landed() noexcept { t_state.fp_found = arch::fp_control_now(); }

void fp_neutral_leaves(GreenletCore* g) noexcept {
  if (arch::fp_control_now() == t_state.fp_found) return;
  std::fprintf(stderr,
               "fern: FP-neutral greenlet %lu changed the thread's FP control (rounding, exception masks, "
               "flush-to-zero) and did not restore it before switching out: an FP-neutral greenlet must leave "
               "it as it found it (or not be FP-neutral: Greenlet::set_fp_neutral)\n",
               impl(g)->id);
  std::abort();
}
#endif

}  // namespace detail

using detail::GreenletImpl;

namespace detail {
namespace {
// A new greenlet of ts with parent p (of ts), unstarted and without run.
[[gnu::always_inline]] inline GreenletImpl* make_greenlet(ThreadState& ts, GreenletImpl* p, std::size_t stack_size) {
  GreenletImpl* g = new_greenlet(ts);
  g->parent = p;
  retain(p);
  g->key = ts.serial << kStatusBits | kUnstarted;
  g->id = ts.next_id++;
  g->stack.size = stack_size;  // the size asked for, until started
  ++ts.live;
  registry_link(ts, g);
  return g;
}
}  // namespace
}  // namespace detail

// A kept block means the thread's state is made (the list is empty before
// and drained at its cleanup), and then current is never null.
Greenlet::Greenlet(const Greenlet& parent, std::size_t stack_size) {
  detail::ThreadState& ts = detail::t_state;
  GreenletImpl* p = parent.impl_ ? parent.impl_ : detail::impl(ts.current);
  if (__builtin_expect(ts.free_blocks == nullptr || detail::thread_of(p) != ts.serial, 0)) {
    make_slow(parent, stack_size);
    return;
  }
  impl_ = detail::make_greenlet(ts, p, stack_size);
}

void Greenlet::make_slow(const Greenlet& parent, std::size_t stack_size) {
  detail::ThreadState& ts = detail::state();
  GreenletImpl* p = parent.impl_ ? parent.impl_ : detail::impl(ts.current);
  if (detail::thread_of(p) != ts.serial) throw CrossThreadError("fern: parent cannot be on a different thread");
  impl_ = detail::make_greenlet(ts, p, stack_size);
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
// stack. Moving onto its own stack can only happen while it runs, so a count
// that reaches zero here leaves it running without references.
void Greenlet::rehold_slow(const Greenlet* from) noexcept {
  bool before = detail::counts(from, impl_), now = detail::counts(this, impl_);
  if (now && !before) detail::retain(impl_);
  if (before && !now) detail::release(impl_);
}

Greenlet Greenlet::current() {
  return Greenlet(detail::impl(detail::state().current));
}

GreenletImpl& Greenlet::checked() const {
  if (!impl_) throw GreenletError("fern: empty Greenlet handle");
  return *impl_;
}

Value Greenlet::throw_in(std::exception_ptr error) {
  if (!error) throw GreenletError("fern: throw_in needs an exception");
  // An exception out of the hub's loop would end it for good, and with it
  // every later blocking call: only the hub's own teardown unwinds it.
  if (impl_ && impl_ == detail::t_state.hub_greenlet)
    throw InvalidSwitchError("fern: cannot throw into the hub (kill a task, or raise in main, instead)");
  Value none;
  detail::Transfer t{&none, &error};
  return detail::switch_general(impl_, &t);
}

bool Greenlet::started() const noexcept { return impl_ && detail::status(impl_) != detail::kUnstarted; }
bool Greenlet::active() const noexcept { return impl_ && detail::is_active(impl_); }
bool Greenlet::dead() const noexcept { return impl_ && detail::status(impl_) == detail::kDead; }
bool Greenlet::is_main() const noexcept { return impl_ && impl_->is_main; }

bool Greenlet::fp_neutral() const noexcept { return impl_ && impl_->fp_neutral; }

std::string Greenlet::describe() const {
  if (!impl_) return "<fern::Greenlet empty>";
  const char* state;
  switch (detail::status(impl_)) {
    case detail::kUnstarted: state = "pending"; break;
    case detail::kDead: state = impl_->is_main ? "(thread exited) dead" : "dead"; break;
    default:
      state = impl_ == detail::impl(detail::t_state.current) ? "current active started" : "suspended active started";
  }
  char text[96];
  std::snprintf(text, sizeof text, "<fern::Greenlet #%lu at %p: %s%s>", impl_->id, static_cast<const void*>(impl_),
                state, impl_->is_main && !dead() ? " main" : "");
  return text;
}

namespace {
detail::ContextData* context_of(const GreenletImpl& g) noexcept { return g.extras ? g.extras->context.get() : nullptr; }

void set_context_of(GreenletImpl& g, const detail::ContextRef& context) {
  if (!g.extras) {
    if (!context.get()) return;
    g.extras = new GreenletImpl::Extras;
  }
  g.extras->context = context;
}
}  // namespace

detail::ContextData* detail::current_context() { return context_of(*current_impl()); }
void detail::set_current_context(const ContextRef& context) { set_context_of(*current_impl(), context); }

Context Greenlet::context() const {
  GreenletImpl& g = checked();
  if (detail::thread_of(&g) != detail::state().serial)
    throw CrossThreadError("fern: the context of another thread's greenlet");
  return Context(context_of(g));
}

void Greenlet::set_context(const Context& context) const {
  GreenletImpl& g = checked();
  if (detail::thread_of(&g) != detail::state().serial)
    throw CrossThreadError("fern: the context of another thread's greenlet");
  set_context_of(g, context.ref_);
}

void Greenlet::set_fp_neutral(bool neutral) const {
  GreenletImpl& g = checked();
  if (detail::thread_of(&g) != detail::state().serial)
    throw CrossThreadError("fern: set_fp_neutral on another thread's greenlet");
  if (g.fp_neutral == neutral) return;
  g.fp_neutral = neutral;
  std::uint64_t s = detail::status(&g);
  // A suspended one's frame says it from now on; an unstarted one's frame
  // will (start); the running one's next switch out writes its frame.
  if (s == detail::kSuspended || s == detail::kSuspendedEh) arch::set_fp_neutral(g.fiber.context, neutral);
#if FERN_FP_CHECKS
  if (s == detail::kRunning && neutral) detail::fp_neutral_landed();
#endif
}
unsigned long Greenlet::id() const noexcept { return impl_ ? impl_->id : 0; }

Greenlet::Trace Greenlet::set_trace(Trace trace) {
  detail::ThreadState& ts = detail::state();
  Trace& slot = detail::trace_holder().fn;
  Trace previous = std::exchange(slot, std::move(trace));
  ts.tracing = static_cast<bool>(slot);
  // Every switch takes the general path from now on (0: the thread no
  // longer switches at all). Turned off, the next general switch restores it.
  if (ts.tracing && ts.fast_key != 0) ts.fast_key = detail::kSlowKey;
  return previous;
}

Greenlet::Trace Greenlet::trace() { return detail::trace_holder().fn; }
std::size_t Greenlet::stack_size() const noexcept { return impl_ && impl_->stack ? impl_->stack.size : 0; }

Greenlet Greenlet::parent() const {
  return Greenlet(checked().parent);
}

void Greenlet::set_parent(const Greenlet& parent) {
  GreenletImpl& self = checked();
  if (self.is_main) throw GreenletError("fern: a main greenlet has no parent to set");
  if (!parent.impl_) throw GreenletError("fern: a greenlet's parent cannot be removed");
  if (detail::thread_of(parent.impl_) != detail::thread_of(&self))
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
  if (!g->extras) {
    try {
      g->extras = new GreenletImpl::Extras;  // the program's operator new, as its delete
    } catch (const std::bad_alloc&) {
      return false;
    }
  }
  cancel_exit(hook);
  GreenletExitHook*& first = g->extras->exit_hooks;
  hook->owner = g;
  hook->prev = nullptr;
  hook->next = first;
  if (first) first->prev = hook;
  first = hook;
  return true;
}

void Greenlet::cancel_exit(GreenletExitHook* hook) noexcept {
  GreenletImpl* g = hook->owner;
  if (!g) return;
  if (hook->prev) hook->prev->next = hook->next;
  else g->extras->exit_hooks = hook->next;
  if (hook->next) hook->next->prev = hook->prev;
  hook->owner = nullptr;
  hook->prev = hook->next = nullptr;
}

std::size_t Greenlet::live_count() noexcept { return detail::t_state.live; }

namespace detail {

void note_thread_hub(const void* hub, GreenletImpl* (*end_handoff)(GreenletImpl*) noexcept,
                     const GreenletImpl* hub_greenlet) noexcept {
  t_state.hub = hub;
  t_state.end_handoff = end_handoff;
  t_state.hub_greenlet = hub_greenlet;
}

const GreenletHead* running_head() noexcept { return t_state.current; }
unsigned long running_id() noexcept { return t_state.current ? impl(t_state.current)->id : 0; }

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
    if (status(g) == kUnstarted) v.state = GreenletView::kUnstarted;
    else if (status(g) == kDead) v.state = GreenletView::kDead;
    else v.state = running ? GreenletView::kRunning : GreenletView::kSuspended;
    if (g->stack) {
      v.stack_base = g->stack.base;
      v.stack_size = g->stack.size;
      auto top = reinterpret_cast<std::uintptr_t>(g->stack.base) + g->stack.size - arch::stack_color(g->stack);
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
