// ThreadPool and the resolver: SEMANTICS TP-1..TP-5, IO-9, and "thread pool
// work that throws" from issue 8. Ported in spirit from gevent's
// test__threadpool.py and test__socket_dns.py (loopback names only).
#include <netdb.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "fern/config.h"  // FERN_ASAN, FERN_TSAN, FERN_VALGRIND
#include "fern/core/task.h"
#include "fern/io/resolver.h"
#include "fern/io/thread_pool.h"
#include "fern/sync/wait_any.h"
#include "io_fixture.h"

namespace {

using fern::ThreadPool;
using ThreadPoolIo = fern::testing::IoTest;

// Worker threads alive that ran count_this_worker(): its thread_local
// token goes when the thread exits, before a join of it returns, so after a
// pool joined its threads (wait_idle, shutdown) a leaked thread still counts
// (/proc/self/task may still list a thread just joined: not used).
std::atomic<int> g_workers{0};
struct WorkerToken {
  WorkerToken() { ++g_workers; }
  ~WorkerToken() { --g_workers; }
};
void count_this_worker() {
  thread_local WorkerToken token;
  static_cast<void>(token);
}

// A gate that jobs in worker threads wait at until the test opens it.
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  int arrived = 0;
  bool open = false;
  void pass() {
    std::unique_lock<std::mutex> lock(m);
    ++arrived;
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
  }
  void wait_arrived(int n) {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return arrived >= n; });
  }
  void release() {
    std::lock_guard<std::mutex> lock(m);
    open = true;
    cv.notify_all();
  }
};

// n jobs that all wait for each other: n distinct threads of the pool each
// run one (and count themselves).
void occupy_threads(ThreadPool& pool, int n) {
  Gate gate;
  std::vector<fern::ThreadResult<void>> jobs;
  for (int i = 0; i < n; ++i)
    jobs.push_back(pool.spawn([&gate] {
      count_this_worker();
      gate.pass();
    }));
  gate.wait_arrived(n);
  gate.release();
  for (auto& j : jobs) j.get();
}

// TP-1 (test_init_valueerror): a negative maxsize is refused, -1 included
// (not read as a huge size); 0 is gevent's too (TestMaxsize::test_inc)
TEST_F(ThreadPoolIo, NegativeMaxsizeIsRejected) {
  EXPECT_THROW(ThreadPool(-1), std::invalid_argument);
  int negative = -5;
  EXPECT_THROW(ThreadPool{negative}, std::invalid_argument);
  EXPECT_EQ(ThreadPool(std::size_t{3}).maxsize(), 3u);
  EXPECT_EQ(ThreadPool(0).maxsize(), 0u);
}

// TP-1 (TestSize): size is set between 0 and maxsize, starting or
// retiring threads at once; outside that range std::invalid_argument,
// nothing changed. Retired threads are joined.
TEST_F(ThreadPoolIo, SizeIsSetBetweenZeroAndMaxsize) {
  ThreadPool pool(2);
  EXPECT_EQ(pool.threads(), 0u);
  pool.set_size(1);
  EXPECT_EQ(pool.threads(), 1u);
  pool.set_size(2);
  EXPECT_EQ(pool.threads(), 2u);
  occupy_threads(pool, 2);
  EXPECT_EQ(g_workers.load(), 2);
  EXPECT_EQ(pool.threads(), 2u);  // the two set_size started: none more
  pool.set_size(1);
  EXPECT_EQ(pool.threads(), 1u);
  EXPECT_THROW(pool.set_size(-1), std::invalid_argument);
  EXPECT_THROW(pool.set_size(3), std::invalid_argument);
  EXPECT_EQ(pool.threads(), 1u);
  pool.set_size(0);
  EXPECT_EQ(pool.threads(), 0u);
  pool.wait_idle();
  EXPECT_EQ(g_workers.load(), 0);
  pool.set_size(2);
  EXPECT_EQ(pool.threads(), 2u);
  EXPECT_EQ(pool.apply([] { return 7; }), 7);
  EXPECT_EQ(pool.threads(), 2u);  // an idle thread took it: none started
  pool.set_maxsize(1);  // size above the new maxsize is refused
  EXPECT_EQ(pool.threads(), 1u);
  EXPECT_THROW(pool.set_size(2), std::invalid_argument);
}

