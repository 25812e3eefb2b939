// close and dup2 are async-signal-safe in libc (a signal handler, a fork
// child before exec may call them): the hooks' bookkeeping for an fd no
// greenlet waits on allocates nothing. Its own binary: it replaces
// operator new to count allocations.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "fern/core/task.h"
#include "fern/io/wait.h"
#include "hooks/hooks_fixture.h"

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using AllocHooks = fern::testing::HooksTest;

// A socket a greenlet read from (the hub keeps its registration between
// waits), a pipe, and dup2 over a used socket: no allocation.
TEST_F(AllocHooks, CloseAndDup2OfAnFdNobodyWaitsOnAllocateNothing) {
  fern::testing::SocketPair used, other;
  auto reader = fern::spawn([&] {
    char c;
    EXPECT_EQ(read(used.fd[0], &c, 1), 1);
  });
  fern::sleep(0);
  ASSERT_EQ(write(used.fd[1], "x", 1), 1);
  reader.join();
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  long before = g_allocations.load();
  EXPECT_EQ(dup2(other.fd[0], used.fd[1]), used.fd[1]);
  EXPECT_EQ(close(used.fd[0]), 0);
  EXPECT_EQ(close(pipe_fds[0]), 0);
  EXPECT_EQ(close(pipe_fds[1]), 0);
  EXPECT_EQ(g_allocations.load(), before);
  used.fd[0] = -1;
}

// fern::close (a Socket's close) of an fd nobody waits on makes no error
// for the waiters it has not: no allocation, no message formatted.
TEST_F(AllocHooks, FernCloseOfAnFdNobodyWaitsOnAllocatesNothing) {
  fern::testing::SocketPair used;
  auto reader = fern::spawn([&] { EXPECT_TRUE(fern::wait_read(used.fd[0])); });
  fern::sleep(0);
  ASSERT_EQ(write(used.fd[1], "x", 1), 1);
  reader.join();
  long before = g_allocations.load();
  EXPECT_EQ(fern::close(used.fd[0]), 0);
  EXPECT_EQ(g_allocations.load(), before);
  used.fd[0] = -1;
}

}  // namespace
