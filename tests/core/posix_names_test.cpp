// fern names that POSIX has too, called the way a program written against
// gevent reads: with `using namespace fern;` at file scope, where <unistd.h>'s
// ::sleep(unsigned) is just as visible. Each call must be fern's (it lets
// other greenlets run), never the C library's (which blocks the thread and
// lets nothing run).
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "hub_fixture.h"

using namespace fern;  // NOLINT: the point of this file

namespace {

using PosixNames = fern::testing::HubTest;

// Runs call() in main while a task appends to the log: fern's sleep lets the
// task run before the call returns; POSIX sleep would not.
template <class Call>
std::vector<std::string> around(Call call) {
  std::vector<std::string> log;
  auto t = spawn([&log] { log.push_back("task"); });
  call();
  log.push_back("after");
  t.join();
  return log;
}

TEST_F(PosixNames, SleepWithAPlainNumberIsFernsUnderUsingNamespace) {
  std::vector<std::string> yielded{"task", "after"};
  EXPECT_EQ(around([] { sleep(0); }), yielded);
  EXPECT_EQ(around([] { sleep(0.001); }), yielded);
  EXPECT_EQ(around([] { sleep(0.001f); }), yielded);
  EXPECT_EQ(around([] { sleep(0L); }), yielded);
  EXPECT_EQ(around([] { sleep(static_cast<short>(0)); }), yielded);
  EXPECT_EQ(around([] { sleep(std::chrono::milliseconds(1)); }), yielded);
  EXPECT_EQ(around([] { sleep(); }), yielded);
  EXPECT_EQ(around([] { fern::sleep(0u); }), yielded);
}

}  // namespace