// TP-1 (TestMaxsize::test_inc): with maxsize 0 work queues and no thread
// starts; raising maxsize runs it, FIFO. Negative: std::invalid_argument.
TEST_F(ThreadPoolIo, MaxsizeZeroHoldsWorkUntilRaised) {
  ThreadPool pool(0);
  std::atomic<int> started{0};
  auto stamp = [&](int x) { return x * 10 + started++; };  // x, then its place in the start order
  auto a = pool.spawn(stamp, 1);
  auto b = pool.spawn(stamp, 2);
  fern::sleep(0);
  EXPECT_EQ(pool.threads(), 0u);
  EXPECT_EQ(pool.pending(), 2u);
  pool.wait_idle();  // held work does not count as work to wait for
  EXPECT_FALSE(a.ready());
  EXPECT_THROW(pool.set_maxsize(-1), std::invalid_argument);
  EXPECT_EQ(pool.maxsize(), 0u);
  pool.set_maxsize(1);
  EXPECT_EQ(pool.threads(), 1u);
  EXPECT_EQ(a.get(), 10);
  EXPECT_EQ(b.get(), 21);
}

// TP-1 (TestMaxsize::test_setzero): lowering maxsize to 0 while jobs run
// lets them finish, takes no new job and lets every thread go (joined);
// raising it again runs the queued work.
TEST_F(ThreadPoolIo, LoweringMaxsizeToZeroWhileJobsRunStopsNewWork) {
  ThreadPool pool(3);
  Gate gate;
  std::vector<fern::ThreadResult<int>> running;
  for (int i = 0; i < 3; ++i)
    running.push_back(pool.spawn([&gate, i] {
      count_this_worker();
      gate.pass();
      return i;
    }));
  gate.wait_arrived(3);
  EXPECT_EQ(pool.threads(), 3u);
  pool.set_maxsize(0);
  EXPECT_EQ(pool.threads(), 0u);
  std::atomic<bool> late_ran{false};
  auto late = pool.spawn([&] { late_ran = true; });
  gate.release();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(running[i].get(), i);
  pool.wait_idle();  // the three threads left and were joined
  EXPECT_EQ(g_workers.load(), 0);
  EXPECT_FALSE(late_ran.load());
  EXPECT_EQ(pool.pending(), 1u);
  pool.set_maxsize(2);
  late.get();
  EXPECT_TRUE(late_ran.load());
  EXPECT_EQ(pool.threads(), 1u);  // one job queued: one thread
}

// TP-1: lowering size while one thread is busy retires the idle one at
// once; the busy job is not disturbed. Lowering maxsize below a busy
// thread lets it finish its job first.
TEST_F(ThreadPoolIo, LoweringSizeWhileAJobRunsRetiresIdleThreadsFirst) {
  ThreadPool pool(2);
  pool.set_size(2);
  occupy_threads(pool, 2);
  Gate gate;
  auto busy = pool.spawn([&] {
    gate.pass();
    return 5;
  });
  gate.wait_arrived(1);
  pool.set_size(1);
  EXPECT_EQ(pool.threads(), 1u);
  EXPECT_FALSE(busy.ready());
  pool.set_maxsize(0);
  EXPECT_EQ(pool.threads(), 0u);
  gate.release();
  EXPECT_EQ(busy.get(), 5);
  pool.wait_idle();
  EXPECT_EQ(g_workers.load(), 0);
}

// TP-1, a hostile caller: size and maxsize set from the pool's own worker
// (no wait for itself), a size beyond maxsize refused there too.
TEST_F(ThreadPoolIo, SizeAndMaxsizeAreSetFromAWorkerThread) {
  ThreadPool pool(2);
  std::size_t seen = pool.apply([&] {
    count_this_worker();
    pool.set_size(2);
    std::size_t two = pool.threads();
    pool.set_maxsize(1);
    EXPECT_THROW(pool.set_size(2), std::invalid_argument);
    return two * 10 + pool.threads();
  });
  EXPECT_EQ(seen, 21u);
  pool.wait_idle();
  EXPECT_EQ(pool.threads(), 1u);
  EXPECT_EQ(pool.apply([] { return 3; }), 3);
  pool.set_size(0);
  pool.wait_idle();
  EXPECT_EQ(g_workers.load(), 0);
}

// TP-1, a hostile caller: another OS thread changes maxsize and size over
// and over while work flows (maxsize 0 included, ending at 4): no job is
// lost or run twice, FIFO per thread kept, and the threads that left are
// joined.
TEST_F(ThreadPoolIo, ResizingFromAnotherThreadWhileWorkFlowsLosesNoWork) {
  ThreadPool pool(4);
  std::atomic<int> runs{0};
  std::vector<fern::ThreadResult<int>> results;
  std::thread resizer([&] {
    for (int i = 0; i < 300; ++i) {
      pool.set_maxsize(i % 5);
      pool.set_size(i % 3 <= i % 5 ? i % 3 : 0);
    }
    pool.set_maxsize(4);
  });
  for (int i = 0; i < 300; ++i) {
    results.push_back(pool.spawn([&runs, i] {
      count_this_worker();
      ++runs;
      return i;
    }));
    if (i % 50 == 0) fern::sleep(0);
  }
  resizer.join();
  for (int i = 0; i < 300; ++i) EXPECT_EQ(results[i].get(), i);
  EXPECT_EQ(runs.load(), 300);
  pool.wait_idle();
  EXPECT_LE(pool.threads(), 4u);
  EXPECT_LE(g_workers.load(), static_cast<int>(pool.threads()));
  pool.set_size(0);
  pool.wait_idle();
  EXPECT_EQ(g_workers.load(), 0);
}

