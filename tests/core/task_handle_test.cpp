// Task handles (core/task.h "Handles"): counted in the task, no atomics;
// the task goes with its last handle and the hub's own reference; shared_ptr
// at the edges (adopt, the conversion) keeps working.
#include <memory>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "fern/core/task.h"
#include "hub_fixture.h"

namespace {

using fern::AnyTask;
using fern::sleep;
using fern::spawn;
using Handles = fern::testing::HubTest;

// Counts its live objects, so a test sees exactly when one goes.
class Counted : public fern::TaskBase {
 public:
  explicit Counted(int& live, std::vector<std::string>* log = nullptr) : live_(live), log_(log) { ++live_; }
  ~Counted() override { --live_; }

 protected:
  void run() override {
    if (log_) log_->push_back("ran");
    sleep(0);
  }

 private:
  int& live_;
  std::vector<std::string>* log_;
};

// A hostile use: an empty Task handle (default-made, moved from) throws a
// typed error for every call instead of dereferencing null.
TEST_F(Handles, AnEmptyTaskHandleThrowsEmptyTaskErrorForEveryCall) {
  fern::Task<int> empty;
  fern::Task<int> real = spawn([] { return 7; });
  fern::Task<int> moved_to = std::move(real);
  for (fern::Task<int>* t : {&empty, &real}) {
    EXPECT_FALSE(*t);
    EXPECT_THROW(t->join(), fern::EmptyTaskError);
    EXPECT_THROW(t->join_for(0.0), fern::EmptyTaskError);
    EXPECT_THROW(t->get(), fern::EmptyTaskError);
    EXPECT_THROW(t->get_nowait(), fern::EmptyTaskError);
    EXPECT_THROW(t->value(), fern::EmptyTaskError);
    EXPECT_THROW(t->kill(), fern::EmptyTaskError);
    EXPECT_THROW(t->kill_async(), fern::EmptyTaskError);
    EXPECT_THROW(t->start(), fern::EmptyTaskError);
    EXPECT_THROW((void)t->ready(), fern::EmptyTaskError);
    EXPECT_THROW((void)t->dead(), fern::EmptyTaskError);
    EXPECT_THROW((void)t->exception(), fern::EmptyTaskError);
    EXPECT_THROW((void)(*t)->name(), fern::EmptyTaskError);
    EXPECT_THROW(fern::with_task(*t, [] {}), fern::EmptyTaskError);
  }
  EXPECT_EQ(moved_to.get(), 7);
}

TEST_F(Handles, CopiesShareOneCountAndTheLastOneFreesAMadeTask) {
  int live = 0;
  {
    fern::Task<void> t = fern::make_task<Counted>(live);
    EXPECT_EQ(live, 1);
    EXPECT_EQ(t.core().use_count(), 1);
    AnyTask a = t;
    AnyTask b = a;
    EXPECT_EQ(a.use_count(), 3);
    EXPECT_EQ(a, b);
    EXPECT_EQ(a.get(), t.operator->());
    b.reset();
    EXPECT_FALSE(b);
    EXPECT_EQ(a.use_count(), 2);
    AnyTask moved = std::move(a);
    EXPECT_FALSE(a);  // NOLINT: moved-from is empty
    EXPECT_EQ(moved.use_count(), 2);
  }
  EXPECT_EQ(live, 0);
}

TEST_F(Handles, TheHubHoldsAStartedTaskUntilItsLinksRan) {
  int live = 0;
  std::vector<std::string> ran;
  fern::make_task<Counted>(live, &ran).start();  // the handle goes at once
  EXPECT_EQ(live, 1);
  sleep(0);
  EXPECT_EQ(ran, std::vector<std::string>{"ran"});
  EXPECT_EQ(live, 1);  // suspended in its sleep(0)
  fern::Hub::current().run_until_idle();
  EXPECT_EQ(live, 0);
}

TEST_F(Handles, AnAdoptedTaskKeepsItsSharedPtrWhileReferenced) {
  int live = 0;
  auto owned = std::make_shared<Counted>(live);
  std::weak_ptr<Counted> watch = owned;
  auto t = fern::Task<void>::adopt(std::move(owned));
  EXPECT_FALSE(watch.expired());  // held by the task's own shared_ptr
  t.start();
  t.join();
  EXPECT_FALSE(watch.expired());
  t = {};
  fern::Hub::current().run_until_idle();
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(live, 0);
}

TEST_F(Handles, AnAdoptedTaskOutlivesItsHandlesWhileSharedPtrsRemain) {
  int live = 0;
  auto owned = std::make_shared<Counted>(live);
  {
    AnyTask a = std::shared_ptr<fern::TaskBase>(owned);
    a->start();
    a->join();
  }
  fern::Hub::current().run_until_idle();
  EXPECT_EQ(live, 1);  // the caller's shared_ptr still owns it
  AnyTask again = std::shared_ptr<fern::TaskBase>(owned);  // adopted again
  owned.reset();
  EXPECT_EQ(live, 1);
  EXPECT_TRUE(again->dead());
  again.reset();
  EXPECT_EQ(live, 0);
}

TEST_F(Handles, ASharedPtrMadeFromAHandleHoldsAReference) {
  int live = 0;
  std::shared_ptr<fern::TaskBase> shared;
  {
    AnyTask a = fern::make_task<Counted>(live);
    shared = a;  // converts: one reference
    EXPECT_EQ(shared.get(), a.get());
    EXPECT_EQ(a.use_count(), 2);
  }
  EXPECT_EQ(live, 1);
  AnyTask back = shared;  // the same task, counted once more
  EXPECT_EQ(back.get(), shared.get());
  shared.reset();
  EXPECT_EQ(live, 1);
  back.reset();
  EXPECT_EQ(live, 0);
}

TEST_F(Handles, ABodyMakesAHandleToItselfWithThis) {
  class Self : public fern::TaskBase {
   public:
    AnyTask seen;

   protected:
    void run() override { seen = AnyTask(this); }  // was shared_from_this()
  };
  auto t = fern::make_task<Self>();
  t.start();
  t.join();
  auto& self = static_cast<Self&>(*t);
  EXPECT_EQ(self.seen, t.core());
  self.seen.reset();  // a task holding itself would never go
}

// A task made with make_shared and started with no handle at all: the
// hub's reference adopts one of its shared_ptrs, so dropping the caller's
// (gevent's `MyGreenlet().start()`) leaves it running, and it goes once its
// links ran. shared_from_this() works in its body.
// gevent's getcurrent() inside a Greenlet: current_task() is a handle to
// the running task; outside any task (main, a greenlet made directly, the
// hub's callbacks) it is empty.
TEST_F(Handles, CurrentTaskIsTheRunningTaskAndEmptyOutsideOne) {
  EXPECT_FALSE(fern::current_task());
  AnyTask seen_inside, seen_in_child;
  auto t = spawn([&] {
    seen_inside = fern::current_task();
    EXPECT_EQ(seen_inside.use_count(), 3);  // t, the hub's, this one
    fern::Greenlet raw([&] { seen_in_child = fern::current_task(); });
    raw.switch_to();
    sleep(0);
  });
  bool callback_saw_a_task = true;
  fern::Hub::current().run_callback([&] { callback_saw_a_task = bool(fern::current_task()); });
  t.join();
  EXPECT_EQ(seen_inside, t.core());
  EXPECT_FALSE(seen_in_child);
  EXPECT_FALSE(callback_saw_a_task);
  EXPECT_FALSE(fern::current_task());
}

TEST_F(Handles, AStartedSharedPtrTaskLivesOnWithoutItsOwner) {
  class Shared : public Counted {
   public:
    using Counted::Counted;
    std::shared_ptr<fern::TaskBase>* seen = nullptr;

   protected:
    void run() override {
      *seen = shared_from_this();
      Counted::run();
    }
  };
  int live = 0;
  std::vector<std::string> ran;
  std::shared_ptr<fern::TaskBase> from_body;
  {
    auto owned = std::make_shared<Shared>(live, &ran);
    owned->seen = &from_body;
    owned->start();
  }  // the caller's shared_ptr is gone
  sleep(0);
  EXPECT_EQ(ran, std::vector<std::string>{"ran"});
  EXPECT_EQ(live, 1);
  from_body.reset();
  fern::Hub::current().run_until_idle();
  EXPECT_EQ(live, 0);
}

// A task owned by something else (here a local) needs no handle at all:
// the hub's reference covers its run and its links, and nothing frees it.
TEST_F(Handles, ATaskOwnedElsewhereRunsWithoutHandles) {
  int live = 0;
  std::vector<std::string> ran;
  {
    Counted local(live, &ran);
    local.start();
    local.join();
    fern::Hub::current().run_until_idle();
    EXPECT_EQ(ran, std::vector<std::string>{"ran"});
    EXPECT_EQ(live, 1);
  }
  EXPECT_EQ(live, 0);
}

TEST_F(Handles, HandlesWorkAsKeysAndCompareWithNull) {
  auto a = spawn([] {});
  auto b = spawn([] {});
  std::set<AnyTask> ordered{a, b, a};
  std::unordered_set<AnyTask> hashed{a, b, b};
  EXPECT_EQ(ordered.size(), 2u);
  EXPECT_EQ(hashed.size(), 2u);
  AnyTask none;
  EXPECT_TRUE(none == nullptr);
  EXPECT_TRUE(AnyTask(a) != nullptr);
  EXPECT_EQ(none.use_count(), 0);
  fern::joinall({a.core(), nullptr, b.core()});
}

// A joinall result holds its tasks: they outlive every other handle.
TEST_F(Handles, JoinallResultsKeepTheirTasks) {
  int live = 0;
  std::vector<AnyTask> done;
  {
    std::vector<AnyTask> batch;
    for (int i = 0; i < 3; ++i) batch.push_back(fern::make_task<Counted>(live).start());
    done = fern::joinall(batch);
  }
  fern::Hub::current().run_until_idle();
  EXPECT_EQ(live, 3);
  for (const AnyTask& t : done) EXPECT_TRUE(t->successful());
  done.clear();
  EXPECT_EQ(live, 0);
}

}  // namespace
