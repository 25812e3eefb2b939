#pragma once
// Fixture for death tests whose child exits with greenlets suspended: their
// stacks are abandoned on purpose, and LeakSanitizer, scanning at the exit,
// would call what they hold leaked and change the exit code. The child runs
// without leak detection; a fresh process each (threadsafe style: re-exec),
// except under an emulator, where the child cannot exec itself.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace fern::testing {

class ExitDeathTest : public ::testing::Test {
 protected:
  void SetUp() override {
#if !defined(FERN_TEST_UNDER_EMULATOR)
    GTEST_FLAG_SET(death_test_style, "threadsafe");
#endif
    const char* old = std::getenv("ASAN_OPTIONS");
    saved_ = old ? old : "";
    had_ = old != nullptr;
    setenv("ASAN_OPTIONS", (saved_ + ":detect_leaks=0").c_str(), 1);
  }
  void TearDown() override {
    if (had_) setenv("ASAN_OPTIONS", saved_.c_str(), 1);
    else unsetenv("ASAN_OPTIONS");
  }

 private:
  std::string saved_;
  bool had_ = false;
};

}  // namespace fern::testing
