// Greenlet trees on top of arch::switch_fiber.
//
// Invariants:
// - ThreadState::current holds one reference to the running greenlet. A
//   switch hands that reference to the target and leaves the old one in
//   `previous`; the side that lands drops it (it may be the last one, which
//   kills a suspended greenlet: never do that before the landing is complete).
// - A finishing greenlet cannot free the stack it runs on: it parks itself in
//   `zombie` and the side that lands returns the stack to the pool.
// - A Transfer lives on the sender's stack; the receiver moves it out before
//   anything else, since the sender's stack may be released right after.
#include "fern/core/greenlet.h"

#include <cxxabi.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "fern/arch/fiber.h"

namespace fern {
namespace detail {
namespace {

// libstdc++ and libc++abi both lay out __cxa_eh_globals like this.
struct EhGlobals {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
};

struct Transfer {
  std::any value;
  std::exception_ptr error;
};

enum class State : unsigned char { kUnstarted, kActive, kDead };

}  // namespace

class GreenletImpl {
 public:
  arch::Fiber fiber;
  arch::Stack stack;
  Greenlet::Run run;
  GreenletImpl* parent = nullptr;  // holds a reference
  struct ThreadState* thread = nullptr;
  EhGlobals eh{nullptr, 0};
  unsigned long id = 0;
  std::size_t requested_stack = 0;
  unsigned refs = 1;
  State state = State::kUnstarted;
  bool is_main = false;

  static void entry(void* arg, void* data);
};

// Trivially constructible and destructible, so that it can be read at any
// time (even from the overflow signal handler or after thread exit).
struct ThreadState {
  GreenletImpl* current;
  GreenletImpl* main;
  GreenletImpl* previous;  // reference to drop after landing
  GreenletImpl* zombie;    // finished greenlet whose stack to release after landing
  EhGlobals* eh;
  unsigned long next_id;
  std::size_t live;
  bool alive;              // between the first use and the thread's cleanup
  bool ended;              // the thread's cleanup ran: no new main greenlet
};

namespace {

thread_local ThreadState t_state;

void retain(GreenletImpl* g) noexcept { ++g->refs; }
void release(GreenletImpl* g) noexcept;

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
  }
};

ThreadState& state() {
  ThreadState& ts = t_state;
  if (__builtin_expect(ts.main == nullptr, 0)) {
    if (ts.ended) throw GreenletError("fern: greenlets used after their thread's cleanup");
    thread_local ThreadCleanup cleanup;
    (void)cleanup;
    auto* main = new GreenletImpl;
    main->thread = &ts;
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
    arch::install_overflow_reporter(&describe_current);
  }
  return ts;
}

bool is_greenlet_exit(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const GreenletExit&) {
    return true;
  } catch (...) {
    return false;
  }
}

// Work the landing side does for the switch that brought it here.
void after_landing(ThreadState& ts) noexcept {
  if (GreenletImpl* z = ts.zombie) {
    ts.zombie = nullptr;
    arch::fiber_retire(z->fiber);
    arch::release_stack(z->stack);
    z->stack = {};
  }
  if (GreenletImpl* p = ts.previous) {
    ts.previous = nullptr;
    release(p);
  }
}

// Takes the sender's transfer (it lives on the sender's stack, which may be
// released by after_landing) and finishes the landing.
std::any receive(ThreadState& ts, void* arg) {
  auto* in = static_cast<Transfer*>(arg);
  std::exception_ptr error = std::move(in->error);
  std::any value = std::move(in->value);
  after_landing(ts);
  if (__builtin_expect(error != nullptr, 0)) std::rethrow_exception(std::move(error));
  return value;
}

// The one place that switches stacks. `ending`: the caller never resumes.
void* transfer(ThreadState& ts, GreenletImpl* target, Transfer* out, bool ending) noexcept {
  GreenletImpl* from = ts.current;
  from->eh = *ts.eh;  // per-greenlet C++ exception state (GL-21, GL-22)
  *ts.eh = target->eh;
  retain(target);
  ts.current = target;
  ts.previous = from;
  return arch::switch_fiber(from->fiber, target->fiber, out, ending);
}

void start(GreenletImpl* g) {
  g->stack = arch::allocate_stack(g->requested_stack);
  arch::fiber_start(g->fiber, g->stack, &GreenletImpl::entry, g);
  g->state = State::kActive;
}

// Where a switch or a finished greenlet's result goes: the first live
// ancestor (GL-8); an unstarted one is started with the value (GL-9) or, for
// an error, dies without running and passes it on (GL-11). Returns nullptr
// when the resolved target is `self_ok` (the caller itself).
GreenletImpl* resolve(GreenletImpl* target, Transfer& t) {
  for (;;) {
    if (target->state == State::kDead) {
      target = target->parent;
      continue;
    }
    if (target->state == State::kActive) return target;
    if (t.error) {
      target->state = State::kDead;
      target->run = nullptr;
      if (is_greenlet_exit(t.error)) {
        t.value = std::any(GreenletExit());
        t.error = nullptr;
      }
      target = target->parent;
      continue;
    }
    if (!target->run) {
      throw GreenletError("fern: cannot switch to a greenlet without a run function");
    }
    start(target);
    return target;
  }
}