// TP-1: after shutdown() size and maxsize are a std::logic_error, as spawn.
// Work that maxsize 0 held at shutdown fails with ThreadPoolShutDown
// instead of holding its hub's loop forever.
TEST_F(ThreadPoolIo, ShutdownRefusesSettersAndFailsHeldWork) {
  ThreadPool pool(0);
  auto held = pool.spawn([] { return 1; });
  pool.shutdown();
  EXPECT_THROW(held.get(), fern::ThreadPoolShutDown);
  EXPECT_THROW(pool.set_size(0), std::logic_error);
  EXPECT_THROW(pool.set_maxsize(2), std::logic_error);
  EXPECT_EQ(pool.threads(), 0u);
}

// TP-1: threads start lazily, never more than maxsize
TEST_F(ThreadPoolIo, ThreadsStartLazilyUpToMaxsize) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.threads(), 0u);
  EXPECT_EQ(pool.apply([] { return 1; }), 1);
  EXPECT_EQ(pool.threads(), 1u);
  std::vector<int> in(20);
  for (int i = 0; i < 20; ++i) in[i] = i;
  pool.map([](int x) { return x; }, in);
  EXPECT_LE(pool.threads(), 3u);
}

// TP-2: waiting blocks only the calling greenlet; the hub keeps running
TEST_F(ThreadPoolIo, WaitingForAResultBlocksOnlyTheCaller) {
  ThreadPool pool(1);
  std::mutex m;
  std::condition_variable cv;
  bool go = false;
  auto r = pool.spawn([&] {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return go; });
    return std::string("done");
  });
  auto waiter = fern::spawn([&] { log.push_back(r.get()); });
  auto other = fern::spawn([&] {
    log.push_back("other ran");
    {
      std::lock_guard<std::mutex> lock(m);
      go = true;
    }
    cv.notify_one();
  });
  waiter.join();
  other.join();
  EXPECT_EQ(log, (std::vector<std::string>{"other ran", "done"}));
}

// TP-3: work that throws delivers the exception to the waiter
TEST_F(ThreadPoolIo, WorkThatThrowsRethrowsInTheWaiter) {
  ThreadPool pool(2);
  auto r = pool.spawn([]() -> int { throw std::runtime_error("boom"); });
  r.wait();
  EXPECT_TRUE(r.ready());
  EXPECT_FALSE(r.successful());
  EXPECT_THROW(r.get(), std::runtime_error);
  EXPECT_THROW(pool.apply([] { throw std::logic_error("x"); }), std::logic_error);
}

