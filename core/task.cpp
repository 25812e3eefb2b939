// Tasks (gevent's Greenlet), joinall/killall, sleep and idle.
#include "fern/core/task.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <stdexcept>

#include "fern/core/timeout.h"

namespace fern {
namespace {

// The minimal_idents in use on this thread, a bit each (gevent's
// IdentRegistry): a task asked for its ident takes the smallest free one, a
// destroyed task gives its back, so idents (and "Greenlet-N" names) stay
// small and are reused, as gevent's are. Taking one may grow the bitmap;
// giving one back never allocates. Idents start at 1 (0: none given yet).
//
// The bits are a trivially destructible `__thread` object, readable at any
// time; a separate thread_local frees them at the thread's end and marks
// them gone (stores into a live object: a destructor's stores into its own
// dying members may be dropped by the compiler). A task destroyed later (by
// the hub's own teardown, or held in a static) then gives nothing back, and
// one asked for its ident then gets one past every bitmap, never reused.
struct IdentBits {
  std::uint64_t* words;
  std::size_t size;
  std::size_t first_free;  // every word below it is full
  bool gone;               // this thread's thread_locals are destroyed
  unsigned long late;      // idents handed out once gone
};
__thread IdentBits t_ident_bits;

struct IdentBitsOwner {
  IdentBitsOwner() = default;
  IdentBitsOwner(const IdentBitsOwner&) = delete;
  IdentBitsOwner& operator=(const IdentBitsOwner&) = delete;
  ~IdentBitsOwner() {
    IdentBits& b = t_ident_bits;
    delete[] b.words;
    b.words = nullptr;
    b.size = b.first_free = 0;
    b.gone = true;
  }
};
thread_local IdentBitsOwner t_ident_owner;

unsigned long mark_ident(IdentBits& b, std::size_t word, int bit) noexcept {
  b.words[word] |= std::uint64_t{1} << bit;
  b.first_free = word;
  return static_cast<unsigned long>(word * 64 + static_cast<std::size_t>(bit) + 1);
}

unsigned long take_ident() {
  IdentBits& b = t_ident_bits;
  if (b.gone) return (std::numeric_limits<unsigned long>::max() >> 1) + ++b.late;
  for (std::size_t i = b.first_free; i < b.size; ++i) {
    if (~b.words[i] != 0) return mark_ident(b, i, __builtin_ctzll(~b.words[i]));
  }
  [[maybe_unused]] IdentBitsOwner* volatile owner = &t_ident_owner;  // made (its destructor registered) now
  const std::size_t size = b.size ? b.size * 2 : 1;
  auto* words = new std::uint64_t[size]();
  std::copy(b.words, b.words + b.size, words);
  delete[] b.words;
  b.words = words;
  b.first_free = b.size;
  b.size = size;
  return mark_ident(b, b.first_free, 0);
}

void give_back_ident(unsigned long ident) noexcept {
  IdentBits& b = t_ident_bits;
  const std::size_t bit = ident - 1, word = bit / 64;
  if (word >= b.size) return;  // gone, or handed out once gone
  b.words[word] &= ~(std::uint64_t{1} << (bit % 64));
  if (word < b.first_free) b.first_free = word;
}


// A link made by link(fn): owns fn; the task deletes it once fired or unlinked.
struct OwnedLink : detail::TaskLink {
  TaskBase::LinkFn fn;
  TaskBase::LinkId id;
  int when;  // 0 always, 1 on success, 2 on failure
  static void on_end(detail::TaskLink* self, TaskBase& task);
};

// Delivers one kill: queued by kill(), runs in the hub (gevent's _kill).
struct KillCallback : Callback {
  AnyTask task;
  std::exception_ptr error;
};

}  // namespace

struct TaskAccess {
  // The first switch allocates the stack: when that fails the task ends
  // failed with the StackError, reported once (GV-3), instead of staying
  // started forever.
  static void start_failed(StartNode* node, std::exception_ptr error) {
    static_cast<TaskBase::TaskCallback*>(node)->task->finish(std::move(error), false);
  }
  static void start_timer(Timer* t) { StartNode::fire(&static_cast<TaskBase::TaskTimer*>(t)->task->node_); }
  // The hub is going away: every task suspended now (found in the thread's
  // greenlet registry, whose greenlets name their task) is unwound, the
  // oldest first.
  static void unwind_suspended(Callback*) {
    std::vector<AnyTask> suspended;
    detail::for_each_greenlet(
        [](const detail::GreenletView& v, void* out) {
          if (v.state == detail::GreenletView::kSuspended && v.head->task)
            static_cast<std::vector<AnyTask>*>(out)->push_back(
                AnyTask(const_cast<TaskBase*>(static_cast<const TaskBase*>(v.head->task))));
        },
        &suspended);
    for (auto it = suspended.rbegin(); it != suspended.rend(); ++it) at_hub_exit(**it);
  }
  static void at_hub_exit(TaskBase& task) {
    AnyTask keep(&task);
    if (!task.greenlet_.active()) return;
    task.greenlet_.set_parent(Greenlet::current());  // end back here, not in the hub's loop
    task.greenlet_.throw_in();
    // Its links would run in a loop that is going away: drop them and the
    // hub's reference with them.
    task.node_.unlink();  // the links callback finish() queued
    task.drop_links();
    task.hub_drop();
  }
  static void links(Callback* cb) { static_cast<TaskBase::TaskCallback*>(cb)->task->run_links(); }
  static void kill(Callback* cb) {
    std::unique_ptr<KillCallback> k(static_cast<KillCallback*>(cb));
    TaskBase& task = *k->task;
    if (task.dead_ || !task.greenlet_.active()) return;
    task.greenlet_.throw_in(k->error);  // returns when the task blocks again or ends
  }
};

// The greenlet calls the body directly (a DirectRun: no Value in or out).
TaskBase::TaskBase(Hub& hub) : greenlet_(detail::DirectRun{&TaskBase::run_greenlet, this}, hub.greenlet()) {
  // For dump_greenlets, gdb, and the hub's exit hook (unwind_suspended).
  detail::head_of(detail::impl_of(greenlet_))->task = this;
  ExitHook& exit = hub.tasks_exit_hook();
  if (__builtin_expect(!exit.linked(), 0)) {
    exit.fn = &TaskAccess::unwind_suspended;
    hub.add_exit_hook(&exit);
  }
  node_.task = this;
  node_.greenlet = detail::impl_of(greenlet_);
  node_.failed = &TaskAccess::start_failed;
}

void TaskBase::release_storage() noexcept {
  std::shared_ptr<TaskBase> owner = std::move(owner_);  // may destroy this
}

void TaskBase::adopt_shared() noexcept { owner_ = weak_from_this().lock(); }

AnyTask::AnyTask(const std::shared_ptr<TaskBase>& owner) : task_(owner.get()) {
  if (!task_) return;
  if (task_->refs_ == 0) task_->owner_ = owner;  // (again) shared_ptr-owned
  task_->retain();
}

AnyTask::operator std::shared_ptr<TaskBase>() const {
  if (!task_) return nullptr;
  // Aliasing: a shared_ptr made from task_ itself would take over the
  // task's weak_from_this(), which would then hold this reference forever.
  return std::shared_ptr<TaskBase>(std::make_shared<AnyTask>(*this), task_);
}

AnyTask current_task() noexcept {
  detail::GreenletImpl* g = detail::current_impl();
  const void* task = g ? detail::head_of(g)->task : nullptr;
  return AnyTask(const_cast<TaskBase*>(static_cast<const TaskBase*>(task)));
}

// Its other hooks leave the hub by themselves; its greenlet may outlive it.
TaskBase::~TaskBase() {
  if (!links_.empty()) drop_links();
  detail::head_of(detail::impl_of(greenlet_))->task = nullptr;  // made with the task, never emptied
  if (extras_ && extras_->ident) give_back_ident(extras_->ident);
}

TaskBase::Extras& TaskBase::extras() const {
  if (!extras_) extras_ = std::make_unique<Extras>();
  return *extras_;
}

// Owned links are deleted; a join's node (on its greenlet's stack) only leaves.
void TaskBase::drop_links() noexcept {
  while (detail::Hook* h = links_.pop_front()) {
    auto* link = static_cast<detail::TaskLink*>(h);
    if (link->fire == &OwnedLink::on_end) delete static_cast<OwnedLink*>(link);
  }
}

const std::string& TaskBase::name() const {
  Extras& e = extras();
  if (!e.name) e.name = std::make_unique<std::string>("Greenlet-" + std::to_string(minimal_ident() - 1));
  return *e.name;
}

void TaskBase::set_name(std::string name) { extras().name = std::make_unique<std::string>(std::move(name)); }

unsigned long TaskBase::minimal_ident() const {
  Extras& e = extras();
  if (!e.ident) e.ident = take_ident();
  return e.ident;
}

std::string TaskBase::describe() const {
  char address[32];
  std::snprintf(address, sizeof address, "%p", static_cast<const void*>(this));
  return "<Task \"" + name() + "\" at " + address + ">";
}

void TaskBase::start_later(Duration delay) {
  if (scheduled_ || dead_) return;
  check_thread("start");
  scheduled_ = true;
  hub_hold();
  Hub& hub = Hub::current();
  TaskTimer& timer = extras().start_timer.emplace();
  timer.fn = &TaskAccess::start_timer;
  timer.task = this;
  hub.start_timer(&timer, delay.from(hub.now()));  // cached clock (F5)
}

void TaskBase::run_greenlet(void* task) { static_cast<TaskBase*>(task)->bootstrap(); }

// (A forced unwind carries no C++ object: the handler's reference is null
// by design, which UBSan would report.)
[[gnu::no_sanitize_undefined]] void TaskBase::bootstrap() {
  running_ = true;
  try {
    run();
  } catch (abi::__forced_unwind&) {
    throw;  // pthread_exit or cancellation in the body: it unwinds the greenlet and leaves the thread
  } catch (const GreenletExit&) {
    finish(nullptr, true);
    return;
  } catch (const SystemExit&) {
    // GV-19: kept as the task's exception, raised in main, not reported.
    std::exception_ptr error = std::current_exception();
    Hub::current().raise_in_main(error);
    finish(error, false, false);
    return;
  } catch (...) {
    finish(std::current_exception(), false);
    return;
  }
  finish_ok();
}

// The end of every task; alone for a body that returned (nothing to keep,
// no exception_ptr made), after finish() for the others.
void TaskBase::finish_ok() noexcept {
  // A start that will never run, or one still queued: its greenlet was
  // switched to directly.
  node_.unlink();
  dead_ = true;
  running_ = false;
  schedule_links();
}

void TaskBase::finish(std::exception_ptr error, bool killed, bool report) {
  killed_ = killed;
  exception_ = std::move(error);
  finish_ok();
  if (exception_ && report) Hub::report_error(describe(), exception_);  // GV-3
}

// Links run from a hub callback, which also drops the hub's reference: the
// task's greenlet has finished by then, so the task may be destroyed.
void TaskBase::schedule_links() {
  hub_hold();
  if (!node_.queued()) {
    node_.fn = &TaskAccess::links;
    Hub::current().schedule(&node_);
  }
}

void TaskBase::run_links() {
  AnyTask keep = hub_drop();
  // Taken one at a time from the front: a link may unlink later ones (GV-12).
  while (detail::Hook* h = links_.pop_front()) {
    auto* link = static_cast<detail::TaskLink*>(h);
    link->fire(link, *this);
  }
}

void OwnedLink::on_end(detail::TaskLink* self, TaskBase& task) {
  std::unique_ptr<OwnedLink> link(static_cast<OwnedLink*>(self));
  if ((link->when == 1 && task.exception()) || (link->when == 2 && !task.exception())) return;
  try {
    link->fn(task);
  } catch (const GreenletExit&) {
    throw;  // the hub itself is being destroyed: unwind it
  } catch (...) {
    Hub::report_error("a link of " + task.describe(), std::current_exception());  // GV-12
  }
}

void TaskBase::add_link_node(detail::TaskLink* node) noexcept { links_.push_back(node); }

TaskBase::LinkId TaskBase::add_link(LinkFn fn, int when) {
  check_thread("link");
  if (!fn) throw std::invalid_argument("fern: link(nullptr): no function to call");
  auto link = std::make_unique<OwnedLink>();
  link->fire = &OwnedLink::on_end;
  link->fn = std::move(fn);
  link->id = next_link_++;
  link->when = when;
  LinkId id = link->id;
  add_link_node(link.release());
  if (dead_) schedule_links();  // linking an ended task fires soon (GV-11)
  return id;
}

TaskBase::LinkId TaskBase::link(LinkFn fn) { return add_link(std::move(fn), 0); }
TaskBase::LinkId TaskBase::link_value(LinkFn fn) { return add_link(std::move(fn), 1); }
TaskBase::LinkId TaskBase::link_exception(LinkFn fn) { return add_link(std::move(fn), 2); }

void TaskBase::unlink(LinkId id) noexcept {
  for (detail::Hook* h = links_.front(); h; h = detail::HookList::next(h)) {
    auto* link = static_cast<detail::TaskLink*>(h);
    if (link->fire == &OwnedLink::on_end && static_cast<OwnedLink*>(link)->id == id) {
      delete static_cast<OwnedLink*>(link);  // leaves the list by itself
      return;
    }
  }
}

bool TaskBase::has_links() const noexcept { return !links_.empty(); }

void TaskBase::check_thread(const char* what) const {
  if (__builtin_expect(!of_this_thread(), 0))
    throw CrossThreadError(std::string("fern: cannot ") + what + " a task of another thread");
}

bool TaskBase::join_until(Deadline deadline) {
  check_thread("join");
  if (dead_) return true;
  struct JoinLink : detail::TaskLink {
    Waiter waiter;
  } node;  // leaves links_ by itself on every way out
  node.fire = [](detail::TaskLink* self, TaskBase&) { static_cast<JoinLink*>(self)->waiter.wake(); };
  add_link_node(&node);
  Hub::current().park(node.waiter, deadline, "join", this);
  return dead_;
}

bool TaskBase::kill_async(std::exception_ptr error) {
  check_thread("kill");
  if (dead_) return true;
  if (!error) error = std::make_exception_ptr(GreenletExit());
  if (!running_) {
    // Never ran: it dies now without running (GV-5); links still fire.
    node_.unlink();
    if (extras_) extras_->start_timer.reset();
    bool exit = is_greenlet_exit(error);
    finish(exit ? nullptr : error, exit);
    return true;
  }
  // The caller's own task too (gevent's kill(block=False) on itself): the
  // kill comes from the hub at its next block, so a caller killing a batch
  // that holds itself (Group::kill, killall from a member) kills them all.
  auto* k = new KillCallback;
  k->fn = &TaskAccess::kill;
  k->task = AnyTask(this);
  k->error = std::move(error);
  Hub::current().schedule(k);
  return dead_;
}

bool TaskBase::kill_until(std::exception_ptr error, Deadline deadline) {
  if (kill_async(std::move(error))) return true;
  join_until(deadline);
  return dead_;
}

namespace detail {

void throw_empty_task() { throw EmptyTaskError(); }

void throw_not_ready() {
  throw Timeout();  // gevent raises Timeout for get(block=False) and an expired get(timeout)
}

void start_timeout(Timeout& t) {
  if (!t.pending()) t.start();
}
void cancel_timeout(Timeout& t) noexcept { t.cancel(); }

}  // namespace detail

// joinall: one link node per distinct task, in one array; a node is found
// again in its task's (short) list to tolerate duplicates (GV-13) in O(n),
// with no sort and no set.
struct JoinAccess {
  struct State {
    std::vector<AnyTask> done;
    std::exception_ptr first_error;
    std::size_t wanted = 0;
    bool raise_error = false;
    Waiter waiter;