std::any switch_into(GreenletImpl* target, Transfer* t) {
  ThreadState& ts = state();
  if (__builtin_expect(target->thread != &ts, 0))
    throw CrossThreadError("fern: cannot switch to a greenlet of a different thread");
  if (__builtin_expect(target->state != State::kActive, 0)) target = resolve(target, *t);
  if (__builtin_expect(target == ts.current, 0)) {
    if (t->error) std::rethrow_exception(std::move(t->error));
    return std::move(t->value);
  }
  return receive(ts, transfer(ts, target, t, false));
}

// Kills a suspended greenlet whose last handle went away (GL-19): it unwinds
// and returns to the current greenlet. Anything but GreenletExit that it
// raises is reported, not propagated ("unraisable").
void kill_on_release(GreenletImpl* g) noexcept {
  ThreadState& ts = t_state;
  g->refs = 1;  // alive again while it unwinds
  GreenletImpl* old_parent = g->parent;
  g->parent = ts.current;
  retain(ts.current);
  release(old_parent);
  try {
    Transfer t{{}, std::make_exception_ptr(GreenletExit())};
    switch_into(g, &t);
  } catch (const GreenletError& e) {
    std::fprintf(stderr, "fern: while killing greenlet #%lu: %s\n", g->id, e.what());
  } catch (...) {
    std::fprintf(stderr, "fern: greenlet #%lu raised an exception while being killed; ignored\n", g->id);
  }
}

void destroy(GreenletImpl* g) noexcept {
  if (g->state == State::kActive && !g->is_main) {
    if (!t_state.alive || g->thread != &t_state) {
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
  if (g->stack) {
    arch::fiber_retire(g->fiber);
    arch::release_stack(g->stack);
  }
  if (g->parent) release(g->parent);
  if (g->thread && g->thread == &t_state) --t_state.live;
  delete g;
}

void release(GreenletImpl* g) noexcept {
  if (--g->refs == 0) destroy(g);
}

}  // namespace

void GreenletImpl::entry(void* arg, void* data) {
  auto* self = static_cast<GreenletImpl*>(data);
  arch::fiber_after_switch(self->fiber);
  ThreadState& ts = t_state;
  Transfer out;
  {
    std::any first = receive(ts, arg);  // a fresh greenlet never receives an error
    Greenlet::Run run = std::move(self->run);  // a started greenlet has no run (GL-16)
    self->run = nullptr;
    try {
      out.value = run(std::move(first));
    } catch (const GreenletExit& e) {
      out.value = std::any(e);  // GL-7: a kill is a result, not an error
    } catch (...) {
      out.error = std::current_exception();  // GL-6: rethrown in the parent
    }
  }
  self->state = State::kDead;
  GreenletImpl* target;
  for (;;) {
    try {
      target = resolve(self->parent, out);
      break;
    } catch (...) {
      // An unstarted ancestor without run: it dies; the error goes further up.
      out.error = std::current_exception();
    }
  }
  ts.zombie = self;
  transfer(ts, target, &out, true);
  std::fputs("fern: a finished greenlet was resumed\n", stderr);
  std::abort();
}

}  // namespace detail

using detail::GreenletImpl;
using detail::State;

Greenlet::Greenlet(Run run, const Greenlet& parent, std::size_t stack_size, int) {
  detail::ThreadState& ts = detail::state();
  GreenletImpl* p = parent.impl_ ? parent.impl_ : ts.current;
  if (p->thread != &ts) throw CrossThreadError("fern: parent cannot be on a different thread");
  impl_ = new GreenletImpl;
  impl_->run = std::move(run);
  impl_->parent = p;
  detail::retain(p);
  impl_->thread = &ts;
  impl_->id = ts.next_id++;
  impl_->requested_stack = stack_size;
  ++ts.live;
}

namespace detail {
namespace {
// A handle on the greenlet's own stack is a weak self-reference.
bool counts(const void* where, const GreenletImpl* g) noexcept {
  auto at = reinterpret_cast<std::uintptr_t>(where);
  auto base = reinterpret_cast<std::uintptr_t>(g->stack.base);
  return at - base >= g->stack.size;
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

GreenletImpl& Greenlet::checked() const {
  if (!impl_) throw GreenletError("fern: empty Greenlet handle");
  return *impl_;
}

std::any Greenlet::switch_value(std::any value) {
  detail::Transfer t{std::move(value), nullptr};
  return detail::switch_into(&checked(), &t);
}

std::any Greenlet::throw_in(std::exception_ptr error) {
  if (!error) throw GreenletError("fern: throw_in needs an exception");
  detail::Transfer t{{}, std::move(error)};
  return detail::switch_into(&checked(), &t);
}

bool Greenlet::started() const noexcept { return impl_ && impl_->state != State::kUnstarted; }
bool Greenlet::active() const noexcept { return impl_ && impl_->state == State::kActive; }
bool Greenlet::dead() const noexcept { return impl_ && impl_->state == State::kDead; }
bool Greenlet::is_main() const noexcept { return impl_ && impl_->is_main; }
unsigned long Greenlet::id() const noexcept { return impl_ ? impl_->id : 0; }
std::size_t Greenlet::stack_size() const noexcept { return impl_ ? impl_->stack.size : 0; }

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

std::size_t Greenlet::live_count() noexcept { return detail::t_state.live; }

}  // namespace fern