// TP-3
TEST_F(ThreadPoolIo, MapReturnsResultsInInputOrder) {
  ThreadPool pool(4);
  std::vector<int> in;
  for (int i = 0; i < 100; ++i) in.push_back(i);
  auto out = pool.map([](int x) { return x * x; }, in);
  ASSERT_EQ(out.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(out[i], i * i);
}

// TP-4: beyond maxsize, work queues and starts FIFO
TEST_F(ThreadPoolIo, WorkBeyondMaxsizeStartsInFifoOrder) {
  ThreadPool pool(1);
  std::mutex m;
  std::vector<int> order;
  std::vector<fern::ThreadResult<void>> rs;
  std::atomic<bool> go{false};  // the first holds the only thread: the others must queue
  for (int i = 0; i < 10; ++i)
    rs.push_back(pool.spawn([&, i] {
      while (i == 0 && !go.load()) std::this_thread::yield();
      std::lock_guard<std::mutex> lock(m);
      order.push_back(i);
    }));
  EXPECT_GE(pool.pending(), 9u);
  go = true;
  for (auto& r : rs) r.get();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(pool.pending(), 0u);
}

// TP-5: a worker thread gets its own hub, so fern code runs inside a job:
// a recursive apply in a size-2 pool (inline in the outer job's worker, as
// gevent's), tasks and sleeps.
TEST_F(ThreadPoolIo, FernCodeRunsInsideAJobOnTheWorkersOwnHub) {
  ThreadPool pool(2);
  fern::Hub* mine = &fern::Hub::current();
  int got = pool.apply([&] {
    EXPECT_NE(&fern::Hub::current(), mine);
    auto t = fern::spawn([] {
      fern::sleep(0.001);
      return 20;
    });
    int inner = pool.apply([] { return 22; });  // inline, in this worker
    return t.get() + inner;
  });
  EXPECT_EQ(got, 42);
  EXPECT_EQ(pool.threads(), 1u);
}

// TP-5, gevent's _apply_immediately: apply and map from one of the pool's
// own threads run inline, so a size-1 pool does not wait forever for a job
// queued behind the one asking; the calls that would wait for their own
// thread (shutdown, wait_idle) are a typed error there, changing nothing,
// and the pool still shuts down (and is destroyed) cleanly afterwards.
TEST_F(ThreadPoolIo, ItsOwnThreadsApplyInlineAndCannotShutItDown) {
  ThreadPool pool(1);
  std::thread::id outer_thread, inner_thread;
  int got = pool.apply([&] {
    outer_thread = std::this_thread::get_id();
    std::vector<int> doubled = pool.map([](int x) { return 2 * x; }, std::vector<int>{1, 2, 3});
    return pool.apply([&] {
      inner_thread = std::this_thread::get_id();
      return doubled[0] + doubled[1] + doubled[2];
    });
  });
  EXPECT_EQ(got, 12);
  EXPECT_EQ(inner_thread, outer_thread);
  EXPECT_NE(outer_thread, std::this_thread::get_id());
  EXPECT_THROW(pool.apply([&] { pool.shutdown(); }), std::logic_error);
  EXPECT_THROW(pool.apply([&] { pool.wait_idle(); }), std::logic_error);
  EXPECT_EQ(pool.apply([] { return 5; }), 5);  // still taking work
}

// Two threads that shut one pool down at once: one joins, the other waits
// for it; neither joins a thread twice.
TEST_F(ThreadPoolIo, ShutdownFromTwoThreadsAtOnceJoinsEachThreadOnce) {
  for (int round = 0; round < 20; ++round) {
    ThreadPool pool(3);
    std::atomic<bool> go{false};
    std::vector<fern::ThreadResult<void>> jobs;
    for (int i = 0; i < 3; ++i)
      jobs.push_back(pool.spawn([&] {
        while (!go.load()) std::this_thread::yield();
      }));
    std::thread other([&] { pool.shutdown(); });
    go = true;
    pool.shutdown();
    other.join();
    EXPECT_EQ(pool.threads(), 0u);
    fern::Hub::current().run_until_idle();  // the results' deliveries
  }
}

// TP-5: the pool drops its references to a job's arguments and result once
// the job is done and its result taken.
TEST_F(ThreadPoolIo, ArgumentsAndResultsAreNotKeptAfterCompletion) {
  ThreadPool pool(1);
  auto arg = std::make_shared<int>(1);
  std::weak_ptr<int> result_seen;
  {
    auto r = pool.spawn([](std::shared_ptr<int> a) { return std::make_shared<int>(*a + 1); }, arg);
    std::shared_ptr<int> result = r.get();
    result_seen = result;
    EXPECT_EQ(*result, 2);
  }
  pool.wait_idle();
  EXPECT_EQ(arg.use_count(), 1);
  EXPECT_TRUE(result_seen.expired());
}

// TP-6 (TestTPE: futures with concurrent.futures.wait and gevent.wait):
// thread results are waited on together with fern::wait and IWait, first
// completed first, with a deadline, beside a task, failures included.
TEST_F(ThreadPoolIo, ThreadResultsAreWaitedOnTogetherWithFernWait) {
  ThreadPool pool(3);
  std::atomic<int> release{0};
  auto job = [&release](int me) {
    while (release.load() < me) std::this_thread::yield();
    if (me == 3) throw std::runtime_error("third failed");
    return me * 10;
  };
  fern::ThreadResult<int> a = pool.spawn(job, 1), b = pool.spawn(job, 2), c = pool.spawn(job, 3);
  EXPECT_TRUE(fern::wait({a.async_result(), b.async_result()}, fern::WaitAny().within(0.01)).empty());
  release = 2;  // b may end, then a: the order they become ready is kept
  std::vector<std::size_t> first = fern::wait({b.async_result(), c.async_result()}, fern::WaitAny().count(1));
  EXPECT_EQ(first, std::vector<std::size_t>{0});
  auto task = fern::spawn([] { return 7; });
  release = 3;
  std::vector<std::size_t> all = fern::wait({a.async_result(), b.async_result(), c.async_result(), task});
  EXPECT_EQ(all.size(), 4u);
  EXPECT_EQ(a.get() + b.get() + task.get(), 37);
  EXPECT_FALSE(c.successful());
  EXPECT_THROW(c.get(), std::runtime_error);
  fern::IWait it({a.async_result(), c.async_result()});
  std::vector<std::size_t> seen;
  while (auto i = it.next()) seen.push_back(*i);
  EXPECT_EQ(seen, (std::vector<std::size_t>{0, 1}));  // ready at the call: in list order
}

TEST_F(ThreadPoolIo, WaitForReturnsFalseWhileTheWorkRuns) {
  ThreadPool pool(1);
  std::atomic<bool> release{false};
  auto r = pool.spawn([&] {
    while (!release.load()) std::this_thread::yield();
  });
  EXPECT_FALSE(r.wait_for(0.01));
  release = true;
  EXPECT_TRUE(r.wait_for(10.0));
}

TEST_F(ThreadPoolIo, ShutdownRunsQueuedWorkAndJoinsThreads) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(2);
    for (int i = 0; i < 8; ++i) pool.spawn([&] { ran.fetch_add(1); });
    pool.shutdown();
    EXPECT_EQ(pool.threads(), 0u);
    EXPECT_THROW(pool.spawn([] {}), std::logic_error);
  }
  EXPECT_EQ(ran.load(), 8);
  fern::Hub::current().run_until_idle();  // the results' deliveries
}

