#pragma once
// What the inline switch (switch_to_impl, switch_word) reads and writes: the front
// of every greenlet (GreenletCore) and its thread's state (ThreadState, one
// `__thread` object). Internal: greenlet.cpp owns both; greenlet.h inlines
// the hot path over them.
//
// The switch key. A greenlet's `key` is its thread's serial shifted left by
// three, plus its status in the low bits: suspended (0: active, not running,
// no C++ exception state to restore), running, unstarted, dead, or suspended
// with exception state (a switch from inside a catch block or a destructor
// run by unwinding). ThreadState::fast_key is the key a greenlet of this
// thread has while suspended, so one compare, `target->key == fast_key`,
// admits a switch: the target is of this thread, active, not the running
// greenlet, and has no exception state. The hot path also checks that the
// running greenlet has none (`__cxa_eh_globals` empty), so it swaps none:
// per-greenlet exception state (GL-21, GL-22) costs the switches that have
// some, through the general path. A thread that has not made its state
// yet, or is exiting (see greenlet.cpp), has fast_key 0, which no greenlet's
// key equals (serials start at 1); fast_key 1 (kSlowKey) sends every switch
// down the general path until the next switch there, which is how the rare
// cases (below) get their turn.
//
// The value. A switch carries an empty value, or one whose 8 bytes copying
// moves (ints, pointers, small PODs), in registers: the switch's argument
// holds its bytes and ThreadState::xfer_word its Value word. Any other value,
// and an error, travel in a Transfer on the sender's stack (xfer_word is then
// kXferTransfer and the argument points to it); the receiver moves it out.
// A landing with work to do (a finished greenlet's stack to release, a lent
// reference to drop: ThreadState::landing_work) is told by the register
// value's word too (kXferLanding), so the inline landing tests one word.
//
// References. A greenlet's refs count handles and children (a child holds its
// parent); running does not count. When the count of the running greenlet
// drops to zero it lives on, and fast_key becomes kSlowKey: its next switch
// out is a general one, which lends it a reference that the landing side
// drops (killing it, if it is suspended then: GL-19). So the hot path never
// touches a count.
#include <cstddef>
#include <cstdint>
#include <exception>

#include "fern/arch/fiber.h"
#include "fern/core/value.h"