    bool finished() const { return done.size() >= wanted || (raise_error && first_error); }
    void add(const AnyTask& t) {
      done.push_back(t);
      if (!first_error && t->exception_) first_error = t->exception_;
    }
  };
  struct Node : detail::TaskLink {
    State* state;
    const AnyTask* task;
    bool counted = false;

    Node(State* s, const AnyTask* t) noexcept : state(s), task(t) { fire = &on_end; }

    void count() {
      if (counted) return;
      counted = true;
      state->add(*task);
    }
    // A node counted when joinall began (its task had ended) changes
    // nothing when it fires. The common case, a task that ended without an
    // error while more are wanted, is a leaf: what may call out (a vector
    // that grows, an error to keep, the wake) is a tail call.
    static void on_end(detail::TaskLink* self, TaskBase& t) {
      auto* node = static_cast<Node*>(self);
      if (node->counted) return;
      State& s = *node->state;
      if (__builtin_expect(t.exception_ != nullptr || s.done.size() + 1 >= s.wanted ||
                               s.done.size() == s.done.capacity(), 0))
        return count_and_wake(node);
      node->counted = true;
      s.done.push_back(AnyTask(&t, AnyTask::Fresh{}));
    }
    [[gnu::noinline]] static void count_and_wake(Node* node) {
      node->count();
      if (node->state->finished() && !node->state->waiter.ready()) node->state->waiter.wake();
    }
  };

