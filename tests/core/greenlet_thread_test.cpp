// Greenlets and thread lifetimes: a thread's greenlets stay foreign to every
// later thread (GL-18), and pthread_exit inside a greenlet ends the thread.
#include <pthread.h>

#include <cstdint>
#include <string>

#include "fern/core/task.h"
#include "fern_test.h"

namespace {

using fern::Greenlet;
using GreenletThreads = fern::testing::FernTest;

// Runs fn on a new thread and joins it; returns the thread's exit value.
template <class Fn>
void* on_new_thread(Fn fn) {
  pthread_t t;
  auto start = [](void* arg) -> void* {
    (*static_cast<Fn*>(arg))();
    return nullptr;
  };
  EXPECT_EQ(pthread_create(&t, nullptr, start, &fn), 0);
  void* result = nullptr;
  pthread_join(t, &result);
  return result;
}

// GL-18: the new thread may get the exited one's thread-local addresses;
// the greenlet is still another thread's.
TEST_F(GreenletThreads, GreenletOfAnExitedThreadIsForeignToANewThread) {
  Greenlet their_main;  // no handle stays on the abandoned stack
  Greenlet parked;
  on_new_thread([&] {
    their_main = Greenlet::current();
    parked = Greenlet([&] { their_main.switch_to(); });
    parked.switch_to();
  });
  ASSERT_TRUE(parked.active());
  bool switch_refused = false, throw_refused = false;
  on_new_thread([&] {
    (void)Greenlet::current();
    try {
      parked.switch_to();
    } catch (const fern::CrossThreadError& e) {
      switch_refused = std::string(e.what()).find("different thread") != std::string::npos;
    }
    try {
      parked.throw_in();
    } catch (const fern::CrossThreadError&) {
      throw_refused = true;
    }
  });
  EXPECT_TRUE(switch_refused);
  EXPECT_TRUE(throw_refused);
  EXPECT_THROW(parked.switch_to(), fern::CrossThreadError);
}

struct Counted {
  int* destroyed;
  ~Counted() { ++*destroyed; }
};

// pthread_exit unwinds the greenlet's stack (its destructors run), ends it,
// and the thread exits with the value.
TEST_F(GreenletThreads, PthreadExitInsideAGreenletEndsTheThreadWithItsValue) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer's pthread_exit interceptor checks it runs on the thread's own stack";
#endif
  int destroyed = 0;
  Greenlet g;
  void* result = on_new_thread([&] {
    g = Greenlet([&] {
      Counted c{&destroyed};
      pthread_exit(reinterpret_cast<void*>(std::intptr_t{42}));
    });
    g.switch_to();
  });
  EXPECT_EQ(result, reinterpret_cast<void*>(std::intptr_t{42}));
  EXPECT_EQ(destroyed, 1);
  EXPECT_TRUE(g.dead());
}

// The same inside a task's body: the task does not take the forced unwind
// for its failure (which would end the process), it unwinds the task's
// stack and the thread exits with the value; the thread's hub goes with it.
TEST_F(GreenletThreads, PthreadExitInsideATaskEndsTheThreadWithItsValue) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer's pthread_exit interceptor checks it runs on the thread's own stack";
#endif
  int destroyed = 0;
  bool returned = false;
  void* result = on_new_thread([&] {
    auto task = fern::spawn([&] {
      Counted c{&destroyed};
      pthread_exit(reinterpret_cast<void*>(std::intptr_t{7}));
    });
    task.join();
    returned = true;
  });
  EXPECT_EQ(result, reinterpret_cast<void*>(std::intptr_t{7}));
  EXPECT_EQ(destroyed, 1);
  EXPECT_FALSE(returned);
}

// A size that used to wrap in the rounding is a typed error at the start;
// the greenlet stays unstarted.
TEST_F(GreenletThreads, HugeStackSizeIsATypedErrorAtTheFirstSwitch) {
  for (std::size_t size : {SIZE_MAX, SIZE_MAX - 4096}) {
    Greenlet g([] {}, Greenlet(), size);
    EXPECT_THROW(g.switch_to(), fern::arch::StackSizeError);
    EXPECT_FALSE(g.started());
  }
}

}  // namespace