// fork() while the pool's thread runs a job and another is queued: in the
// child the pool has no threads and starts one for new work (TP-1), and the
// two results the parent's threads were to deliver fail with
// ForkLeftWorkBehind, waking their waiter, instead of holding the child's
// loop for ever. The parent gets both as usual.
TEST_F(ThreadPoolIo, ForkChildStartsItsOwnThreadsAndFailsTheParentsWork) {
#if FERN_TSAN
  GTEST_SKIP() << "ThreadSanitizer does not follow a multithreaded process into a fork child";
#endif
#if defined(FERN_TEST_UNDER_EMULATOR)
  GTEST_SKIP() << "qemu-user aborts a thread started in the fork child of a multithreaded process (its own assertion)";
#endif
  ThreadPool pool(1);
  std::mutex m;
  std::condition_variable cv;
  bool started = false, go = false;
  auto running = pool.spawn([&] {
    std::unique_lock<std::mutex> lock(m);
    started = true;
    cv.notify_all();
    cv.wait(lock, [&] { return go; });
    return 1;
  });
  auto queued = pool.spawn([] { return 2; });
  {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return started; });
  }
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    alarm(10);  // a hang fails the test
    int code = 0;
    auto waiter = fern::spawn([&] {
      try {
        running.get();
        code |= 1;
      } catch (const fern::ForkLeftWorkBehind&) {
      }
    });
    try {
      queued.get();
      code |= 2;
    } catch (const fern::ForkLeftWorkBehind&) {
    }
    waiter.join();
    if (pool.spawn([] { return 3; }).get() != 3 || pool.threads() != 1) code |= 4;
    if (!fern::Hub::current().run_until_idle()) code |= 8;
    std::_Exit(code);
  }
  {
    std::lock_guard<std::mutex> lock(m);
    go = true;
  }
  cv.notify_all();
  EXPECT_EQ(running.get(), 1);
  EXPECT_EQ(queued.get(), 2);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child did not exit (status " << status << ")";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1/2: a result did not fail, 4: no new work, 8: the loop was held";
}

// A pool that cannot start its first thread (here: no address space left
// for its stack) refuses the work: spawn throws std::system_error and
// queues nothing, so the hub's loop is not held by work nobody will run.
// Measured in a fork child, whose address space alone is limited.
TEST_F(ThreadPoolIo, WorkThatNoThreadCanTakeIsRefusedNotQueuedForever) {
#if FERN_ASAN || FERN_TSAN || FERN_VALGRIND || defined(FERN_TEST_UNDER_EMULATOR)
  GTEST_SKIP() << "sanitizers and qemu-user reserve address space: RLIMIT_AS cannot be tight";
#endif
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    alarm(10);  // a hang fails the test
    long pages = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
      if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
      std::fclose(f);
    }
    rlimit limit{};
    limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(pages) * sysconf(_SC_PAGESIZE) + (4 << 20);
    std::vector<std::thread> hogs;
    hogs.reserve(1000);
    std::mutex m;
    std::condition_variable cv;
    bool go = false;
    if (pages == 0 || setrlimit(RLIMIT_AS, &limit) != 0) std::_Exit(3);
    // Threads that wait, until no more can start: they take the stacks the
    // C library keeps from earlier tests' threads, and the space left.
    for (;;) {
      try {
        hogs.emplace_back([&] {
          std::unique_lock<std::mutex> lock(m);
          cv.wait(lock, [&] { return go; });
        });
      } catch (const std::system_error&) {
        break;
      }
      if (hogs.size() == 1000) std::_Exit(4);
    }
    ThreadPool pool(2);
    int code = 1;  // spawn did not throw
    try {
      pool.spawn([] { return 1; });
    } catch (const std::system_error&) {
      code = pool.pending() == 0 && fern::Hub::current().run_until_idle() ? 0 : 2;
    }
    {
      std::lock_guard<std::mutex> lock(m);
      go = true;
    }
    cv.notify_all();
    for (std::thread& t : hogs) t.join();
    std::_Exit(code);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// TP-3 (test_async): apply_async never blocks; its task holds the result
