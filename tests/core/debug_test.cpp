// Seeing inside: the greenlet registry, dump_greenlets (gevent's
// print_run_info) and the hub's loop statistics (issue 12; HUB-16 is the
// watchdog, in io/watchdog_test). The gdb commands: Debugger.* in ctest.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fern/core/debug.h"
#include "fern/core/task.h"
#include "fern/io/wait.h"
#include "fern/sync/event.h"
#include "fern/sync/queue.h"
#include "hub_fixture.h"

namespace {

using Debug = fern::testing::HubTest;

std::string dump() {
  char* buf = nullptr;
  std::size_t len = 0;
  std::FILE* f = open_memstream(&buf, &len);
  fern::dump_greenlets(f);
  std::fclose(f);
  std::string out(buf, len);
  std::free(buf);
  return out;
}

std::size_t listed() {
  std::string out = dump();
  std::size_t n = 0;
  for (std::size_t at = out.find("\n  #"); at != std::string::npos; at = out.find("\n  #", at + 1)) ++n;
  return n;
}

std::string line_with(const std::string& text, const std::string& needle) {
  std::size_t at = text.find(needle);
  if (at == std::string::npos) return {};
  std::size_t begin = text.rfind('\n', at) + 1;
  return text.substr(begin, text.find('\n', at) - begin);
}

TEST_F(Debug, DumpListsEveryGreenletWithItsStateAndParkSite) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  fern::Event event;
  fern::Queue<int> queue;
  auto sleeper = fern::spawn([] { fern::sleep(3600); });
  sleeper->set_name("sleeper");
  auto waiter = fern::spawn([&] { event.wait(); });
  waiter->set_name("waiter");
  auto getter = fern::spawn([&] { queue.get(); });
  getter->set_name("getter");
  auto reader = fern::spawn([&] { fern::wait_read(fds[0]); });
  reader->set_name("reader");
  auto pending = fern::spawn([] {});
  pending->set_name("pending");
  fern::Greenlet raw([] {});
  fern::sleep(0);
  pending = fern::spawn([] {});  // the first one ended; this one is queued
  pending->set_name("queued");

  std::string out = dump();
  char expect[64];
  EXPECT_NE(line_with(out, "\"sleeper\"").find("parked"), std::string::npos) << out;
  EXPECT_NE(line_with(out, "\"sleeper\"").find("  sleep"), std::string::npos) << out;
  std::snprintf(expect, sizeof expect, "Event.wait %p", static_cast<void*>(&event));
  EXPECT_NE(line_with(out, "\"waiter\"").find(expect), std::string::npos) << out;
  std::snprintf(expect, sizeof expect, "Queue.get %p", static_cast<void*>(&queue));
  EXPECT_NE(line_with(out, "\"getter\"").find(expect), std::string::npos) << out;
  std::snprintf(expect, sizeof expect, "fd read fd %d", fds[0]);
  EXPECT_NE(line_with(out, "\"reader\"").find(expect), std::string::npos) << out;
  EXPECT_NE(line_with(out, "\"queued\"").find("unstarted"), std::string::npos) << out;
  EXPECT_NE(line_with(out, "  main").find("running"), std::string::npos) << out;
  EXPECT_NE(line_with(out, "  hub").find("suspended"), std::string::npos) << out;
  char raw_line[32];
  std::snprintf(raw_line, sizeof raw_line, "#%-4lu unstarted", raw.id());
  EXPECT_NE(out.find(raw_line), std::string::npos) << out;
  EXPECT_NE(out.find("  loop: "), std::string::npos) << out;

  event.set();
  queue.put(1);
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  sleeper->kill();
  fern::joinall(waiter, getter, reader, pending);
  close(fds[0]);
  close(fds[1]);
}

TEST_F(Debug, ParkedStackUseIsWithinTheStack) {
  auto t = fern::spawn([] { fern::sleep(3600); });
  fern::sleep(0);
  std::string line = line_with(dump(), "<Task");
  unsigned long used = 0, size = 0;
  ASSERT_EQ(std::sscanf(line.substr(line.find("stack ")).c_str(), "stack %lu/%lu", &used, &size), 2) << line;
  EXPECT_GT(used, 0u);
  EXPECT_LT(used, size);
  t->kill();
}

TEST_F(Debug, DestroyedGreenletsLeaveTheListing) {
  std::size_t before = listed();
  {
    fern::Greenlet a([] {}), b([] {});
    EXPECT_EQ(listed(), before + 2);
    b.switch_to();
  }
  EXPECT_EQ(listed(), before);
}

TEST_F(Debug, LoopStatisticsCountCallbacksTimersAndFdEvents) {
  fern::Hub& hub = fern::Hub::current();
  hub.set_batch_timing(true);
  fern::LoopStats start = hub.stats();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  auto work = fern::spawn([&] {
    fern::wait_read(fds[0]);  // one fd event
    fern::sleep(0.001);       // one timer
    for (int i = 0; i < 10; ++i) fern::sleep(0);  // ten hand-offs or callbacks
  });
  work->join();
  hub.run_until_idle();  // the batch the join ended in is over
  fern::LoopStats now = hub.stats();
  EXPECT_GE(now.iterations - start.iterations, 3u);
  EXPECT_GE(now.callbacks - start.callbacks, 10u);
  EXPECT_EQ(now.timers - start.timers, 1u);
  EXPECT_EQ(now.fd_events - start.fd_events, 1u);
  EXPECT_GT(now.max_batch, 0);
  hub.set_batch_timing(false);
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
