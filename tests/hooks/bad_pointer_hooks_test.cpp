// Memory the caller passes that cannot be read is libc's EFAULT (the kernel
// copies it in), never a crash in the hook that reads it first.
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/uio.h>
#include <time.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "fern/core/task.h"
#include "fern/hooks/detail.h"
#include "hooks/hooks_fixture.h"

namespace {

using fern::spawn;
using namespace fern::testing;
using BadPointerHooks = HooksTest;

// An address in the never-mapped first page, hidden from the compiler's
// access checks.
template <class T>
T* unmapped() {
  volatile std::uintptr_t at = 8;
  return reinterpret_cast<T*>(at);
}

std::vector<Outcome> bad_pointer_calls() {
  timeval tv{0, 1000};
  return {
      outcome([] { return nanosleep(unmapped<timespec>(), nullptr); }),
      Outcome{clock_nanosleep(CLOCK_MONOTONIC, 0, unmapped<timespec>(), nullptr), 0},
      outcome([&] { return select(3, unmapped<fd_set>(), nullptr, nullptr, &tv); }),
  };
}

TEST_F(BadPointerHooks, UnreadableArgumentsAreEfaultAsInLibc) {
  fern::hooks::unpatch(fern::hooks::kAll);
  std::vector<Outcome> libc = bad_pointer_calls();
  fern::hooks::patch_all();
  EXPECT_EQ(libc, (std::vector<Outcome>{{-1, EFAULT}, {EFAULT, 0}, {-1, EFAULT}}));
  EXPECT_EQ(spawn(bad_pointer_calls).get(), libc);
}

// ioctl is interposed patched or not: FIONBIO's flag is read as the kernel
// reads it.
TEST_F(BadPointerHooks, AnUnreadableFionbioFlagIsEfaultAsInLibc) {
  SocketPair p;
  Outcome libc = outcome([&] { return FERN_REAL(ioctl)(p.fd[0], FIONBIO, unmapped<int>()); });
  EXPECT_EQ(libc, (Outcome{-1, EFAULT}));
  EXPECT_EQ(outcome([&] { return ioctl(p.fd[0], FIONBIO, unmapped<int>()); }), libc);
  EXPECT_EQ(spawn([&] { return outcome([&] { return ioctl(p.fd[0], FIONBIO, unmapped<int>()); }); }).get(), libc);
}

// A msghdr or iovec array the kernel cannot read: its EFAULT, from a
// greenlet (where the hooks may finish a call in parts) and elsewhere.
std::vector<Outcome> unreadable_message_calls(int fd) {
  msghdr bad_iov{};
  bad_iov.msg_iov = unmapped<iovec>();
  bad_iov.msg_iovlen = 1;
  std::vector<Outcome> got;
  for (int flags : {0, static_cast<int>(MSG_WAITALL)}) {
    got.push_back(outcome([&] { return recvmsg(fd, unmapped<msghdr>(), flags); }));
    got.push_back(outcome([&] { return recvmsg(fd, &bad_iov, flags); }));
  }
  got.push_back(outcome([&] { return sendmsg(fd, unmapped<msghdr>(), 0); }));
  got.push_back(outcome([&] { return sendmsg(fd, &bad_iov, 0); }));
  got.push_back(outcome([&] { return writev(fd, unmapped<iovec>(), 1); }));
  got.push_back(outcome([&] { return readv(fd, unmapped<iovec>(), 1); }));
  return got;
}

TEST_F(BadPointerHooks, UnreadableMessagesAndIovecsAreEfaultAsInLibc) {
  SocketPair p;
  ASSERT_EQ(write(p.fd[1], "x", 1), 1);  // a receive would not wait
  const std::vector<Outcome> efault(8, Outcome{-1, EFAULT});
  EXPECT_EQ(unreadable_message_calls(p.fd[0]), efault);
  EXPECT_EQ(spawn([&] { return unreadable_message_calls(p.fd[0]); }).get(), efault);
}

}  // namespace