// or rethrows fn's exception (test_apply_raises).
TEST_F(ThreadPoolIo, ApplyAsyncReturnsATaskOfTheResult) {
  ThreadPool pool(1);
  Gate gate;
  auto t = pool.apply_async(
      [&gate](int x) {
        gate.pass();
        return x * x;
      },
      7);
  EXPECT_FALSE(t.ready());  // returned without waiting for the work
  fern::sleep(0);           // the task applies: its work is now in the pool
  gate.wait_arrived(1);
  EXPECT_FALSE(t.ready());
  gate.release();
  EXPECT_EQ(t.get(), 49);
  auto failing = pool.apply_async([]() -> int { throw std::runtime_error("boom"); });
  EXPECT_THROW(failing.get(), std::runtime_error);
}

// TP-3 (test_async_callback): the callback gets the result in the caller's
// thread, after the result is set; a failure skips it.
TEST_F(ThreadPoolIo, ApplyAsyncCallbackRunsInTheCallersThreadWithTheResult) {
  ThreadPool pool(2);
  std::vector<int> got;
  std::thread::id cb_thread;
  auto t = pool.apply_async_cb(
      [&](int r) {
        got.push_back(r);
        cb_thread = std::this_thread::get_id();
      },
      [](int x) { return x * x; }, 7);
  EXPECT_EQ(t.get(), 49);
  EXPECT_EQ(got, std::vector<int>{49});
  EXPECT_EQ(cb_thread, std::this_thread::get_id());
  int void_calls = 0;
  pool.apply_async_cb([&] { ++void_calls; }, [] {}).get();
  EXPECT_EQ(void_calls, 1);
  auto failing = pool.apply_async_cb([&](int r) { got.push_back(r); }, []() -> int { throw std::logic_error("x"); });
  EXPECT_THROW(failing.get(), std::logic_error);
  EXPECT_EQ(got, std::vector<int>{49});
}

// TP-3 (test_imap_it_small, test_imap_it_large, test_imap_list_small):
// imap yields f(x) in input order, then std::nullopt (StopIteration), also
// on every later call.
TEST_F(ThreadPoolIo, ImapYieldsResultsInInputOrder) {
  ThreadPool pool(3);
  std::vector<int> in;
  for (int i = 0; i < 1000; ++i) in.push_back(i);
  auto it = pool.imap([](int x) { return x * x; }, in);
  for (int i = 0; i < 1000; ++i) {
    std::optional<int> r = it.next();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(*r, i * i);
  }
  EXPECT_FALSE(it.next().has_value());
  EXPECT_FALSE(it.next().has_value());
  std::vector<int> listed;
  for (int r : pool.imap([](int x) { return x + 1; }, std::vector<int>{1, 2, 3})) listed.push_back(r);
  EXPECT_EQ(listed, (std::vector<int>{2, 3, 4}));
}

// TP-3 (test_imap_unordered, test_imap_unordered_sleep; PL-9):
// imap_unordered yields in completion order: '1', '2', then '10' when the
// work for 10 ends last; with one thread (FIFO) it is input order.
TEST_F(ThreadPoolIo, ImapUnorderedYieldsInCompletionOrder) {
  ThreadPool pool(3);
  Gate g1, g2, g10;
  auto work = [&](int x) {
    (x == 1 ? g1 : x == 2 ? g2 : g10).pass();
    return std::to_string(x);
  };
  auto it = pool.imap_unordered(work, std::vector<int>{10, 1, 2});
  g1.release();
  EXPECT_EQ(it.next(), std::optional<std::string>("1"));
  g2.release();
  EXPECT_EQ(it.next(), std::optional<std::string>("2"));
  g10.release();
  EXPECT_EQ(it.next(), std::optional<std::string>("10"));
  EXPECT_FALSE(it.next().has_value());

  ThreadPool one(1);
  std::vector<std::string> got;
  for (std::string& r : one.imap_unordered([](int x) { return std::to_string(x); }, std::vector<int>{10, 1, 2}))
    got.push_back(r);
  EXPECT_EQ(got, (std::vector<std::string>{"10", "1", "2"}));
  std::vector<int> in;
  for (int i = 0; i < 1000; ++i) in.push_back(i);
  long sum = 0;
  std::size_t n = 0;
  for (int r : pool.imap_unordered([](int x) { return x * 2; }, in)) sum += r, ++n;
  EXPECT_EQ(n, 1000u);
  EXPECT_EQ(sum, 999L * 1000);
}

