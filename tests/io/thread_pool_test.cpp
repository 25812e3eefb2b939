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

// TP-1 (test_init_valueerror): 0 and a negative maxsize are refused, -1
// included (not read as a huge size)
TEST_F(ThreadPoolIo, ZeroOrNegativeMaxsizeIsRejected) {
  EXPECT_THROW(ThreadPool(0), std::invalid_argument);
  EXPECT_THROW(ThreadPool(-1), std::invalid_argument);
  int negative = -5;
  EXPECT_THROW(ThreadPool{negative}, std::invalid_argument);
  EXPECT_EQ(ThreadPool(std::size_t{3}).maxsize(), 3u);
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
