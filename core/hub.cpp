// The hub's loop: callbacks -> timers -> fd events -> idle (SEMANTICS F4).
#include "fern/core/hub.h"

#include <cxxabi.h>
#include <pthread.h>
#include <unistd.h>

#include <cassert>
#include <cstdlib>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <stdexcept>

#include "fern/arch/stack.h"
#include "fern/arch/thread_id.h"

namespace fern {
namespace {

constexpr Nanos kSwitchInterval = 5'000'000;  // gevent's getswitchinterval(): 5 ms
constexpr int kMaxEvents = 256;
constexpr Nanos kRevalidateInterval = 1'000'000'000;  // an idle loop waiting on fds checks them this often


std::string demangled(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = status == 0 && d ? d : name;
  std::free(d);
  return out;
}

// Owns the thread's hub. When thread-local destructors run on a greenlet
// other than main (exit() or pthread_exit inside a task), the hub's loop and
// tasks can never be resumed: the hub is abandoned, not destroyed (its
// destructor would switch into them).
struct HubOwner {
  std::unique_ptr<Hub> hub;
  void reset(Hub* h = nullptr) { hub.reset(h); }
  ~HubOwner() {
    if (hub && !Greenlet::current().is_main()) (void)hub.release();
  }
};
thread_local HubOwner t_hub_owner;

}  // namespace

// ---- Waiter ----

void Waiter::wait() { Hub::current().park(*this); }

namespace {
// A parked greenlet is switched to from the hub only (HUB-10): from
// anywhere else the switch would strand the caller, which nothing switches
// back to. (No hub greenlet is named while the hub tears itself down.)
void refuse_outside_hub(const void* waiting) {
  const void* hub = detail::t_state.hub_greenlet;
  if (waiting && __builtin_expect(hub != nullptr && static_cast<const void*>(detail::t_state.current) != hub, 0))
    throw InvalidSwitchError("fern: Waiter::wake of a parked greenlet from outside the hub (gevent: \"Can only use "
                             "Waiter.switch method from the Hub greenlet\"); wake it from a hub callback "
                             "(Hub::run_callback)");
}
}  // namespace

// Runs in the hub. The switch returns when the woken greenlet blocks again;
// it throws only when the hub itself is being destroyed (GreenletExit).
void Waiter::wake() {
  if (ready_) return;  // one-shot: a second wake (a timer racing an event) is ignored
  refuse_outside_hub(waiting_);
  ready_ = true;
  // Cleared first: the woken greenlet may destroy this Waiter before the
  // switch returns here.
  if (detail::GreenletImpl* g = std::exchange(waiting_, nullptr)) detail::switch_word(g, 0, nullptr);
}

void Waiter::wake_error(std::exception_ptr error) {
  if (ready_) return;
  refuse_outside_hub(waiting_);
  error_ = std::move(error);
  wake();
}

// ---- Hub ----

namespace {

// The deadline of one park: wakes the waiter when it passes.
struct Expiry : Timer {
  Waiter* waiter;
  bool fired = false;
  explicit Expiry(Waiter& w) : waiter(&w) {
    fn = [](Timer* t) {
      auto* self = static_cast<Expiry*>(t);
      self->fired = true;
      self->waiter->wake();
    };
  }
};

std::once_flag g_atfork_once;

// Every hub's LoopMonitor, for watchdog threads.
struct MonitorList {
  std::mutex mutex;
  detail::LoopMonitor* head = nullptr;
};
MonitorList g_monitors;

void add_monitor(detail::LoopMonitor* m) {
  m->thread = static_cast<unsigned long>(pthread_self());
  m->tid = arch::thread_id();
  std::lock_guard<std::mutex> lock(g_monitors.mutex);
  m->next = g_monitors.head;
  if (m->next) m->next->prev = m;
  g_monitors.head = m;
}

void remove_monitor(detail::LoopMonitor* m) noexcept {
  std::lock_guard<std::mutex> lock(g_monitors.mutex);
  if (m->prev) m->prev->next = m->next;
  else g_monitors.head = m->next;
  if (m->next) m->next->prev = m->prev;
  m->prev = m->next = nullptr;
}

}  // namespace

void detail::for_each_monitor(void (*fn)(LoopMonitor&, void*), void* ctx) {
  std::lock_guard<std::mutex> lock(g_monitors.mutex);
  for (LoopMonitor* m = g_monitors.head; m; m = m->next) fn(*m, ctx);
}

// park woken already, or with a deadline: under a timer. (Without one, the
// inline park arms no timer at all, so the hub can tell when nothing will
// wake the caller: LoopExit.)
bool Hub::park_timed(Waiter& w, Deadline deadline, const char* what, const void* object) {
  if (w.ready_) {
    consume(w);
    return true;
  }
  detail::GreenletImpl* me = checked_current();
  ParkSite site(me, what, object);
  Expiry timer(w);  // disarmed by its destructor on every exit
  start_timer(&timer, deadline);
  suspend(w, me);
  consume(w);
  return !timer.fired;
}

void ResumeNode::fire(Callback* cb) {
  Hub::enter_hand_off();
  static_cast<ResumeNode*>(cb)->waiter->wake();
}
void YieldNode::fire(Callback* cb) {
  Hub::enter_hand_off();
  static_cast<YieldNode*>(cb)->waiter.wake();
}

// The switch returns when the greenlet blocks or ends (or hands off: then
// when whatever runs last in the batch switches back to the hub).
void StartNode::fire(Callback* cb) {
  Hub::enter_hand_off();
  auto* self = static_cast<StartNode*>(cb);
  detail::GreenletImpl* g = self->greenlet;
  try {
    detail::switch_word(g, 0, nullptr);
  } catch (const arch::StackError&) {
    if (!self->failed || !detail::is_unstarted(g)) throw;
    self->failed(self, std::current_exception());
  }
}

void RoundNode::fire(Callback* cb) {
  Hub::enter_hand_off();
  auto* self = static_cast<RoundNode*>(cb);
  if (Waiter* w = self->next()) {
    Hub::current().schedule_first(self);  // the round goes on when w's greenlet blocks
    w->wake();
    return;
  }
  self->finish_round();
}

void RoundNode::finish_round() {
  active = false;
  again = false;
  if (!finish) return;
  bool owner_gone = false;
  gone = &owner_gone;
  finish(owner, owner_gone);
  if (owner_gone) return;
  gone = nullptr;
  if (again) Hub::current().schedule(this);
}

// With many greenlets yielding in turn, what a hand-off reads is mostly
// outside L1: the node at the head (on its greenlet's stack, above the
// frames the switch pops) and that greenlet's key. Each hand-off fetches for
// the next one, without waiting for memory itself: the node after the head
// (its address is in the head, which the hand-off before fetched), and for
// the head, its greenlet's key and the stack below its node. A short queue
// stays in L1 and skips it. Inline: GCC finds a function that only
// prefetches free of effects and drops its call.
[[gnu::always_inline]] inline void Hub::prefetch_ahead() noexcept {
  if (callbacks_.size() < 16) return;
  auto* head = static_cast<const Callback*>(callbacks_.front());
  if (const detail::Hook* after = detail::HookList::next(head)) __builtin_prefetch(after);
  if (head->fn != &YieldNode::fire) return;
  auto* node = reinterpret_cast<const char*>(head);
  __builtin_prefetch(node - 64);
  __builtin_prefetch(node - 128);
  if (detail::GreenletImpl* g = static_cast<const YieldNode*>(head)->waiter.waiting_)
    __builtin_prefetch(&detail::core_of(g)->key);
}

// next_to_run's first case, as a leaf function (no registers to save): a
// yield's node at the head of a batch that goes on without a clock read.
detail::GreenletImpl* Hub::next_to_run_yield() noexcept {
  if (hand_off_ && ((batch_ran_ + 1) & 63) != 0) {
    auto* head = static_cast<Callback*>(callbacks_.front());
    if (head && head->fn == &YieldNode::fire) {
      Waiter& w = static_cast<YieldNode*>(head)->waiter;
      detail::GreenletImpl* target = w.waiting_;
      if (__builtin_expect(!w.ready_ && target != nullptr, 1)) {
        ++batch_ran_;
        callbacks_.remove_front();
        w.ready_ = true;
        w.waiting_ = nullptr;
        prefetch_ahead();
        return target;
      }
    }
  }
  return next_to_run();
}

// The greenlet a parking (or ending) greenlet switches to. When the hub is
// suspended in a node that has nothing left to do after its switch (a
// resume node, one step of a round, a start), and the head of the batch is
// one of those, the parking greenlet does what the hub would do next, here,
// and the switch goes straight to the greenlet it wakes or starts; it may be
// the caller itself (a yield with nothing queued before it), which then
// returns at once, as the hub would have resumed it at once. Anything else
// goes through the hub.
[[gnu::always_inline]] inline detail::GreenletImpl* Hub::pick_next() noexcept {
  while (hand_off_) {
    auto* head = static_cast<Callback*>(callbacks_.front());
    if (!head) break;
    // Only a node run from here counts towards the batch (F6). The kinds in
    // the order they are usually found: a primitive's round, a resume, a
    // task's start, a yield's resume (a yield finds that one in
    // next_to_run_yield first).
    Waiter* w;
    if (head->fn == &RoundNode::fire) {
      if (!batch_continues() && !static_cast<RoundNode*>(head)->active) break;  // see run_callbacks
      // The round stays at the head: the greenlet woken now blocks before
      // the round goes on.
      auto* round = static_cast<RoundNode*>(head);
      w = round->next();
      if (!w) {
        if (round->finish_switches && round->finish_switches(round->owner)) break;  // in the hub
        assert(callbacks_.front() == round && "a step queued something before its round");
        callbacks_.remove_front();
        round->finish_round();
        continue;
      }
    } else if (head->fn == &ResumeNode::fire) {
      if (!batch_continues()) break;
      callbacks_.remove_front();
      w = static_cast<ResumeNode*>(head)->waiter;
    } else if (head->fn == &StartNode::fire) {
      if (!batch_continues()) break;
      detail::GreenletImpl* g = static_cast<StartNode*>(head)->greenlet;
      if (!detail::prepare_start(g)) break;  // the hub's own switch reports why
      callbacks_.remove_front();
      return g;
    } else if (head->fn == &YieldNode::fire) {
      if (!batch_continues()) break;
      callbacks_.remove_front();
      w = &static_cast<YieldNode*>(head)->waiter;
    } else {
      break;
    }
    detail::GreenletImpl* target = w->waiting_;
    if (w->ready_ || !target) continue;  // nothing to resume: the hub would do nothing either
    w->ready_ = true;
    w->waiting_ = nullptr;
    return target;  // may be the caller: a yield with nothing queued before it
  }
  return hub_impl_;
}

detail::GreenletImpl* Hub::next_to_run() noexcept { return pick_next(); }

// A task that ends usually finds the next task's start at the head (a batch
// of spawns): that case takes two saved registers and no loop; any other
// goes to next_to_run (a tail call), which would do the same for it.
detail::GreenletImpl* Hub::next_at_end(detail::GreenletImpl* to) noexcept {
  Hub* hub = t_current_;
  if (!hub || to != hub->hub_impl_) return to;
  if (hub->hand_off_ && !hub->batch_cut_ && ((hub->batch_ran_ + 1) & 63) != 0) {
    auto* head = static_cast<Callback*>(hub->callbacks_.front());
    detail::GreenletImpl* g;
    if (head && head->fn == &StartNode::fire && detail::prepare_start(g = static_cast<StartNode*>(head)->greenlet)) {
      ++hub->batch_ran_;  // as batch_continues counts it
      hub->callbacks_.remove_front();
      return g;
    }
  }
  return hub->next_to_run();
}

void Hub::throw_invalid_switch() {
  throw InvalidSwitchError("fern: invalid switch into a greenlet waiting in the hub");
}

// F6: the batch is cut after the switch interval so timers get their turn;
// the clock is read once every 64 callbacks.
bool Hub::batch_continues() noexcept {
  if (batch_cut_) return false;
  if ((++batch_ran_ & 63) != 0) return true;
  Nanos t = monotonic_now();
  if (batch_start_ == 0) batch_start_ = t;
  else if (t - batch_start_ > kSwitchInterval) {
    batch_cut_ = true;
    hand_off_ = false;
  }
  return !batch_cut_;
}

Hub& Hub::create_current() {
  // Build the hub (and with it the thread's greenlet state) before the
  // owner is first touched: thread_locals die in reverse order of first
  // use, and the hub must go before the greenlet state it needs.
  Hub* hub = new Hub;
  t_hub_owner.reset(hub);
  t_current_ = hub;
  return *hub;
}

void Hub::destroy_current() {
  Hub* hub = t_current_;
  if (!hub) return;
  // From inside the hub or one of its tasks the loop we would unwind is
  // our own caller: refuse clearly instead of leaving a broken thread.
  for (Greenlet g = Greenlet::current(); g; g = g.parent()) {
    if (g == hub->greenlet_)
      throw std::logic_error("fern: Hub::destroy_current() called from inside the hub or one of its tasks; "
                             "call it from the thread's main greenlet");
  }
  t_hub_owner.reset();
}

void Hub::run_callback(std::function<void()> fn) {
  if (!fn) throw std::invalid_argument("fern: run_callback(nullptr): no function to call");
  struct Owned : Callback {
    std::function<void()> fn;
  };
  auto* node = new Owned;
  node->fn = std::move(fn);
  static_cast<Callback*>(node)->fn = [](Callback* cb) {
    std::unique_ptr<Owned> self(static_cast<Owned*>(cb));
    detail::run_guarded("a callback", [&] { self->fn(); });  // HUB-8: the loop goes on
  };
  schedule(node);
}

Hub::Hub() : poller_(Poller::create()), remote_(std::make_shared<RemoteQueue>()) {
  fd_table_.hub = this;
  fd_table_.detach = &Hub::detach_watcher;
  Greenlet main = Greenlet::current();
  while (main.parent()) main = main.parent();
  greenlet_ = Greenlet([this] { loop(); }, main);
  hub_impl_ = detail::impl_of(greenlet_);
  now_ = monotonic_now();
  watch_wakeup();
  detail::note_thread_hub(this, &Hub::next_at_end, hub_impl_);
  add_monitor(&monitor_);
  // A child of fork() must not share the parent's epoll set or wake-up fd:
  // the forking thread's hub is renewed in the child before fork returns.
  std::call_once(g_atfork_once, [] {
    pthread_atfork(nullptr, nullptr, [] {
      if (t_current_) t_current_->reinit_after_fork();
    });
  });
}

void Hub::add_exit_hook(ExitHook* h) noexcept { exit_hooks_.push_back(h); }

Hub::~Hub() {
  // Let queued callbacks (links of tasks that just ended, among others) run:
  // yield through the queue until it is empty. Also when the loop never ran
  // (the first yield starts it): a spawned task and a run_callback's node
  // are held by the queue, and would otherwise be lost with it.
  if ((greenlet_.active() || (!greenlet_.started() && !callbacks_.empty())) && !in_hub()) {
    for (int rounds = 0; !callbacks_.empty() && rounds < 64; ++rounds) {
      Waiter waiter;
      ResumeNode y;
      y.waiter = &waiter;
      schedule(&y);
      try {
        waiter.wait();
      } catch (...) {
        break;
      }
    }
  }
  // Tasks still suspended: unwind them, so their stacks release what they
  // hold (each hook leaves the list when its task ends).
  while (auto* h = static_cast<ExitHook*>(exit_hooks_.pop_front())) {
    try {
      h->fn(h);
    } catch (...) {
    }
  }
  if (greenlet_.active() && !in_hub()) {
    detail::note_thread_hub(this, &Hub::next_at_end);  // only this may throw into it
    try {
      greenlet_.throw_in();  // unwinds the suspended loop
    } catch (...) {
    }
  }
  // Timers still armed will never fire: owners that keep themselves alive
  // for their timer (a dropped Timeout) are told.
  while (auto* t = static_cast<Timer*>(timers_.top())) {
    t->unlink();
    if (t->orphan) t->orphan(t);
  }
  wake_watcher_.unlink();
  remote_->close_door();
  remove_monitor(&monitor_);
  detail::note_thread_hub(nullptr);
  t_current_ = nullptr;
  // Dropping greenlet_ kills the suspended loop (GreenletExit unwinds it).
}

bool Hub::in_hub() const noexcept { return detail::current_impl() == hub_impl_; }

void Hub::schedule_idle(Callback* cb) noexcept { idle_.push_back(cb); }

void Hub::start_timer(Timer* t, Deadline deadline) {
  t->deadline = deadline.nanos();
  timers_.push(t);
}

bool Hub::has_work() const noexcept {
  return !callbacks_.empty() || !idle_.empty() || timers_.ref_count() || ref_fds_ ||
         remote_->pending_.load(std::memory_order_acquire);
}

// The hub greenlet's body. When nothing can wake anyone, LoopExit goes to
// the main greenlet; if main blocks again later, the loop carries on.
void Hub::loop() {
  Greenlet main = greenlet_.parent();
  for (;;) {
    monitor_.set_idle(false);
    while (has_work()) {
      monitor_.tick();
      run_callbacks();
      run_timers();
      // Block in the poller only while something referenced can still fire.
      poll_io(callbacks_.empty() && idle_.empty() && (timers_.ref_count() || ref_fds_));
      if (callbacks_.empty()) run_idle();
    }
    monitor_.set_idle(true);  // out of the loop: whatever main does blocks no one
    main.throw_in(std::make_exception_ptr(LoopExit()));
  }
}

void Hub::run_callbacks() {
  batch_start_ = 0;
  batch_ran_ = 0;
  batch_cut_ = false;
  struct End {
    Hub& hub;
    ~End() { hub.hand_off_ = hub.in_batch_ = false; }
  } end{*this};
  in_batch_ = true;
  Nanos start = batch_timing_ && !callbacks_.empty() ? monotonic_now() : 0;
  while (auto* cb = static_cast<Callback*>(callbacks_.front())) {
    // The cut falls between callbacks: a wake-up round already begun goes on
    // to its end (gevent wakes a primitive's waiters in one callback), so
    // none of its waiters sees a timer that came due meanwhile first.
    if (!batch_continues() && !(cb->fn == &RoundNode::fire && static_cast<RoundNode*>(cb)->active)) break;
    callbacks_.remove_front();
    hand_off_ = false;  // the four kinds that hand off set it (enter_hand_off)
    detail::run_guarded("a callback", [cb] { cb->fn(cb); });
  }
  // batch_ran_ counts the callbacks and the hand-offs between greenlets.
  stats_.callbacks += batch_ran_;
  if (start != 0) {
    Nanos took = monotonic_now() - start;
    if (took > stats_.max_batch) stats_.max_batch = took;
  }
}

void Hub::run_timers() {
  Nanos now = update_now();
  // Fire at most the timers queued now: one re-armed for "now" waits a turn.
  for (std::size_t budget = timers_.size(); budget; --budget) {
    auto* t = static_cast<Timer*>(timers_.pop_expired(now));
    if (!t) break;
    ++stats_.timers;
    detail::run_guarded("a timer", [t] { t->fn(t); });
  }
}

void Hub::poll_io(bool block) {
  Nanos timeout = 0;
  bool revalidate = false;
  if (block) {
    TimerNode* next = timers_.top();
    Nanos left = next ? Deadline::at(next->deadline).remaining(monotonic_now()) : Deadline::kNever;
    timeout = left == Deadline::kNever ? -1 : left;
    // Waiting on fds with nothing else due soon: wake once a second to find
    // fds closed behind fern's back (epoll forgets them silently, and their
    // waiters would wait for ever).
    if (ref_fds_ && (timeout < 0 || timeout > kRevalidateInterval)) {
      timeout = kRevalidateInterval;
      revalidate = true;
    }
  }
  PollEvent events[kMaxEvents];
  if (block) monitor_.set_idle(true);  // waiting is not blocking
  int n = poller_->wait(timeout, events, kMaxEvents);
  if (block) monitor_.set_idle(false);
  if (n == 0 && revalidate) revalidate_fds();
  if (n > 0) update_now();
  // A watcher that starts while this batch runs (a woken greenlet that
  // found nothing and waits again: fns switch into greenlets) is appended
  // to its fd's list and left for the next batch, which (level-triggered)
  // reports the fd again if it is still ready. Called in this one, two such
  // greenlets would wake each other for ever on a readiness already used up.
  if (n > 0) ++fd_batch_;
  for (int i = 0; i < n; ++i) {
    const PollEvent& ev = events[i];
    for (unsigned direction : {unsigned{kReadable}, unsigned{kWritable}}) {
      if (!(ev.ready & direction) || !poller_->is_current(ev)) continue;
      FdSlot& slot = fds_[static_cast<std::size_t>(ev.fd)];
      IoWatcher* w = direction == kReadable ? slot.reader : slot.writer;
      if (!w) {
        drop_unwatched(ev.fd, direction);  // a sticky interest nobody waits on now
        continue;
      }
      // Each watcher, first to last; one that leaves meanwhile moves the
      // cursor on (unwatch), so a fn may end any watcher, or the fd.
      do {
        if (w->batch == fd_batch_) break;  // started during this batch, and so is every later one
        fd_cursor_ = static_cast<IoWatcher*>(detail::HookAccess::next(w));
        ++stats_.fd_events;
        detail::run_guarded("an fd watcher", [w, &ev] { w->fn(w, ev.ready); });
        w = fd_cursor_;
      } while (w);
    }
  }
}

// The batch is moved to a list of its own: a node whose owner goes while
// the batch runs (a waiter killed by an earlier idle callback) leaves it.
void Hub::run_idle() {
  detail::HookList batch;
  batch.splice_back(idle_);
  while (auto* cb = static_cast<Callback*>(batch.pop_front())) {
    detail::run_guarded("an idle callback", [cb] { cb->fn(cb); });
  }
}

bool Hub::run_until_idle(Deadline deadline) {
  if (in_hub()) throw BlockingSwitchOutError();
  if (Greenlet::current() != greenlet_.parent()) throw MainGreenletOnlyError();
  struct Stop : Timer {
    Greenlet waiter;
    bool expired = false;
  } stop;
  if (!deadline.is_never()) {
    stop.set_ref(false);  // the deadline itself is no reason to keep running
    stop.waiter = Greenlet::current();
    stop.fn = [](Timer* t) {
      auto* d = static_cast<Stop*>(t);
      d->expired = true;
      d->waiter.switch_to();
    };
    start_timer(&stop, deadline);
  }
  try {
    detail::switch_word(hub_impl_, 0, nullptr);
  } catch (const LoopExit&) {
  }
  return !stop.expired;
}

void Hub::raise_in_main(std::exception_ptr error) {
  if (in_hub()) {
    Greenlet main = greenlet_.parent();
    main.throw_in(std::move(error));  // returns when main blocks again
    return;
  }
  run_callback([this, error] { raise_in_main(error); });
}

void Hub::report_error(const std::string& context, std::exception_ptr error) noexcept {
  std::string type = "unknown exception", what;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    type = demangled(typeid(e).name());
    what = e.what();
  } catch (const GreenletExit&) {
    type = "fern::GreenletExit";
  } catch (...) {
    if (const std::type_info* t = abi::__cxa_current_exception_type()) type = demangled(t->name());
  }
  char stamp[32] = "";
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  if (gmtime_r(&now, &tm)) std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::fprintf(stderr, "%s: %s\n%s %s failed with %s\n\n", type.c_str(), what.c_str(), stamp,
               context.c_str(), type.c_str());
}

}  // namespace fern