// TP-3 (PL-7): a failure is rethrown in the caller at its place; the next
// call goes on with the remaining results.
TEST_F(ThreadPoolIo, ImapRethrowsAFailureAtItsPlaceAndGoesOn) {
  ThreadPool pool(2);
  auto it = pool.imap(
      [](int x) {
        if (x == 2) throw std::runtime_error("two");
        return x;
      },
      std::vector<int>{0, 1, 2, 3, 4});
  EXPECT_EQ(it.next(), std::optional<int>(0));
  EXPECT_EQ(it.next(), std::optional<int>(1));
  EXPECT_THROW(it.next(), std::runtime_error);
  EXPECT_EQ(it.next(), std::optional<int>(3));
  EXPECT_EQ(it.next(), std::optional<int>(4));
  EXPECT_FALSE(it.next().has_value());
}

// An input range whose iterator throws after two items (gevent's error_iter).
struct ExpectedException : std::runtime_error {
  ExpectedException() : std::runtime_error("expected") {}
};
struct ErrorRange {
  struct iterator {
    int i = 0;
    int operator*() const { return i; }
    iterator& operator++() {
      if (++i == 2) throw ExpectedException();
      return *this;
    }
    bool operator!=(const iterator& o) const { return i != o.i; }
  };
  iterator begin() const { return {}; }
  iterator end() const { return {3}; }
};

// TP-3 (TestErrorInIterator): an exception from the input's iterator
// reaches map's caller, and imap_unordered's consumer after the results of
// the inputs before it.
TEST_F(ThreadPoolIo, AnInputIteratorThatThrowsReachesTheCaller) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.map([](int x) { return x; }, ErrorRange{}), ExpectedException);
  auto it = pool.imap_unordered([](int x) { return x; }, ErrorRange{});
  int values = 0, errors = 0;
  for (;;) {
    try {
      if (!it.next()) break;
      ++values;
    } catch (const ExpectedException&) {
      ++errors;
    }
  }
  EXPECT_EQ(values, 2);
  EXPECT_EQ(errors, 1);
  auto ordered = pool.imap([](int x) { return x; }, ErrorRange{});
  EXPECT_EQ(ordered.next(), std::optional<int>(0));
  EXPECT_EQ(ordered.next(), std::optional<int>(1));
  EXPECT_THROW(ordered.next(), ExpectedException);
  EXPECT_FALSE(ordered.next().has_value());
  pool.wait_idle();
}

// TP-3: imap over an empty range ends at once, starting no thread.
TEST_F(ThreadPoolIo, ImapOverAnEmptyRangeEndsAtOnce) {
  ThreadPool pool(2);
  EXPECT_FALSE(pool.imap([](int x) { return x; }, std::vector<int>{}).next().has_value());
  EXPECT_FALSE(pool.imap_unordered([](int x) { return x; }, std::vector<int>{}).next().has_value());
  EXPECT_EQ(pool.threads(), 0u);
}

// TP-3: imap keeps at most maxsize inputs in flight (gevent's spawn blocks
// there); the rest are spawned as results come back.
TEST_F(ThreadPoolIo, ImapKeepsAtMostMaxsizeInputsInFlight) {
  ThreadPool pool(2);
  Gate gate;
  std::vector<int> in;
  for (int i = 0; i < 10; ++i) in.push_back(i);
  auto it = pool.imap(
      [&](int x) {
        if (x < 2) gate.pass();
        return x;
      },
      in);
  fern::sleep(0);  // the feeder runs until it waits for room
  gate.wait_arrived(2);
  EXPECT_EQ(pool.pending(), 2u);
  EXPECT_EQ(it.size(), 2u);
  gate.release();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(it.next(), std::optional<int>(i));
  EXPECT_FALSE(it.next().has_value());
}

// TP-3, a hostile caller: an imap dropped halfway, its work in flight
// blocked in the workers. The work finishes, the feeder goes on to the end,
// and nothing leaks (the fixture checks greenlets, timers, fds).
TEST_F(ThreadPoolIo, AnImapDroppedHalfwayLetsItsWorkFinish) {
  ThreadPool pool(2);
  Gate gate;
  std::atomic<int> ran{0};
  fern::AnyTask feeder;
  {
    std::vector<int> in;
    for (int i = 0; i < 20; ++i) in.push_back(i);
    auto it = pool.imap(
        [&](int x) {
          if (x >= 1) gate.pass();
          ++ran;
          return x;
        },
        in);
    EXPECT_EQ(it.next(), std::optional<int>(0));
    feeder = it.feeder();
    gate.wait_arrived(1);
  }  // dropped while a job waits at the gate
  gate.release();
  feeder->join();
  pool.wait_idle();
  EXPECT_EQ(ran.load(), 20);
  fern::Hub::current().run_until_idle();
}

