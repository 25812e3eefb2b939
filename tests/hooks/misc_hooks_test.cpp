// Name resolution, what is hooked, and calls made before main.
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/sync/event.h"
#include "hooks/hooks_fixture.h"

namespace {

using fern::spawn;
using Vec = std::vector<std::string>;
using MiscHooks = fern::testing::HooksTest;

// Before main (and before the test framework's own set-up): a socketpair
// round trip and a sleep, with the real functions found on first use.
struct BeforeMain {
  bool ok = false;
  BeforeMain() {
    int sv[2];
    char c = 0;
    ok = socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 && write(sv[0], "m", 1) == 1 && read(sv[1], &c, 1) == 1 &&
         c == 'm' && usleep(1) == 0 && close(sv[0]) == 0 && close(sv[1]) == 0;
  }
} before_main;

TEST_F(MiscHooks, CallsBeforeMainReachLibc) { EXPECT_TRUE(before_main.ok); }

TEST_F(MiscHooks, GetaddrinfoParksWhileAWorkerResolves) {
  addrinfo* res = nullptr;
  auto resolver = spawn([&] {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    log.push_back("resolving");
    EXPECT_EQ(getaddrinfo("localhost", "80", &hints, &res), 0);
    log.push_back("resolved");
  });
  auto other = spawn([&] { log.push_back("other"); });
  fern::joinall(resolver, other);
  EXPECT_EQ(log, (Vec{"resolving", "other", "resolved"}));
  ASSERT_NE(res, nullptr);
  freeaddrinfo(res);  // libc's own list: libc frees it
}

TEST_F(MiscHooks, GetaddrinfoErrorsAreLibcs) {
  auto g = spawn([&] {
    addrinfo* res = nullptr;
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST;
    EXPECT_EQ(getaddrinfo("not-a-number", nullptr, &hints, &res), EAI_NONAME);
    EXPECT_EQ(getaddrinfo("127.0.0.1", "no-such-service-fern", nullptr, &res), EAI_SERVICE);
  });
  g.join();
}

TEST_F(MiscHooks, GethostbynameParks) {
  auto g = spawn([&] {
    hostent* h = gethostbyname("localhost");
    ASSERT_NE(h, nullptr);
    EXPECT_EQ(h->h_addrtype, AF_INET);
    hostent entry;
    char buf[1024];
    hostent* result = nullptr;
    int herr = 0;
    EXPECT_EQ(gethostbyname_r("localhost", &entry, buf, sizeof buf, &result, &herr), 0);
    ASSERT_EQ(result, &entry);
    // Every pointer of the result is in the caller's buffer.
    auto inside = [&](const void* p) { return p >= buf && p < buf + sizeof buf; };
    EXPECT_TRUE(inside(entry.h_name));
    ASSERT_TRUE(inside(entry.h_addr_list));
    ASSERT_TRUE(inside(entry.h_addr_list[0]));
    EXPECT_EQ(entry.h_length, 4);
    EXPECT_EQ(std::memcmp(entry.h_addr_list[0], "\x7f\0\0\x01", 4), 0);
    for (char** a = entry.h_aliases; *a; ++a) EXPECT_TRUE(inside(*a));
    EXPECT_EQ(gethostbyname_r("localhost", &entry, buf, 8, &result, &herr), ERANGE);
    EXPECT_EQ(result, nullptr);
  });
  g.join();
}

// Two host names of /etc/hosts that libc resolves to different canonical
// names (each its own), or fewer.
std::vector<std::string> two_distinct_hosts() {
  std::vector<std::string> names;
  sethostent(0);
  while (hostent* h = gethostent()) {
    std::string name = h->h_name;
    if (h->h_addrtype != AF_INET || (!names.empty() && names[0] == name)) continue;
    hostent* again = gethostbyname(name.c_str());  // libc's, unpatched
    if (again && name == again->h_name) names.push_back(name);
    if (names.size() == 2) break;
  }
  endhostent();
  return names;
}

// libc's result buffer is per thread, valid until that thread's next call:
// a greenlet's is its own, valid until its next call, whatever other
// greenlets resolve meanwhile (a buffer of the thread is rewritten, or
// reallocated, under a call parked with it).
TEST_F(MiscHooks, GethostbynameResultsAreEachGreenletsOwn) {
  fern::hooks::unpatch(fern::hooks::kDns);
  std::vector<std::string> names = two_distinct_hosts();
  fern::hooks::patch_all();
  if (names.size() < 2) GTEST_SKIP() << "no two host names in /etc/hosts";
  fern::Event resolved[2];
  auto lookup = [&](int i) {
    return spawn([&, i] {
      hostent* h = gethostbyname(names[i].c_str());
      resolved[i].set();
      resolved[1 - i].wait();  // the other greenlet's call has returned too
      return h ? std::string(h->h_name) : std::string("(null)");
    });
  };
  auto first = lookup(0);
  auto second = lookup(1);
  EXPECT_EQ(first.get(), names[0]);
  EXPECT_EQ(second.get(), names[1]);
}

// The worker's buffer is what the result needs, not the length the caller
// gives: a huge one is fine (libc writes only what it uses).
TEST_F(MiscHooks, GethostbynameRWithAHugeBufferLengthAllocatesWhatTheResultNeeds) {
  hostent entry;
  std::vector<char> buf(4096);
  hostent* result = nullptr;
  int herr = 0;
  const std::size_t huge = std::size_t{1} << 40;
  EXPECT_EQ(spawn([&] { return gethostbyname_r("localhost", &entry, buf.data(), huge, &result, &herr); }).get(), 0);
  ASSERT_EQ(result, &entry);
  EXPECT_EQ(std::memcmp(entry.h_addr_list[0], "\x7f\0\0\x01", 4), 0);
}

// The lookup owns what it reads and writes: a resolving greenlet killed
// meanwhile leaves a worker that touches none of its memory.
TEST_F(MiscHooks, AResolvingGreenletCanBeKilled) {
  auto resolver = spawn([&] {
    std::string host = "localhost";
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), "80", nullptr, &res) == 0) freeaddrinfo(res);
    hostent entry;
    std::vector<char> buf(1024);
    hostent* result = nullptr;
    int herr = 0;
    (void)gethostbyname_r(host.c_str(), &entry, buf.data(), buf.size(), &result, &herr);
  });
  fern::sleep(0);
  resolver.kill();
  fern::default_thread_pool().wait_idle();
}

