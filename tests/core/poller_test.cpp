// The poller contract (issue: hub), run against every backend built here:
// readiness per direction, one event per fd, interest changes, timeouts that
// never end early, errors, stale events after removal (generations), and
// reinit() in a fork child. SEMANTICS: no id is strictly for the poller; it
// underlies the HUB and IO ids. Only pipes and socketpairs; no sleeps; the
// only timing assertions are lower bounds.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "fern/core/poller.h"

namespace {

using fern::kReadable;
using fern::kWritable;
using fern::PollEvent;
using fern::Poller;

constexpr std::int64_t kLong = 5'000'000'000;  // bounds waits that must succeed
constexpr unsigned kBoth = kReadable | kWritable;

std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Every fd below 1024 that is open: the leak check compares these sets.
std::vector<int> open_fds() {
  std::vector<int> fds;
  for (int fd = 0; fd < 1024; ++fd) {
    if (fcntl(fd, F_GETFD) != -1) fds.push_back(fd);
  }
  return fds;
}

// Owns one fd; closes it at scope end unless closed earlier.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct FdPair {
  Fd a;  // a pipe's read end
  Fd b;  // a pipe's write end
};

FdPair make_pipe() {
  int p[2];
  if (pipe(p) != 0) throw std::system_error(errno, std::system_category(), "pipe");
  return FdPair{Fd(p[0]), Fd(p[1])};
}

FdPair make_socketpair() {
  int s[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, s) != 0) {
    throw std::system_error(errno, std::system_category(), "socketpair");
  }
  return FdPair{Fd(s[0]), Fd(s[1])};
}

void write_byte(const Fd& fd) {
  if (write(fd.get(), "x", 1) != 1) throw std::system_error(errno, std::system_category(), "write");
}

// Runs f and returns the errno of the std::system_error it throws (0: none).
template <class F>
int errno_thrown_by(F f) {
  try {
    f();
  } catch (const std::system_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("fern: ", 0), 0u) << e.what();
    return e.code().value();
  }
  return 0;
}

class PollerContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    alarm(60);  // SIGALRM's default action ends a hung test
    fds_before_ = open_fds();
    poller_ = Poller::create(GetParam());
    if (!poller_) GTEST_SKIP() << GetParam() << " is not built on this platform";
  }
  void TearDown() override {
    poller_.reset();
    alarm(0);
    EXPECT_EQ(open_fds(), fds_before_) << "fds leaked";
  }

  std::vector<PollEvent> wait(std::int64_t timeout_ns, int max = 8) {
    std::vector<PollEvent> events(max);
    const int n = poller_->wait(timeout_ns, events.data(), max);
    events.resize(n);
    return events;
  }

  // Registers the read ends of two pipes holding a byte each; returns the
  // batch that reports both.
  std::vector<PollEvent> two_ready(FdPair& x, FdPair& y) {
    for (FdPair* p : {&x, &y}) {
      write_byte(p->b);
      poller_->add(p->a.get(), kReadable);
    }
    return wait(kLong);
  }

  std::unique_ptr<Poller> poller_;

 private:
  std::vector<int> fds_before_;
};

TEST_P(PollerContract, CreateByNameGivesThatBackend) {
  EXPECT_EQ(poller_->name(), GetParam());
  EXPECT_EQ(Poller::create("no-such-backend"), nullptr);
  EXPECT_NE(Poller::create(), nullptr);
}

TEST_P(PollerContract, ReadEndIsReadableAfterWrite) {
  FdPair p = make_pipe();
  poller_->add(p.a.get(), kReadable);
  EXPECT_TRUE(wait(0).empty());
  write_byte(p.b);
  auto events = wait(kLong);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fd, p.a.get());
  EXPECT_EQ(events[0].ready, kReadable);
  EXPECT_TRUE(poller_->is_current(events[0]));
  poller_->remove(p.a.get());
}

TEST_P(PollerContract, SocketWithRoomIsWritable) {
  FdPair s = make_socketpair();
  poller_->add(s.a.get(), kWritable);
  auto events = wait(kLong);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fd, s.a.get());
  EXPECT_EQ(events[0].ready, kWritable);
  poller_->remove(s.a.get());
}

