// select as Linux answers it: the timeval normalised and written back as
// the kernel does, sets larger than FD_SETSIZE.
#include <sys/resource.h>
#include <sys/select.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fern/core/task.h"
#include "fern/hooks/detail.h"
#include "hooks/hooks_fixture.h"

namespace {

using fern::spawn;
using namespace fern::testing;
using SelectHooks = HooksTest;

struct Answer {
  Outcome outcome;
  timeval left{};
};

// select for a readable fd (it answers at once) with `tv`.
Answer select_readable(int fd, timeval tv) {
  fd_set r;
  FD_ZERO(&r);
  FD_SET(fd, &r);
  Answer a;
  a.outcome = outcome([&] { return select(fd + 1, &r, nullptr, nullptr, &tv); });
  a.left = tv;
  return a;
}

// Microseconds past a second carry into the seconds; a negative part is
// EINVAL; the time left written back is the kernel's, however large the
// timeout (its end saturates). The same answers as libc's.
TEST_F(SelectHooks, TimevalsAreTakenAndWrittenBackAsLibcs) {
  SocketPair p;
  ASSERT_EQ(write(p.fd[1], "x", 1), 1);
  const std::vector<timeval> timeouts = {{0, 1'500'000}, {3, 2'000'000}, {LONG_MAX / 2, 0}, {LONG_MAX, 0},
                                         {LONG_MAX, 1'999'999}, {1, -1}, {-1, 0}};
  std::vector<Answer> libc;
  fern::hooks::unpatch(fern::hooks::kSelect);
  for (timeval tv : timeouts) libc.push_back(select_readable(p.fd[0], tv));
  fern::hooks::patch_all();
  std::vector<Answer> hooked = spawn([&] {
    std::vector<Answer> got;
    for (timeval tv : timeouts) got.push_back(select_readable(p.fd[0], tv));
    return got;
  }).get();
  for (std::size_t i = 0; i < timeouts.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(hooked[i].outcome, libc[i].outcome);
    // The same second, but for the instant between the two calls.
    EXPECT_LE(std::abs(hooked[i].left.tv_sec - libc[i].left.tv_sec), 1);
  }
  EXPECT_EQ(libc[0].left.tv_sec, 1);
  EXPECT_EQ(libc[1].left.tv_sec, 4);
}

// A caller's set larger than FD_SETSIZE, with nfds past it: the kernel
// reads it up to its fd table's size.
TEST_F(SelectHooks, SetsLargerThanFdSetsizeWork) {
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  constexpr int kHigh = FD_SETSIZE + 500;
  if (limit.rlim_cur <= kHigh) GTEST_SKIP() << "RLIMIT_NOFILE below " << kHigh;
  SocketPair p;
  ASSERT_EQ(dup2(p.fd[0], kHigh), kHigh);
  ASSERT_EQ(write(p.fd[1], "x", 1), 1);
  constexpr int kBits = 8 * sizeof(unsigned long);
  std::vector<unsigned long> set(4 * FD_SETSIZE / kBits, 0);
  set[kHigh / kBits] |= 1UL << (kHigh % kBits);
  auto g = spawn([&] {
    timeval tv{5, 0};
    EXPECT_EQ(select(4 * FD_SETSIZE, reinterpret_cast<fd_set*>(set.data()), nullptr, nullptr, &tv), 1);
  });
  g.join();
  EXPECT_EQ(set[kHigh / kBits], 1UL << (kHigh % kBits));
  close(kHigh);
}

// One fd_set passed as both the read and the write set: the kernel reads
// both, then writes the answers back one after the other, so the set ends
// as the write set's answer (the count has both). Here one fd is readable
// and not writable (its send buffer full), the other writable only.
TEST_F(SelectHooks, ASetPassedTwiceEndsAsTheKernelWritesItBack) {
  SocketPair full, idle;
  std::vector<char> chunk(4096, 'x');
  while (FERN_REAL(send)(full.fd[0], chunk.data(), chunk.size(), MSG_DONTWAIT) > 0) {
  }
  ASSERT_EQ(write(full.fd[1], "r", 1), 1);
  auto select_both = [&] {
    fd_set s;
    FD_ZERO(&s);
    FD_SET(full.fd[0], &s);
    FD_SET(idle.fd[0], &s);
    timeval tv{1, 0};
    int n = select(std::max(full.fd[0], idle.fd[0]) + 1, &s, &s, nullptr, &tv);
    return std::vector<int>{n, FD_ISSET(full.fd[0], &s) != 0, FD_ISSET(idle.fd[0], &s) != 0};
  };
  fern::hooks::unpatch(fern::hooks::kSelect);
  std::vector<int> libc = select_both();
  fern::hooks::patch_all();
  EXPECT_EQ(libc, (std::vector<int>{2, 0, 1}));
  EXPECT_EQ(spawn(select_both).get(), libc);
}

// nfds 0 with sets and a timeout (a portable sleep): the sets are not read
// or written, the answer is 0 (under UBSan the empty copy-back was a
// memcpy from a null pointer).
TEST_F(SelectHooks, NoFdsWithSetsIsASleepThatLeavesTheSetsAlone) {
  auto sleeper = spawn([] {
    fd_set r, w;
    std::memset(&r, 0xff, sizeof r);
    std::memset(&w, 0xff, sizeof w);
    timeval tv{0, 1000};
    EXPECT_EQ(select(0, &r, &w, nullptr, &tv), 0);
    EXPECT_TRUE(FD_ISSET(0, &r) && FD_ISSET(0, &w));
  });
  sleeper.join();
}

}  // namespace