// TP-3 (TP-5's rule): imap from one of the pool's own threads runs fn
// inline there, so a size-1 pool does not wait for itself.
TEST_F(ThreadPoolIo, ImapFromAWorkerRunsInline) {
  ThreadPool pool(1);
  std::vector<int> got = pool.apply([&] {
    std::vector<int> out;
    for (int r : pool.imap([](int x) { return x * 3; }, std::vector<int>{1, 2, 3})) out.push_back(r);
    return out;
  });
  EXPECT_EQ(got, (std::vector<int>{3, 6, 9}));
}

TEST_F(ThreadPoolIo, ManyGreenletsShareThePool) {
  ThreadPool pool(4);
  std::vector<fern::Task<long>> tasks;
  for (int i = 0; i < 50; ++i)
    tasks.push_back(fern::spawn([&pool, i] { return pool.apply([i] { return long(i) * 2; }); }));
  long sum = 0;
  for (auto& t : tasks) sum += t.get();
  EXPECT_EQ(sum, 2 * (49 * 50 / 2));
}

// IO-9: resolution runs in the pool and blocks only the caller
TEST_F(ThreadPoolIo, GethostbynameResolvesLocalhost) {
  EXPECT_EQ(fern::gethostbyname("localhost"), "127.0.0.1");
  EXPECT_EQ(fern::gethostbyname("127.0.0.1"), "127.0.0.1");
  // Python's two names of its own: the wildcard and the broadcast address.
  EXPECT_EQ(fern::gethostbyname(""), "0.0.0.0");
  EXPECT_EQ(fern::gethostbyname("<broadcast>"), "255.255.255.255");
}

// IO-9
TEST_F(ThreadPoolIo, GetaddrinfoReturnsNumericAddressesWithoutAThread) {
  auto infos = fern::getaddrinfo("::1", "80", AF_UNSPEC, SOCK_STREAM);
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].address.to_string(), "[::1]:80");
}

// IO-9: errors carry the EAI code
TEST_F(ThreadPoolIo, AnUnknownNameRaisesResolveErrorWithTheEaiCode) {
  try {
    fern::getaddrinfo("no-such-host.invalid", "80");
    FAIL();
  } catch (const fern::ResolveError& e) {
    EXPECT_TRUE(e.eai() == EAI_NONAME || e.eai() == EAI_AGAIN || e.eai() == EAI_FAIL) << e.eai();
    EXPECT_EQ(&e.code().category(), &fern::gai_category());
  }
  EXPECT_THROW(fern::getaddrinfo("127.0.0.1", "no-such-service-name"), fern::ResolveError);
}

// glibc cuts a numeric service to 16 bits ("65536" would be port 0, a
// silently wrong port): outside 0..65535 is EAI_SERVICE, for a numeric host
// (answered inline) and a name (in the pool) alike.
TEST_F(ThreadPoolIo, APortNumberOutsideItsRangeIsEaiServiceNotWrapped) {
  for (const char* host : {"127.0.0.1", "localhost"})
    for (const char* service : {"65536", "99999999999", "-65535", " 70000", "+65536", "18446744073709551617"}) {
      try {
        auto infos = fern::getaddrinfo(host, service, AF_INET, SOCK_STREAM);
        ADD_FAILURE() << host << " " << service << ": port " << (infos.empty() ? -1 : infos[0].address.port());
      } catch (const fern::ResolveError& e) {
        EXPECT_EQ(e.eai(), EAI_SERVICE) << host << " " << service;
      }
    }
  EXPECT_EQ(fern::getaddrinfo("127.0.0.1", "65535", AF_INET, SOCK_STREAM).at(0).address.port(), 65535);
  EXPECT_EQ(fern::getaddrinfo("127.0.0.1", "0", AF_INET, SOCK_STREAM).at(0).address.port(), 0);
}

// A NUL would cut the name short under getaddrinfo(3): refused instead.
TEST_F(ThreadPoolIo, ANameWithANulInsideIsRefused) {
  using namespace std::string_literals;
  EXPECT_THROW(fern::getaddrinfo("localhost\0.evil.example"s, "80"), std::invalid_argument);
  EXPECT_THROW(fern::getaddrinfo("localhost", "80\0"s), std::invalid_argument);
  EXPECT_THROW(fern::gethostbyname("localhost\0x"s), std::invalid_argument);
}

TEST_F(ThreadPoolIo, GetnameinfoMapsLoopbackBack) {
  auto ni = fern::getnameinfo(fern::Address::ip("127.0.0.1", 80), NI_NUMERICHOST | NI_NUMERICSERV);
  EXPECT_EQ(ni.host, "127.0.0.1");
  EXPECT_EQ(ni.service, "80");
  auto named = fern::getnameinfo(fern::Address::ip("127.0.0.1", 80), NI_NUMERICSERV);
  EXPECT_FALSE(named.host.empty());
}

}  // namespace