TEST_F(MiscHooks, PatchedFunctionsListsEveryHookAndItsState) {
  auto all = fern::hooks::patched_functions();
  EXPECT_GE(all.size(), 30u);
  EXPECT_TRUE(fern::hooks::is_patched("select"));
  EXPECT_FALSE(fern::hooks::is_patched("close")) << "bookkeeping only";
  EXPECT_FALSE(fern::hooks::is_patched("fopen")) << "not interposed";
  fern::hooks::unpatch(fern::hooks::kSelect);
  EXPECT_FALSE(fern::hooks::is_patched("select"));
  EXPECT_TRUE(fern::hooks::is_patched("recv"));
  fern::hooks::patch_select();
  EXPECT_TRUE(fern::hooks::is_patched("poll"));
  EXPECT_EQ(fern::hooks::patched_groups(), unsigned{fern::hooks::kAll});
}

TEST_F(MiscHooks, ASecondReaderOnOneSocketIsATypedError) {
  fern::testing::SocketPair p;
  auto first = spawn([&] {
    char c;
    EXPECT_EQ(read(p.fd[0], &c, 1), 1);
  });
  fern::sleep(0);
  auto second = spawn([&] {
    char c;
    EXPECT_THROW(read(p.fd[0], &c, 1), fern::ConcurrentObjectUseError);
  });
  second.join();
  EXPECT_EQ(write(p.fd[1], "x", 1), 1);
  first.join();
}

}  // namespace
