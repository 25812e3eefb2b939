// The blocking watchdog: SEMANTICS HUB-16 (gevent's monitor thread reports a
// hub blocked longer than max_blocking_time).
#include <execinfo.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "fern/arch/thread_id.h"
#include "fern/core/clock.h"
#include "fern/core/task.h"
#include "fern/io/watchdog.h"
#include "io_fixture.h"

namespace {

using WatchdogIo = fern::testing::IoTest;

struct Reports {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<fern::BlockingReport> all;
  std::atomic<bool> any{false};

  void add(const fern::BlockingReport& r) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      all.push_back(r);
    }
    any = true;
    cv.notify_all();
  }
  std::size_t count() {
    std::lock_guard<std::mutex> lock(mutex);
    return all.size();
  }
};

// Spins without switching until the watchdog has reported, then goes on
// spinning for `after` (a lower bound: later samples must stay quiet).
extern "C" __attribute__((noinline)) void fern_test_block_the_loop(std::atomic<bool>* reported, fern::Nanos after) {
  fern::Nanos give_up = fern::monotonic_now() + 20'000'000'000;
  while (!reported->load() && fern::monotonic_now() < give_up) {
  }
  fern::Nanos until = fern::monotonic_now() + after;
  while (fern::monotonic_now() < until) {
  }
  asm volatile("");
}

// Reports go to `reports`, not to stderr.
fern::WatchdogOptions reporting_to(Reports& reports, double threshold) {
  fern::WatchdogOptions options;
  options.threshold = threshold;
  options.out = nullptr;
  options.on_report = [&reports](const fern::BlockingReport& r) { reports.add(r); };
  return options;
}

std::string symbols(const std::vector<void*>& frames) {
  std::string out;
  char** names = backtrace_symbols(frames.data(), static_cast<int>(frames.size()));
  for (std::size_t i = 0; names && i < frames.size(); ++i) out += std::string(names[i]) + "\n";
  std::free(names);
  return out;
}

// HUB-16
TEST_F(WatchdogIo, ReportsAGreenletThatBlocksTheLoopOnceWithItsBacktrace) {
  Reports reports;
  fern::Watchdog watchdog(reporting_to(reports, 0.05));
  auto blocker = fern::spawn([&] { fern_test_block_the_loop(&reports.any, 200'000'000); });
  const unsigned long ident = blocker->minimal_ident();  // given now: the report can name it
  blocker->join();
  ASSERT_EQ(reports.count(), 1u) << "one report per incident";
  const fern::BlockingReport& r = reports.all[0];
  EXPECT_EQ(r.thread, fern::arch::thread_id());
  EXPECT_GE(r.blocked_for, 0.05);
  ASSERT_TRUE(r.captured);
  EXPECT_EQ(r.greenlet_id, blocker->greenlet().id());
  EXPECT_EQ(r.task, static_cast<const void*>(blocker.operator->()));
  EXPECT_EQ(r.task_ident, ident);
  EXPECT_NE(symbols(r.frames).find("fern_test_block_the_loop"), std::string::npos) << symbols(r.frames);
}

// HUB-16: a hub waiting in its poller is idle, not blocked.
TEST_F(WatchdogIo, StaysQuietWhileTheHubWaits) {
  Reports reports;
  fern::Watchdog watchdog(reporting_to(reports, 0.02));
  fern::sleep(0.2);  // ten thresholds, all spent in the poller
  EXPECT_EQ(reports.count(), 0u);
}

TEST_F(WatchdogIo, OnlyOneRunsAtATime) {
  fern::WatchdogOptions options;
  options.out = nullptr;
  fern::Watchdog first(options);
  EXPECT_THROW(fern::Watchdog second(options), std::logic_error);
}

}  // namespace
