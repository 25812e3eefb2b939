// Deadline and Duration: absolute, saturating, one rule for NaN/negative/inf
// (issue 7: "one deadline type").
#include "fern/core/deadline.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>

namespace fern {
namespace {
using namespace std::chrono_literals;

TEST(Deadline, NanAndNegativeSecondsMeanNow) {
  Nanos base = 1000;
  EXPECT_EQ(Deadline::after(NAN, base).nanos(), base);
  EXPECT_EQ(Deadline::after(-1.0, base).nanos(), base);
  EXPECT_EQ(Deadline::after(-INFINITY, base).nanos(), base);
  EXPECT_EQ(Duration(NAN).nanos(), 0);
  EXPECT_EQ(Duration(-5.0).nanos(), 0);
}

TEST(Deadline, InfiniteAndHugeSecondsMeanNever) {
  EXPECT_TRUE(Deadline::after(INFINITY).is_never());
  EXPECT_TRUE(Deadline::after(1e10).is_never() || Deadline::after(1e10).nanos() > monotonic_now());
  EXPECT_TRUE(Deadline::after(1e300).is_never());
  EXPECT_TRUE(Duration(1e300).is_forever());
  // Near the top of the clock the sum saturates instead of wrapping.
  Nanos top = Deadline::kNever - 10;
  EXPECT_TRUE(Deadline::after(1.0, top).is_never());
  EXPECT_TRUE(Deadline::after(std::chrono::hours::max(), 5).is_never());
  EXPECT_TRUE(Deadline::after(std::chrono::nanoseconds::max(), 5).is_never());
  EXPECT_TRUE(Duration(std::chrono::duration<double>(INFINITY)).is_forever());
}

TEST(Deadline, ChronoDurationsRoundUpAndNegativeMeansNow) {
  EXPECT_EQ(Deadline::after(250ms, 0).nanos(), 250'000'000);
  EXPECT_EQ(Deadline::after(-3s, 77).nanos(), 77);
  EXPECT_EQ(Duration(std::chrono::duration<long, std::pico>(1)).nanos(), 1);  // never early
  EXPECT_EQ(Duration(1500us).nanos(), 1'500'000);
}

TEST(Deadline, RemainingIsClampedAndNeverStaysNever) {
  Deadline d = Deadline::at(100);
  EXPECT_EQ(d.remaining(40), 60);
  EXPECT_EQ(d.remaining(100), 0);
  EXPECT_EQ(d.remaining(500), 0);
  EXPECT_TRUE(d.expired(100));
  EXPECT_FALSE(d.expired(99));
  EXPECT_EQ(Deadline::never().remaining(0), Deadline::kNever);
  EXPECT_EQ(Deadline::never().remaining_ms(0), -1);
  EXPECT_EQ(Deadline::at(1'000'001).remaining_ms(0), 2);  // rounded up
  EXPECT_EQ(Deadline::at(Deadline::kNever - 1).remaining_ms(0), std::numeric_limits<int>::max());
  EXPECT_EQ(earlier(Deadline::at(5), Deadline::never()), Deadline::at(5));
}

TEST(Deadline, SteadyClockTimePointsConvert) {
  Nanos before = monotonic_now();
  Deadline d = std::chrono::steady_clock::now() + 1s;
  EXPECT_GE(d.nanos(), before + 1'000'000'000 - 1'000'000);
  Deadline past = std::chrono::steady_clock::now() - 1s;
  EXPECT_TRUE(past.expired(monotonic_now()));
  Deadline far = std::chrono::steady_clock::time_point::max();
  EXPECT_TRUE(far.is_never() || far.nanos() > monotonic_now());
}

// Time points of any unit saturate like durations: far future is never, far
// past is expired, NaN is now; none of it overflows on the way (UBSan).
TEST(Deadline, SteadyClockTimePointsOfAnyUnitSaturate) {
  using std::chrono::steady_clock;
  using std::chrono::time_point;
  using Hours = time_point<steady_clock, std::chrono::hours>;
  using Seconds = time_point<steady_clock, std::chrono::duration<double>>;
  using Thirds = time_point<steady_clock, std::chrono::duration<long long, std::ratio<1, 3>>>;
  EXPECT_TRUE(Deadline(Hours::max()).is_never());
  // 2562048 hours is the first whole hour count past INT64_MAX nanoseconds
  // (2562047 h is 47 minutes short of it: on a machine up for less than an
  // hour, now + that still fits).
  EXPECT_TRUE(Deadline(std::chrono::time_point_cast<std::chrono::hours>(steady_clock::now()) +
                       std::chrono::hours(2562048))
                  .is_never());
  EXPECT_TRUE(Deadline(Hours::min()).expired(monotonic_now()));
  EXPECT_TRUE(Deadline(steady_clock::time_point::min()).expired(monotonic_now()));
  EXPECT_TRUE(Deadline(Seconds(Seconds::duration(std::nan("")))).expired(monotonic_now()));
  EXPECT_TRUE(Deadline(Seconds(Seconds::duration(INFINITY))).is_never());
  EXPECT_TRUE(Deadline(Seconds(Seconds::duration(-INFINITY))).expired(monotonic_now()));
  EXPECT_TRUE(Deadline(Seconds(Seconds::duration(1e300))).is_never());
  EXPECT_TRUE(Deadline(Thirds::max()).nanos() > monotonic_now());
  // Near now, still exact: a second ahead in hours' neighbour units.
  Nanos before = monotonic_now();
  Deadline d = std::chrono::time_point_cast<std::chrono::duration<long long, std::milli>>(steady_clock::now()) +
               std::chrono::seconds(1);
  EXPECT_GE(d.nanos(), before + 1'000'000'000 - 2'000'000);
  EXPECT_LE(d.nanos(), monotonic_now() + 1'000'000'000);
}

}  // namespace
}  // namespace fern