TEST_P(PollerContract, BothInterestsReportInOneEvent) {
  FdPair s = make_socketpair();
  write_byte(s.b);
  poller_->add(s.a.get(), kBoth);
  auto events = wait(kLong);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fd, s.a.get());
  EXPECT_EQ(events[0].ready, kBoth);
  poller_->remove(s.a.get());
}

TEST_P(PollerContract, ModifySwitchesInterest) {
  FdPair s = make_socketpair();  // s.a: writable, nothing to read
  poller_->add(s.a.get(), kReadable);
  EXPECT_TRUE(wait(0).empty());
  poller_->modify(s.a.get(), kWritable);
  auto events = wait(kLong);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ready, kWritable);
  poller_->modify(s.a.get(), kReadable);
  EXPECT_TRUE(wait(0).empty());
  poller_->remove(s.a.get());
}

TEST_P(PollerContract, RemoveStopsEvents) {
  FdPair p = make_pipe();
  write_byte(p.b);
  poller_->add(p.a.get(), kReadable);
  poller_->remove(p.a.get());
  EXPECT_TRUE(wait(0).empty());
  poller_->remove(p.a.get());  // unknown fds are ignored
  poller_->remove(-1);
  poller_->remove(100000);
}

TEST_P(PollerContract, ZeroTimeoutReturnsZeroWhenNothingIsReady) {
  EXPECT_TRUE(wait(0).empty());
  FdPair p = make_pipe();
  poller_->add(p.a.get(), kReadable);
  EXPECT_TRUE(wait(0).empty());
  poller_->remove(p.a.get());
}

TEST_P(PollerContract, TimeoutNeverEndsEarly) {
  FdPair p = make_pipe();
  poller_->add(p.a.get(), kReadable);
  for (std::int64_t timeout : {std::int64_t{2'000'000}, std::int64_t{200'000}}) {
    for (int i = 0; i < 5; ++i) {
      const std::int64_t start = now_ns();
      EXPECT_TRUE(wait(timeout).empty());
      EXPECT_GE(now_ns() - start, timeout) << "wait(" << timeout << ") ended early";
    }
  }
  poller_->remove(p.a.get());
}

TEST_P(PollerContract, PeerHangupWakesBothDirections) {
  FdPair s = make_socketpair();
  poller_->add(s.a.get(), kReadable);
  s.b.reset();
  auto events = wait(kLong);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fd, s.a.get());
  EXPECT_EQ(events[0].ready, kBoth);
  poller_->remove(s.a.get());
}

TEST_P(PollerContract, ClosedWriterWakesReaderOfPipe) {
  FdPair p = make_pipe();
  poller_->add(p.a.get(), kReadable);
  p.b.reset();
  auto events = wait(kLong);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fd, p.a.get());
  EXPECT_NE(events[0].ready & kReadable, 0u);
  poller_->remove(p.a.get());
}

TEST_P(PollerContract, AddingAnInvalidFdThrowsEbadf) {
  EXPECT_EQ(errno_thrown_by([&] { poller_->add(-1, kReadable); }), EBADF);
  int closed = -1;
  {
    FdPair p = make_pipe();
    closed = p.a.get();
  }
  EXPECT_EQ(errno_thrown_by([&] { poller_->add(closed, kReadable); }), EBADF);
  EXPECT_TRUE(wait(0).empty());
}

TEST_P(PollerContract, AddingTwiceThrowsEexist) {
  FdPair p = make_pipe();
  poller_->add(p.a.get(), kReadable);
  EXPECT_EQ(errno_thrown_by([&] { poller_->add(p.a.get(), kWritable); }), EEXIST);
  poller_->remove(p.a.get());
}

TEST_P(PollerContract, ModifyingAnUnregisteredFdThrowsEnoent) {
  FdPair p = make_pipe();
  EXPECT_EQ(errno_thrown_by([&] { poller_->modify(p.a.get(), kReadable); }), ENOENT);
  poller_->add(p.a.get(), kReadable);
  poller_->remove(p.a.get());
  EXPECT_EQ(errno_thrown_by([&] { poller_->modify(p.a.get(), kReadable); }), ENOENT);
}