namespace fern::detail {

class GreenletImpl;

// What fern::dump_greenlets and the gdb script (tools/fern_gdb.py) read of a
// greenlet besides its state: its link in its thread's registry and where it
// is parked. The hub's inline park path reaches it through head_of() without
// GreenletImpl's definition. Linked on creation, unlinked on destruction; the
// switch never touches the links.
struct GreenletHead {
  GreenletHead* reg_prev = nullptr;
  GreenletHead* reg_next = nullptr;
  const char* park_what = nullptr;     // while parked in Hub::park: "Event.wait", "sleep", ...
  const void* park_object = nullptr;   // what it waits on (an fd number for "fd ..." waits)
  const void* task = nullptr;          // the fern::TaskBase running in it, if any
};

// A greenlet's status, the low three bits of its key.
enum : std::uint64_t {
  kSuspended = 0, kRunning = 1, kUnstarted = 2, kDead = 3, kSuspendedEh = 4,
  kStatusBits = 3, kStatusMask = 7,
  kInactiveBit = 2  // set in unstarted and dead only
};
inline constexpr std::uint64_t kSlowKey = 1;  // fast_key that admits no switch

// The fields of a greenlet the switch touches, first in GreenletImpl (its
// only base chain: GreenletImpl -> GreenletCore -> GreenletHead, no virtuals,
// so a GreenletImpl* is a GreenletCore* at the same address).
struct GreenletCore : GreenletHead {
  arch::Fiber fiber;
  std::uint64_t key = 0;  // (thread serial << kStatusBits) | status
  // Its C++ exception state while suspended with status kSuspendedEh (else
  // stale): __cxa_eh_globals' two fields (eh_caught is last), copied one by
  // one so that the rest of this word is not padding (a greenlet is most of
  // an idle connection's heap). A count of exceptions in flight at once on
  // one stack never nears 65,535.
  std::uint16_t eh_uncaught = 0;
  bool is_main = false;
  // Owns no FP control (Greenlet::set_fp_neutral). Read by every switch out,
  // so it sits in the word after the key, in the key's cache line.
  bool fp_neutral = false;
  unsigned refs = 1;
  void* eh_caught = nullptr;
};
inline GreenletCore* core_of(GreenletImpl* g) noexcept { return reinterpret_cast<GreenletCore*>(g); }
// Where a GreenletImpl keeps its run (a RunSlot, greenlet.h): the
// constructor templated on the callable fills it inline. Checked against
// the definition in greenlet.cpp.
inline constexpr std::size_t kRunSlotOffset = sizeof(GreenletCore) + sizeof(arch::Stack);
inline bool is_unstarted(GreenletImpl* g) noexcept { return (core_of(g)->key & kStatusMask) == kUnstarted; }
inline GreenletHead* head_of(GreenletImpl* g) noexcept { return reinterpret_cast<GreenletHead*>(g); }

// What a switch carries when not in registers; it lives on the sender's
// stack. The receiver move-constructs its result from *value (the one move
// of a switch) or rethrows *error.
struct Transfer {
  Value* value;
  std::exception_ptr* error;  // null: no error
};

// libstdc++ and libc++abi both lay out __cxa_eh_globals like this.
struct EhGlobals {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
};

// Trivially constructible and destructible, so that it can be read at any
// time (even from the overflow signal handler or after thread exit), and a
// `__thread` object that code inlined from headers reaches without a call.
inline constexpr std::uintptr_t kXferTransfer = 1;  // never a Value word (its ops pointer is null)
// Beside a register value's word (whose kValueDestroy and kValueRelocate bits
// are clear): landing_work is set. A Transfer's landing checks that itself.
inline constexpr std::uintptr_t kXferLanding = 2;
inline constexpr std::uintptr_t kXferSlow = kXferTransfer | kXferLanding;

struct ThreadState {
  std::uint64_t fast_key;  // see above; read first by every switch
  GreenletCore* current;
  EhGlobals* eh;
  std::uintptr_t xfer_word;  // the value a switch carries: see above
  bool landing_work;       // previous or zombie is set: the landing has work (see kXferLanding)
  // Thread-local destructors began while a greenlet other than main ran
  // (exit() or pthread_exit inside a greenlet): no switch happens any more.
  bool exiting;
  bool alive;              // between the first use and the thread's cleanup
  bool ended;              // the thread's cleanup ran: no new main greenlet
  // Never reused, unlike the address of a thread's state: a new thread may
  // get the address of one that exited, whose greenlets must stay foreign.
  std::uint64_t serial;
  GreenletImpl* main;
  GreenletImpl* previous;  // reference to drop after landing
  GreenletImpl* zombie;    // finished greenlet whose stack to release after landing
  Transfer ending;         // the finishing greenlet's transfer of its result
  // ... and the result itself, constructed by the finishing greenlet and
  // destroyed by bury_zombie once the landing moved it out (raw storage:
  // this struct stays trivially destructible).
  alignas(Value) unsigned char ending_value[sizeof(Value)];
  alignas(std::exception_ptr) unsigned char ending_error[sizeof(std::exception_ptr)];
  unsigned long next_id;
  std::size_t live;
  void* free_blocks;       // memory of destroyed greenlets, for new ones (a list)
  std::size_t free_room;   // blocks the list may still take (none before the state is made and after cleanup)
  unsigned sentinels;          // exit sentinels registered (see arm_exit_sentinel)
  unsigned long sentinel_mark; // next_id when the last one was registered
  unsigned long starts;        // greenlets started
  unsigned long sentinel_due;  // the next start that looks at the sentinels (0: the first)
  // The registry (debuggers and dump_greenlets read it): this thread's
  // greenlets, this thread in the process's list, its hub.
  GreenletHead* greenlets;
  ThreadState* reg_prev;
  ThreadState* reg_next;
  const void* hub;
  long tid;
  // The hub's hand-off for a greenlet that ends without an error: given the
  // greenlet its result would go to, the one to switch to instead (hub.cpp;
  // null without a hub). The result is dropped when it names another.
  GreenletImpl* (*end_handoff)(GreenletImpl* to) noexcept;
  // The hub's greenlet, which nothing but the hub's own teardown may throw
  // into (throw_in: InvalidSwitchError); null without a hub.
  const GreenletImpl* hub_greenlet;
  // Greenlet::set_trace (GL-24): while a trace is set, fast_key stays
  // kSlowKey, so every switch takes the general path, which notes its
  // origin (holding a reference) and leaves the landing work; the landing
  // calls the trace (call_trace) in the target. Costs the hot path nothing.
  bool tracing;
  bool trace_throw;          // the noted switch carries an error
  GreenletImpl* trace_origin;  // noted, not yet traced
#if FERN_FP_CHECKS
  std::uint64_t fp_found;  // FP control an FP-neutral greenlet found when it landed
#endif
};
extern __thread ThreadState t_state;

#if FERN_FP_CHECKS
// The FP-neutral greenlet running now landed (notes the FP control it found)
// or leaves (aborts with a message if that changed). greenlet.cpp.
void fp_neutral_landed() noexcept;
void fp_neutral_leaves(GreenletCore* g) noexcept;
#endif

// The stack switch between two greenlets whose bookkeeping is done: the
// FP-neutral entry for an FP-neutral `from`, its contract checked around it
// where FERN_FP_CHECKS is on.
[[gnu::always_inline]] inline void* switch_stacks(GreenletCore* from, GreenletCore* to, void* arg) noexcept {
#if FERN_FP_CHECKS
  if (from->fp_neutral) fp_neutral_leaves(from);
  void* landed = arch::switch_fiber(from->fiber, to->fiber, arg, false, from->fp_neutral);
  if (from->fp_neutral) fp_neutral_landed();
  return landed;
#else
  return arch::switch_fiber(from->fiber, to->fiber, arg, false, from->fp_neutral);
#endif
}

// The rare parts of a switch, out of line (greenlet.cpp). begin_slow: a
// switch the key does not admit but that needs only bookkeeping first (an
// unstarted target, which it starts or throws StackError; a running greenlet
// without references); it stores the switch's value word (xfer_word_for)
// and returns the greenlets to switch between, or nulls (storing nothing) and
// switch_general does the whole switch (checks, dead targets, errors,
// switching to oneself). land_after: the landing's work when landing_work is
// set. finish_transfer: the landing of a value or error in a Transfer.
struct SwitchPair {
  GreenletCore* from;
  GreenletCore* to;
};
SwitchPair begin_slow(GreenletImpl* target, std::uintptr_t word);
Value switch_general(GreenletImpl* target, Transfer* t);
Value switch_general_carrying(GreenletImpl* target, std::uintptr_t word, void* arg);
void land_after() noexcept;
Value finish_transfer(void* arg);
// Calls the thread's trace for the switch that landed here (noted by the
// general path): in the target, after the landing's work, as greenlet does.
// What the trace throws is thrown by the switch (tracing is then off).
void call_trace();
// call_trace, returning `arg` (so that it need not live across the call).
void* call_trace_passing(void* arg);
// Starts an unstarted greenlet of this thread that has a run (its stack
// taken, suspended at its entry) so that the hot path admits a switch to it;
// false, and nothing changes, for any other or when no stack can be had (a
// switch to it then reports that).
bool prepare_start(GreenletImpl* g) noexcept;

// The landing of a switch, inline for a value in registers. The landing's
// rare work may release the sender's stack: a Transfer is moved out first.
[[gnu::always_inline]] inline Value finish_switch(void* arg) {
  std::uintptr_t word = t_state.xfer_word;
  if (__builtin_expect((word & kXferSlow) != 0, 0)) {
    if (word == kXferTransfer) return finish_transfer(arg);
    land_after();
    word &= ~kXferLanding;
    // A register value needs no destruction if the trace throws.
    if (__builtin_expect(t_state.trace_origin != nullptr, 0)) arg = call_trace_passing(arg);
  }
  return ValueAccess::from_register(word, arg);
}

// The word a sender stores for a register value's: kXferLanding added when
// the switch's bookkeeping left the landing work.
[[gnu::always_inline]] inline std::uintptr_t xfer_word_for(std::uintptr_t word) noexcept {
  return word != kXferTransfer && t_state.landing_work ? word | kXferLanding : word;
}

// The whole switch from the running greenlet to `target`, carrying a value
// as `word` and `arg` (its two registers, or kXferTransfer and a Transfer*).
// Inline so that no return follows the stack switch before the caller's own:
// a return right after it would be mispredicted (the CPU's return stack holds
// the other side's addresses), ~4 ns a switch. Its fast path: the key and the
// exception state checked, two keys and `current` set, the value's word
// stored, the stack switch, the landing. switch_general_carrying is the
// whole switch for what begin_slow declines.
[[gnu::always_inline]] inline Value switch_carrying(GreenletImpl* target, std::uintptr_t word, void* arg) {
  // t_state by name, not through a reference: GCC 12's UBSan null check of
  // a reference to a __thread object tests stale flags (a false report).
  std::uint64_t key = t_state.fast_key;
  EhGlobals* eh = t_state.eh;
  SwitchPair f;
  if (__builtin_expect(target != nullptr && core_of(target)->key == key &&
                           (reinterpret_cast<std::uintptr_t>(eh->caught_exceptions) | eh->uncaught_exceptions) == 0,
                       1)) {
    GreenletCore* from = t_state.current;
    GreenletCore* to = core_of(target);
    from->key = key;  // suspended
    to->key = key | kRunning;
    t_state.current = to;
    t_state.xfer_word = word;
    f = {from, to};
  } else {
    f = begin_slow(target, word);  // stores the word, kXferLanding added when due
    if (!f.from) return switch_general_carrying(target, word, arg);
  }
  return finish_switch(switch_stacks(f.from, f.to, arg));
}

// A switch carrying a value in registers (its Value word and bits).
[[gnu::always_inline]] inline Value switch_word(GreenletImpl* target, std::uintptr_t word, void* bits) {
  return switch_carrying(target, word, bits);
}

[[gnu::always_inline]] inline Value switch_to_impl(GreenletImpl* target, Value&& value) {
  if (ValueAccess::is_register_value(value))
    return switch_word(target, ValueAccess::word(value), ValueAccess::bits(value));
  Transfer t{&value, nullptr};
  return switch_carrying(target, kXferTransfer, &t);
}

}  // namespace fern::detail