  static bool linked_by(const TaskBase& t, const State* state) noexcept {
    for (detail::Hook* h = t.links_.front(); h; h = detail::HookList::next(h)) {
      auto* link = static_cast<detail::TaskLink*>(h);
      if (link->fire == &Node::on_end && static_cast<Node*>(link)->state == state) return true;
    }
    return false;
  }

  static std::vector<AnyTask> joinall(const std::vector<AnyTask>& tasks, const JoinAll& options) {
    State state;
    state.raise_error = options.raise;
    // One array, a node made for each distinct task only. Declared after
    // state: the nodes leave their tasks' lists first.
    struct Nodes {
      Node* at;
      std::size_t made = 0;
      explicit Nodes(std::size_t n) : at(static_cast<Node*>(::operator new(n * sizeof(Node)))) {}
      ~Nodes() {
        while (made) at[--made].~Node();
        ::operator delete(at);
      }
    } nodes(tasks.size());
    state.done.reserve(tasks.size());
    for (const AnyTask& t : tasks) {
      if (!t || linked_by(*t, &state)) continue;
      Node& node = *::new (nodes.at + nodes.made++) Node(&state, &t);
      // An ended task's node only marks it as seen: counted now, in list order.
      t->add_link_node(&node);
      if (t->dead()) node.count();
    }
    std::size_t count = options.n;
    std::size_t distinct = nodes.made;
    state.wanted = count == 0 || count > distinct ? distinct : count;
    if (!state.finished()) Hub::current().park(state.waiter, options.deadline, "joinall", &tasks);
    if (state.raise_error && state.first_error) std::rethrow_exception(state.first_error);
    if (state.done.size() > state.wanted) state.done.resize(state.wanted);
    return std::move(state.done);
  }
};

std::vector<AnyTask> joinall(const std::vector<AnyTask>& tasks, const JoinAll& options) {
  return JoinAccess::joinall(tasks, options);
}

namespace {

// Kills what is alive without waiting; returns the tasks still alive.
std::vector<AnyTask> kill_each(const std::vector<AnyTask>& tasks, const std::exception_ptr& error) {
  std::vector<AnyTask> alive;
  for (const AnyTask& t : tasks) {
    if (!t || t->dead()) continue;
    t->kill_async(error);
    if (!t->dead()) alive.push_back(t);
  }
  return alive;
}

void killall_until(Deadline deadline, const std::vector<AnyTask>& tasks, const std::exception_ptr& error) {
  std::vector<AnyTask> alive = kill_each(tasks, error);
  if (alive.empty()) return;
  joinall(alive, JoinAll().until(deadline));
  for (const AnyTask& t : alive)
    if (!t->dead()) throw Timeout();  // GV-8: started tasks that outlived the timeout
}

}  // namespace

void killall(const std::vector<AnyTask>& tasks, std::exception_ptr error) {
  killall_until(Deadline::never(), tasks, error);
}
void killall_for(Duration d, const std::vector<AnyTask>& tasks, std::exception_ptr error) {
  killall_until(d.from_now(), tasks, error);
}
void killall_async(const std::vector<AnyTask>& tasks, std::exception_ptr error) { kill_each(tasks, error); }

void sleep_after(Duration d) {
  Hub& hub = Hub::current();
  sleep_until(d.from(hub.update_now()));  // refreshes the cached clock first (F5)
}

// A timer even for "never": a sleeping greenlet keeps the loop alive, as
// gevent's timer does, so sleep(1e10) blocks instead of raising LoopExit.
void sleep_until(Deadline deadline) {
  Hub& hub = Hub::current();
  struct Alarm : Timer {
    Waiter waiter;
  } alarm;
  alarm.fn = [](Timer* t) { static_cast<Alarm*>(t)->waiter.wake(); };
  hub.start_timer(&alarm, deadline);
  hub.park(alarm.waiter, Deadline::never(), "sleep");
}

// Parks until the hub runs an idle callback (HUB-5); the node leaves the
// idle queue by itself on every exit path.
void idle() {
  Hub& hub = Hub::current();
  Waiter waiter;
  ResumeNode wake;
  wake.waiter = &waiter;
  hub.schedule_idle(&wake);
  hub.park(waiter, Deadline::never(), "idle");
}

}  // namespace fern