TEST_P(PollerContract, EmptyInterestThrowsInvalidArgument) {
  FdPair p = make_pipe();
  EXPECT_THROW(poller_->add(p.a.get(), fern::kNone), std::invalid_argument);
  poller_->add(p.a.get(), kReadable);
  EXPECT_THROW(poller_->modify(p.a.get(), fern::kNone), std::invalid_argument);
  poller_->remove(p.a.get());
}

TEST_P(PollerContract, EventOfFdRemovedEarlierInTheBatchIsStale) {
  FdPair x = make_pipe(), y = make_pipe();
  auto batch = two_ready(x, y);
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_TRUE(poller_->is_current(batch[0]));
  poller_->remove(batch[1].fd);  // "dispatching" batch[0] removes the other fd
  EXPECT_FALSE(poller_->is_current(batch[1]));
  EXPECT_TRUE(poller_->is_current(batch[0]));
  poller_->remove(x.a.get());
  poller_->remove(y.a.get());
}

TEST_P(PollerContract, EventOfFdReaddedEarlierInTheBatchIsStale) {
  FdPair x = make_pipe(), y = make_pipe();
  auto batch = two_ready(x, y);
  ASSERT_EQ(batch.size(), 2u);
  poller_->remove(batch[1].fd);
  poller_->add(batch[1].fd, kReadable);
  EXPECT_FALSE(poller_->is_current(batch[1]));
  EXPECT_TRUE(poller_->is_current(batch[0]));
  auto fresh = wait(kLong);
  ASSERT_EQ(fresh.size(), 2u);
  EXPECT_TRUE(poller_->is_current(fresh[0]));
  EXPECT_TRUE(poller_->is_current(fresh[1]));
  poller_->remove(x.a.get());
  poller_->remove(y.a.get());
}

TEST_P(PollerContract, EventOfFdModifiedEarlierInTheBatchStaysCurrent) {
  FdPair x = make_pipe(), y = make_pipe();
  auto batch = two_ready(x, y);
  ASSERT_EQ(batch.size(), 2u);
  poller_->modify(batch[1].fd, kBoth);
  EXPECT_TRUE(poller_->is_current(batch[1]));
  poller_->remove(x.a.get());
  poller_->remove(y.a.get());
}

TEST_P(PollerContract, BatchLargerThanMaxIsReportedAcrossWaits) {
  FdPair x = make_pipe(), y = make_pipe();
  ASSERT_EQ(two_ready(x, y).size(), 2u);
  const auto first = wait(kLong, 1);
  const auto second = wait(kLong, 1);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(first[0].fd, second[0].fd);
  poller_->remove(x.a.get());
  poller_->remove(y.a.get());
}

// The child's remove() after reinit() must not reach the parent's kernel
// object: with a shared epoll instance the parent would stop seeing the fd.
TEST_P(PollerContract, ReinitGivesAForkChildItsOwnRegistrations) {
  FdPair p = make_pipe();
  write_byte(p.b);
  poller_->add(p.a.get(), kReadable);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 0;
    try {
      poller_->reinit();
      PollEvent ev[4];
      const int n = poller_->wait(kLong, ev, 4);
      if (n != 1 || ev[0].fd != p.a.get() || ev[0].ready != kReadable) code = 2;
      poller_->remove(p.a.get());
      if (poller_->wait(0, ev, 4) != 0) code = 3;
    } catch (...) {
      code = 4;
    }
    _exit(code);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2: no readiness, 3: remove failed, 4: threw";
  auto events = wait(kLong);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fd, p.a.get());
  EXPECT_EQ(events[0].ready, kReadable);
  poller_->remove(p.a.get());
}

// Every backend built here: epoll and poll on Linux, kqueue and poll on
// macOS and the BSDs.
std::vector<std::string> backends_built_here() {
  std::vector<std::string> names;
  for (const char* name : {"epoll", "kqueue", "poll"}) {
    if (Poller::create(name)) names.emplace_back(name);
  }
  return names;
}

INSTANTIATE_TEST_SUITE_P(Backends, PollerContract, ::testing::ValuesIn(backends_built_here()),
                         [](const auto& info) { return info.param; });

}  // namespace
