// Cooperative sockets: SEMANTICS IO-2, IO-3, IO-4, IO-7, and the faults of
// issue 8 (peer reset mid-send and mid-recv, refused connect, a timeout on
// each blocking call, close under a blocked greenlet). Ported in spirit
// from gevent's test__socket.py, test__socket_close.py, test__socket_timeout.py.
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fern/core/task.h"
#include "fern/io/resolver.h"
#include "fern/io/socket.h"
#include "io_fixture.h"

namespace {

using fern::Address;
using fern::Socket;
using fern::spawn;
using SocketIo = fern::testing::IoTest;
using fern::testing::listen_on;

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (char& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

void echo_roundtrip(const char* host) {
  Socket listener = listen_on(host);
  Address where = listener.local_address();
  auto server = spawn([&] {
    auto conn = listener.accept();
    EXPECT_EQ(conn.address.family(), where.family());
    std::string got;
    while (got.size() < 5) got += conn.socket.recv(64);
    conn.socket.sendall(got);
  });
  Socket c(where.family(), SOCK_STREAM);
  c.connect(where);
  c.sendall("hello");
  std::string back;
  while (back.size() < 5) back += c.recv(64);
  EXPECT_EQ(back, "hello");
  server.join();
}

// IO-7
TEST_F(SocketIo, TcpEchoesOverIPv4Loopback) { echo_roundtrip("127.0.0.1"); }

// IO-7
TEST_F(SocketIo, TcpEchoesOverIPv6Loopback) {
  if (!fern::testing::has_ipv6_loopback()) GTEST_SKIP() << "no ::1";
  echo_roundtrip("::1");
}

void udp_roundtrip(const char* host) {
  Address any = Address::ip(host, 0);
  Socket a(any.family(), SOCK_DGRAM), b(any.family(), SOCK_DGRAM);
  a.bind(any);
  b.bind(any);
  auto receiver = spawn([&] {
    auto got = a.recvfrom(100);
    EXPECT_EQ(got.data, "datagram");
    EXPECT_EQ(got.from, b.local_address());
    a.sendto("reply", got.from);
  });
  b.sendto("datagram", a.local_address());
  EXPECT_EQ(b.recvfrom(100).data, "reply");
  receiver.join();
}

TEST_F(SocketIo, UdpSendtoAndRecvfromOverIPv4) { udp_roundtrip("127.0.0.1"); }

TEST_F(SocketIo, UdpSendtoAndRecvfromOverIPv6) {
  if (!fern::testing::has_ipv6_loopback()) GTEST_SKIP() << "no ::1";
  udp_roundtrip("::1");
}

// A Unix stream echo at `path`, whose name both ends see as given.
void unix_echo(const std::string& path) {
  Socket listener(AF_UNIX, SOCK_STREAM);
  listener.bind(Address::unix_path(path));
  listener.listen();
  EXPECT_EQ(listener.local_address().host(), path);
  auto server = spawn([&] {
    auto conn = listener.accept();
    conn.socket.sendall(conn.socket.recv(16));
  });
  Socket c(AF_UNIX, SOCK_STREAM);
  c.connect(Address::unix_path(path));
  EXPECT_EQ(c.peer_address().host(), path);
  c.sendall("unix");
  EXPECT_EQ(c.recv(16), "unix");
  server.join();
}

TEST_F(SocketIo, UnixStreamSocketsConnectAndEcho) {
  std::string path = "/tmp/fern_io_test_" + std::to_string(getpid()) + ".sock";
  ::unlink(path.c_str());
  unix_echo(path);
  ::unlink(path.c_str());
}

// A path may fill all 108 bytes of sun_path with no NUL after it (Linux
// and Python take it); 109 is refused.
TEST_F(SocketIo, AUnixPathOfAll108BytesConnectsAnd109IsRefused) {
  char dir_template[] = "/tmp/fern_unix108_XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string path = dir + "/" + std::string(108 - dir.size() - 1, 's');
  ASSERT_EQ(path.size(), 108u);
  unix_echo(path);
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
  EXPECT_THROW(Address::unix_path(path + "x"), std::invalid_argument);
#ifdef __linux__
  unix_echo(std::string(1, '\0') + std::string(107, 'a'));  // abstract: all 108 bytes too
#endif
}

#ifdef __linux__
// A leading NUL names an abstract socket: exactly its bytes, no file.
TEST_F(SocketIo, AbstractUnixNamesConnectWithExactlyTheirBytes) {
  unix_echo(std::string(1, '\0') + "fern_io_test_" + std::to_string(getpid()));
}
#endif

// A NUL inside an address would be cut short by the C calls under it.
TEST_F(SocketIo, ANulInsideAnAddressIsRefused) {
  using namespace std::string_view_literals;
  EXPECT_THROW(Address::ip("127.0.0.1\0junk"sv, 80), std::invalid_argument);
  EXPECT_THROW(Address::ip("::1\0"sv, 80), std::invalid_argument);
  EXPECT_THROW(Address::unix_path("/tmp/a\0b"sv), std::invalid_argument);
  EXPECT_THROW(Address::unix_path(""), std::invalid_argument);
  EXPECT_THROW(Address::unix_path(std::string(200, 'a')), std::invalid_argument);
}

// A Unix stream listener with a backlog of 0, filled: the next connect
// meets EAGAIN (a timeout-0 connect_ex says so without waiting).
struct FullUnixListener {
  Address address = Address::unix_path(std::string(1, '\0') + "fern_full_backlog_" + std::to_string(getpid()));
  Socket listener{AF_UNIX, SOCK_STREAM};
  std::vector<Socket> queued;
  FullUnixListener() {
    listener.bind(address);
    listener.listen(0);
    for (int i = 0; i < 64; ++i) {
      Socket s(AF_UNIX, SOCK_STREAM);
      s.set_timeout(0.0);
      int err = s.connect_ex(address);
      if (err == EAGAIN) return;
      EXPECT_EQ(err, 0);
      queued.push_back(std::move(s));
    }
    ADD_FAILURE() << "64 connections fit in a backlog of 0";
  }
};

// IO-4: a full Unix backlog is no fd event (poll calls the connecting
// socket writable at once): connect backs off on a timer until its
// timeout, instead of spinning through the hub thousands of times.
TEST_F(SocketIo, ConnectToAFullUnixBacklogBacksOffUntilItsTimeout) {
  FullUnixListener full;
  Socket c(AF_UNIX, SOCK_STREAM);
  c.set_timeout(0.05);
  std::uint64_t before = fern::Hub::current().stats().iterations;
  EXPECT_EQ(c.connect_ex(full.address), ETIMEDOUT);
  EXPECT_LT(fern::Hub::current().stats().iterations - before, 40u) << "connect spun through the hub";
  EXPECT_THROW(c.connect(full.address), fern::SocketTimeout);
}

// ... and a connect without a timeout gets through once the listener
// accepts one of the queued connections.
TEST_F(SocketIo, ConnectToAFullUnixBacklogGoesThroughOnceTheListenerAccepts) {
  FullUnixListener full;
  bool connected = false;
  auto connector = spawn([&] {
    Socket c(AF_UNIX, SOCK_STREAM);
    c.connect(full.address);
    connected = true;
  });
  fern::sleep(0);
  EXPECT_FALSE(connected);
  full.listener.accept();
  connector.join();
  EXPECT_TRUE(connected);
}

// sendto to a Unix datagram address whose receive queue is full: poll
// calls the (unconnected) sender writable all the while, so sendto backs
// off on a timer until its timeout rather than spinning, and gets through
// once the receiver has read.
TEST_F(SocketIo, SendtoAFullUnixDatagramQueueBacksOffThenGetsThrough) {
  Address where = Address::unix_path(std::string(1, '\0') + "fern_full_dgram_" + std::to_string(getpid()));
  Socket receiver(AF_UNIX, SOCK_DGRAM);
  receiver.bind(where);
  Socket sender(AF_UNIX, SOCK_DGRAM);
  sender.set_timeout(0.05);
  int sent = 0;
  std::uint64_t before = 0;
  try {
    for (;; ++sent) {
      before = fern::Hub::current().stats().iterations;
      sender.sendto("d" + std::to_string(sent), where);
    }
  } catch (const fern::SocketTimeout& e) {
    EXPECT_STREQ(e.op(), "sendto");
  }
  EXPECT_LT(fern::Hub::current().stats().iterations - before, 40u) << "sendto spun through the hub";
  ASSERT_GT(sent, 0);
  sender.set_timeout(std::nullopt);
  auto writer = spawn([&] { sender.sendto("last", where); });
  fern::sleep(0);
  EXPECT_EQ(receiver.recv(16), "d0");
  writer.join();
  for (int i = 1; i < sent; ++i) EXPECT_EQ(receiver.recv(16), "d" + std::to_string(i));
  EXPECT_EQ(receiver.recv(16), "last");
}

std::uint16_t closed_port() {
  Socket s = listen_on();
  return s.local_address().port();  // closed when s goes: nothing listens there
}

// IO-7: connect to a closed port
TEST_F(SocketIo, ConnectToAClosedPortRaisesConnectionRefused) {
  Address a = Address::ip("127.0.0.1", closed_port());
  Socket c(AF_INET, SOCK_STREAM);
  try {
    c.connect(a);
    FAIL() << "connected to a closed port";
  } catch (const fern::ConnectionRefusedError& e) {
    EXPECT_EQ(e.code().value(), ECONNREFUSED);
    EXPECT_STREQ(e.op(), "connect");
  }
}

// IO-7
TEST_F(SocketIo, ConnectExReturnsTheErrno) {
  Socket c(AF_INET, SOCK_STREAM);
  EXPECT_EQ(c.connect_ex(Address::ip("127.0.0.1", closed_port())), ECONNREFUSED);
}

// IO-4: a timeout on each blocking call
TEST_F(SocketIo, RecvRaisesSocketTimeoutAfterTheSocketTimeout) {
  auto [a, b] = Socket::pair();
  a.set_timeout(0.05);
  fern::Nanos start = fern::monotonic_now();
  try {
    a.recv(10);
    FAIL();
  } catch (const fern::SocketTimeout& e) {
    EXPECT_EQ(e.code().value(), ETIMEDOUT);
    EXPECT_STREQ(e.op(), "recv");
    EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos);
  }
  EXPECT_GE(fern::monotonic_now() - start, 50'000'000);
}

// IO-1, IO-7: a stream read that did not fill its buffer makes the next one wait for
// readiness before reading (libuv's rule; it saves the EAGAIN recv of every
// request-response round trip). What a caller sees does not change: data
// already there, data that comes later, the end of the stream, the timeout.
TEST_F(SocketIo, AfterAShortReadTheNextRecvGetsDataAlreadyThereOrLaterOrTheEnd) {
  auto [a, b] = Socket::pair();
  b.sendall("ab");
  EXPECT_EQ(a.recv(10), "ab");  // short: the next recv waits first
  b.sendall("cd");
  EXPECT_EQ(a.recv(10), "cd");  // already there: the wait ends at once
  auto later = spawn([&b] { b.sendall("later"); });
  EXPECT_EQ(a.recv(10), "later");  // came while waiting
  later.join();
  b.close();
  EXPECT_EQ(a.recv(10), "");  // the end of the stream
}

// recv(0) returns nothing at once (CPython's, no system call), with no data
// there and after a short read, never waiting: the task ends in its first
// step; a datagram waiting is not consumed by it.
TEST_F(SocketIo, ARecvOfZeroBytesReturnsAtOnceAndConsumesNothing) {
  auto [a, b] = Socket::pair();
  auto idle = spawn([&a] { return a.recv(0); });
  fern::sleep(0);
  ASSERT_TRUE(idle.ready()) << "recv(0) waited for data";
  EXPECT_EQ(idle.get(), "");
  b.sendall("ab");
  EXPECT_EQ(a.recv(10), "ab");  // short
  auto zero = spawn([&a] { return a.recv(0); });
  fern::sleep(0);
  ASSERT_TRUE(zero.ready()) << "recv(0) after a short read waited for data";
  EXPECT_EQ(zero.get(), "");
  b.sendall("cd");
  EXPECT_EQ(a.recv(10), "cd");  // the stream is untouched
  auto [d1, d2] = Socket::pair(SOCK_DGRAM);
  d2.send("datagram");
  EXPECT_EQ(d1.recv(0), "");
  EXPECT_EQ(d1.recv(64), "datagram");
  a.close();
  EXPECT_THROW(a.recv(0), fern::SocketError);
}

// IO-4, IO-7: with timeout 0 (a non-blocking socket) connect does not wait:
// connect_ex answers EINPROGRESS (Python's), connect raises it, and the
// connection completes by itself (writable, SO_ERROR 0).
TEST_F(SocketIo, ATimeoutOfZeroConnectsWithoutWaitingAsANonBlockingSocket) {
  Socket l = listen_on();
  Socket c(AF_INET, SOCK_STREAM);
  c.set_timeout(0.0);
  const int rc = c.connect_ex(l.local_address());
  EXPECT_TRUE(rc == 0 || rc == EINPROGRESS) << rc;
  ASSERT_TRUE(fern::wait_write_for(c.fd(), 5.0));
  EXPECT_EQ(c.get_option(SOL_SOCKET, SO_ERROR), 0);
  auto accepted = l.accept();
  c.sendall("x");
  EXPECT_EQ(accepted.socket.recv(1), "x");
  Socket d(AF_INET, SOCK_STREAM);
  d.set_timeout(0.0);
  try {
    d.connect(l.local_address());
  } catch (const fern::SocketError& e) {
    EXPECT_EQ(e.code().value(), EINPROGRESS);
  }
}

// IO-4 after a short read
TEST_F(SocketIo, AfterAShortReadTheRecvTimeoutHoldsOnceForTheWholeCall) {
  auto [a, b] = Socket::pair();
  b.sendall("x");
  EXPECT_EQ(a.recv(10), "x");
  a.set_timeout(0.05);
  fern::Nanos start = fern::monotonic_now();
  EXPECT_THROW(a.recv(10), fern::SocketTimeout);
  EXPECT_GE(fern::monotonic_now() - start, 50'000'000);
  b.sendall("y");
  EXPECT_EQ(a.recv(10), "y");  // a timeout leaves the socket usable
}

// IO-4: timeout 0 is non-blocking, also after a short read
TEST_F(SocketIo, AfterAShortReadATimeoutOfZeroStillReadsWhatIsThere) {
  auto [a, b] = Socket::pair();
  b.sendall("x");
  EXPECT_EQ(a.recv(10), "x");
  b.sendall("y");
  a.set_timeout(0.0);
  EXPECT_EQ(a.recv(10), "y");
  EXPECT_THROW(a.recv(10), fern::SocketTimeout);
}

// IO-4
TEST_F(SocketIo, AcceptRaisesSocketTimeout) {
  Socket l = listen_on();
  l.set_timeout(std::chrono::milliseconds(20));
  EXPECT_THROW(l.accept(), fern::SocketTimeout);
}

// IO-4: sendall into a peer that never reads
TEST_F(SocketIo, SendallIntoANonReadingPeerRaisesSocketTimeout) {
  auto [a, b] = Socket::pair();
  a.set_timeout(0.05);
  std::string big(8 << 20, 'x');
  try {
    a.sendall(big);
    FAIL();
  } catch (const fern::SocketTimeout& e) {
    EXPECT_STREQ(e.op(), "sendall");
  }
}

// IO-4
TEST_F(SocketIo, SendRaisesSocketTimeoutWhenTheBufferStaysFull) {
  auto [a, b] = Socket::pair();
  std::string chunk(1 << 16, 'x');
  a.set_timeout(0.0);  // fill without waiting, until it would block
  try {
    for (;;) a.send(chunk);
  } catch (const fern::SocketTimeout&) {
  }
  a.set_timeout(0.02);
  EXPECT_THROW(a.send(chunk), fern::SocketTimeout);
}

// IO-4: connect, with the listener's accept queue full (SYNs are dropped)
TEST_F(SocketIo, ConnectRaisesSocketTimeoutWhenTheBacklogIsFull) {
  Socket l = listen_on("127.0.0.1", 0);
  Address a = l.local_address();
  std::vector<Socket> fillers;
  for (int i = 0; i < 8; ++i) {
    Socket s(AF_INET, SOCK_STREAM);
    s.set_timeout(0.05);
    if (s.connect_ex(a) == ETIMEDOUT) {
      // This one already timed out: the queue is full.
      Socket c(AF_INET, SOCK_STREAM);
      c.set_timeout(0.05);
      EXPECT_THROW(c.connect(a), fern::SocketTimeout);
      return;
    }
    fillers.push_back(std::move(s));
  }
  GTEST_SKIP() << "the kernel accepted every connection: cannot provoke a connect timeout";
}

// IO-4
TEST_F(SocketIo, SendallOfNothingReturnsAtOnce) {
  auto [a, b] = Socket::pair();
  a.set_timeout(0.0);
  a.sendall("");
  SUCCEED();
}

// sendall handles partial writes: every byte arrives, in order
TEST_F(SocketIo, SendallDeliversEveryByteAcrossPartialWrites) {
  auto [a, b] = Socket::pair();
  std::string data = pattern(4 << 20, 7);
  std::string got;
  auto reader = spawn([&, &b = b] {
    char buf[7001];  // odd size: many partial reads
    while (std::size_t n = b.recv_into(buf, sizeof buf)) got.append(buf, n);
  });
  a.sendall(data);
  a.shutdown(SHUT_WR);
  reader.join();
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
}

// IO-3: close while another greenlet is blocked on the socket
TEST_F(SocketIo, CloseWakesAGreenletBlockedInRecvWithFdClosedError) {
  auto [a, b] = Socket::pair();
  int code = 0;
  auto reader = spawn([&, &a = a] {
    try {
      a.recv(10);
    } catch (const fern::FdClosedError& e) {
      code = e.code().value();
      log.push_back(e.what());
    }
  });
  fern::sleep(0);
  a.close();
  reader.join();
  EXPECT_EQ(code, EBADF);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("closed in another greenlet"), std::string::npos);
}

// IO-3: the close under the call is a SocketError, as a call on a socket
// already closed is (gevent: socket.error EBADF both times), so one catch
// around socket calls sees both.
TEST_F(SocketIo, ACloseUnderTheCallAndACallAfterTheCloseAreBothSocketErrors) {
  auto [a, b] = Socket::pair();
  std::vector<std::string> ops;
  auto reader = spawn([&, &a = a] {
    for (int round = 0; round < 2; ++round) {
      try {
        a.recv(10);
      } catch (const fern::SocketError& e) {
        EXPECT_EQ(e.code().value(), EBADF);
        ops.push_back(e.op());
      }
    }
  });
  fern::sleep(0);
  a.close();
  reader.join();
  EXPECT_EQ(ops, (std::vector<std::string>{"wait", "recv"}));
}

// IO-3: also for accept
TEST_F(SocketIo, CloseWakesAGreenletBlockedInAccept) {
  Socket l = listen_on();
  bool woken = false;
  auto acceptor = spawn([&] {
    try {
      l.accept();
    } catch (const fern::FdClosedError&) {
      woken = true;
    }
  });
  fern::sleep(0);
  l.close();
  acceptor.join();
  EXPECT_TRUE(woken);
}

// IO-2
TEST_F(SocketIo, ASecondReaderGetsConcurrentObjectUseError) {
  auto [a, b] = Socket::pair();
  auto first = spawn([&, &a = a] { EXPECT_EQ(a.recv(10), "x"); });
  fern::sleep(0);
  EXPECT_THROW(a.recv(10), fern::ConcurrentObjectUseError);
  b.sendall("x");
  first.join();
}

// IO-2: one reader and one writer at once are fine (full duplex)
TEST_F(SocketIo, OneReaderAndOneWriterShareASocket) {
  auto [a, b] = Socket::pair();
  std::string data = pattern(1 << 20, 3), got, echoed;
  auto echo = spawn([&, &b = b] {
    char buf[8192];
    while (std::size_t n = b.recv_into(buf, sizeof buf)) b.sendall(buf, n);
    b.shutdown(SHUT_WR);
  });
  auto reader = spawn([&, &a = a] {
    char buf[8192];
    while (std::size_t n = a.recv_into(buf, sizeof buf)) echoed.append(buf, n);
  });
  a.sendall(data);
  a.shutdown(SHUT_WR);
  reader.join();
  echo.join();
  EXPECT_TRUE(echoed == data);
}

// A TCP pair over loopback: (client, server side).
std::pair<Socket, Socket> tcp_pair() {
  Socket l = listen_on();
  Socket c(AF_INET, SOCK_STREAM);
  c.connect(l.local_address());
  return {std::move(c), l.accept().socket};
}

void reset(Socket& s) {
  linger lg{1, 0};  // close with RST
  ASSERT_EQ(setsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  s.close();
}

// Peer reset mid-recv
TEST_F(SocketIo, PeerResetWhileBlockedInRecvRaisesConnectionReset) {
  auto [c, s] = tcp_pair();
  int code = 0;
  auto reader = spawn([&, &c = c] {
    try {
      c.recv(10);
    } catch (const fern::ConnectionResetError& e) {
      code = e.code().value();
    }
  });
  fern::sleep(0);
  reset(s);
  reader.join();
  EXPECT_EQ(code, ECONNRESET);
}

// Peer reset mid-send: a typed error, never SIGPIPE
TEST_F(SocketIo, PeerResetWhileBlockedInSendallRaisesResetOrBrokenPipe) {
  auto [c, s] = tcp_pair();
  std::string big(16 << 20, 'x');
  int code = 0;
  auto writer = spawn([&, &c = c] {
    try {
      c.sendall(big);
    } catch (const fern::ConnectionResetError& e) {
      code = e.code().value();
    } catch (const fern::BrokenPipeError& e) {
      code = e.code().value();
    }
  });
  fern::sleep(0);
  reset(s);
  writer.join();
  EXPECT_TRUE(code == ECONNRESET || code == EPIPE) << code;
}

TEST_F(SocketIo, SendAfterThePeerClosedRaisesBrokenPipeNotSigpipe) {
  auto [a, b] = Socket::pair();
  b.close();
  EXPECT_THROW(a.send("x"), fern::BrokenPipeError);
}

// IO-7: create_connection tries each resolved address in order
TEST_F(SocketIo, CreateConnectionTriesEachAddressUntilOneConnects) {
  Socket l = listen_on("127.0.0.1");
  std::uint16_t port = l.local_address().port();
  auto infos = fern::getaddrinfo("localhost", std::to_string(port), AF_UNSPEC, SOCK_STREAM);
  ASSERT_FALSE(infos.empty());
  Socket c = fern::create_connection("localhost", port, 1.0);
  EXPECT_EQ(c.peer_address().host(), "127.0.0.1");
  EXPECT_TRUE(c.timeout().has_value());
}

// IO-7
TEST_F(SocketIo, CreateConnectionToAClosedPortRaisesTheLastError) {
  EXPECT_THROW(fern::create_connection("127.0.0.1", closed_port()), fern::ConnectionRefusedError);
}

// Python's OverflowError: a port outside 0..65535 is refused, never wrapped
// (65536 is not port 0, -1 not 65535).
TEST_F(SocketIo, APortOutsideTheRangeIsRefusedNotWrapped) {
  for (int bad : {65536, -1, 70000, -65536}) {
    EXPECT_THROW(Address::ip("127.0.0.1", bad), std::invalid_argument) << bad;
    EXPECT_THROW(fern::create_connection("127.0.0.1", bad), std::invalid_argument) << bad;
  }
  EXPECT_EQ(Address::ip("::1", 65535).port(), 65535);
  EXPECT_EQ(Address::ip("127.0.0.1", 0).port(), 0);
}

// from_sockaddr of nothing (len 0, as a kernel that filled no address
// says; sa may then be null) is the empty address and reads nothing (a
// memcpy from null is undefined even for 0 bytes); a null sa with a
// length is refused, not dereferenced.
TEST_F(SocketIo, AnAddressFromNoSockaddrIsEmptyAndANullOneIsRefused) {
  Address none = Address::from_sockaddr(nullptr, 0);
  EXPECT_EQ(none.family(), AF_UNSPEC);
  EXPECT_EQ(none.size(), 0u);
  EXPECT_TRUE(none == Address());
  EXPECT_THROW(Address::from_sockaddr(nullptr, sizeof(sockaddr_in)), std::invalid_argument);
}

TEST_F(SocketIo, AddressParsesAndPrintsBothFamilies) {
  EXPECT_EQ(Address::ip("127.0.0.1", 80).to_string(), "127.0.0.1:80");
  EXPECT_EQ(Address::ip("::1", 443).to_string(), "[::1]:443");
  EXPECT_EQ(Address::ip("[::1]", 1).family(), AF_INET6);
  EXPECT_THROW(Address::ip("localhost", 1), std::invalid_argument);
  // Brackets hold an IPv6 literal only (as in a URL).
  EXPECT_THROW(Address::ip("[127.0.0.1]", 1), std::invalid_argument);
  EXPECT_THROW(Address::ip("[]", 1), std::invalid_argument);
  EXPECT_THROW(Address::ip("[::1", 1), std::invalid_argument);
}

// IPv6 zones (RFC 4007, Python's "fe80::1%eth0"): parsed into the scope id
// by name or number, printed back with the interface's name, the same from
// getaddrinfo (numeric, no thread); an unknown zone is refused.
TEST_F(SocketIo, AnIPv6LiteralMayNameItsZone) {
  const unsigned lo = if_nametoindex("lo");
  ASSERT_NE(lo, 0u);
  const std::string zoned = "fe80::1%lo";
  Address a = Address::ip(zoned, 80);
  ASSERT_EQ(a.family(), AF_INET6);
  EXPECT_EQ(reinterpret_cast<const sockaddr_in6*>(a.data())->sin6_scope_id, lo);
  EXPECT_EQ(a.host(), zoned);
  EXPECT_EQ(a.to_string(), "[fe80::1%lo]:80");
  EXPECT_EQ(Address::ip(a.host(), 80), a);
  EXPECT_EQ(Address::ip("[fe80::1%lo]", 80), a);
  EXPECT_EQ(Address::ip("fe80::1%" + std::to_string(lo), 80), a);
  EXPECT_EQ(Address::ip("fe80::1", 80).host(), "fe80::1");
  std::vector<fern::AddrInfo> infos = fern::getaddrinfo(zoned, "80", AF_INET6, SOCK_STREAM);
  ASSERT_FALSE(infos.empty());
  EXPECT_EQ(infos[0].address.host(), zoned);
  for (const char* bad : {"fe80::1%", "fe80::1%no-such-if0", "fe80::1%99999999999", "127.0.0.1%lo", "%lo"})
    EXPECT_THROW(Address::ip(bad, 80), std::invalid_argument) << bad;
  if (!fern::testing::has_ipv6_loopback()) return;
  Socket l = fern::testing::listen_on("::1");
  Socket c(AF_INET6, SOCK_STREAM);
  c.connect(Address::ip("::1%lo", l.local_address().port()));
  EXPECT_EQ(l.accept().address.host().substr(0, 3), "::1");
}

TEST_F(SocketIo, AMovedSocketOwnsTheFdOnce) {
  Socket a(AF_INET, SOCK_STREAM);
  int fd = a.fd();
  Socket b = std::move(a);
  EXPECT_FALSE(a);
  EXPECT_EQ(b.fd(), fd);
}

}  // namespace

namespace {

// A socket's poller interest outlives a wait (no epoll_ctl per blocking
// call) and goes when the socket is closed.
TEST_F(SocketIo, ASocketKeepsItsPollerInterestBetweenWaitsUntilClosed) {
  fern::Hub& hub = fern::Hub::current();
  std::size_t base = hub.watched_fds();
  auto [a, b] = Socket::pair();
  auto reader = spawn([&, &a = a] {
    EXPECT_EQ(a.recv(1), "x");
    EXPECT_EQ(a.recv(1), "y");
  });
  fern::sleep(0);
  b.send("x");
  fern::sleep(0.001);  // the reader takes "x" and waits again
  EXPECT_EQ(hub.watched_fds(), base + 1);
  b.send("y");
  reader.join();
  EXPECT_EQ(hub.watched_fds(), base + 1);  // kept after the last wait
  a.close();
  EXPECT_EQ(hub.watched_fds(), base);
}

// Level-triggered polling would report a kept interest on every loop
// iteration; the first event that finds no waiter drops it instead.
TEST_F(SocketIo, AnEventNobodyWaitsForDropsTheKeptInterest) {
  fern::Hub& hub = fern::Hub::current();
  std::size_t base = hub.watched_fds();
  auto [a, b] = Socket::pair();
  auto reader = spawn([&, &a = a] { EXPECT_EQ(a.recv(1), "x"); });
  fern::sleep(0);
  b.send("x");
  reader.join();
  EXPECT_EQ(hub.watched_fds(), base + 1);
  b.send("unread");
  // Until a poll has seen the event and found no waiter: a short sleep
  // usually includes one, but on a slow machine (qemu) its timer may be due
  // before the loop polls, and the sleep ends first.
  for (int i = 0; i < 1000 && hub.watched_fds() != base; ++i) fern::sleep(0.001);
  EXPECT_EQ(hub.watched_fds(), base);
  EXPECT_EQ(a.recv(16), "unread");  // and a later wait still works
}

}  // namespace

namespace {

// test__socket.py::TestSocket::test_shutdown_when_closed, widened to every
// call: a closed (or moved-from) socket answers each one with SocketError
// EBADF naming the call, never a hang, a crash or a silent success.
void expect_ebadf_everywhere(Socket& s) {
  auto expect_ebadf = [](const char* what, auto&& call) {
    try {
      call();
      ADD_FAILURE() << what << " did not throw";
    } catch (const fern::SocketError& e) {
      EXPECT_EQ(e.code().value(), EBADF) << what;
    }
  };
  Address loopback = Address::ip("127.0.0.1", 0);
  char buf[4];
  expect_ebadf("shutdown", [&] { s.shutdown(SHUT_RDWR); });
  expect_ebadf("recv", [&] { s.recv(16); });
  expect_ebadf("recv(0)", [&] { s.recv(0); });
  expect_ebadf("recv_into", [&] { s.recv_into(buf, sizeof buf); });
  expect_ebadf("recvfrom", [&] { s.recvfrom(16); });
  expect_ebadf("send", [&] { s.send("x"); });
  expect_ebadf("sendall", [&] { s.sendall("x"); });
  expect_ebadf("sendall of nothing", [&] { s.sendall(""); });
  expect_ebadf("sendto", [&] { s.sendto("x", loopback); });
  expect_ebadf("accept", [&] { s.accept(); });
  expect_ebadf("connect", [&] { s.connect(loopback); });
  expect_ebadf("bind", [&] { s.bind(loopback); });
  expect_ebadf("listen", [&] { s.listen(); });
  expect_ebadf("local_address", [&] { s.local_address(); });
  expect_ebadf("peer_address", [&] { s.peer_address(); });
  expect_ebadf("set_option", [&] { s.set_reuse_addr(); });
  expect_ebadf("get_option", [&] { s.get_option(SOL_SOCKET, SO_TYPE); });
  expect_ebadf("set_nodelay", [&] { s.set_nodelay(); });
  EXPECT_EQ(s.connect_ex(loopback), EBADF);
  s.close();  // again: a no-op
}

std::string read_to_end(Socket& s) {
  std::string got;
  while (true) {
    std::string part = s.recv(5);
    if (part.empty()) return got;
    got += part;
  }
}

TEST_F(SocketIo, EveryCallOnAClosedSocketRaisesEbadf) {
  Socket s(AF_INET, SOCK_STREAM);
  s.set_timeout(std::nullopt);  // a blocking socket still does not wait
  s.close();
  EXPECT_FALSE(s);
  expect_ebadf_everywhere(s);
}

TEST_F(SocketIo, EveryCallOnAMovedFromSocketRaisesEbadf) {
  Socket s(AF_INET, SOCK_STREAM);
  Socket keeper = std::move(s);
  expect_ebadf_everywhere(s);
  EXPECT_TRUE(keeper);
}

// test__socket.py::TestTCP::test_sendall_nonblocking (gunicorn 1282): a
// socket that never blocks (timeout 0) still makes one attempt, so data
// that fits is sent rather than timing out at once.
TEST_F(SocketIo, ATimeoutOfZeroStillSendsWhatFits) {
  auto [a, b] = Socket::pair();
  a.set_timeout(0.0);
  a.sendall("hi\n");
  EXPECT_EQ(a.send("more"), 4u);
  a.shutdown(SHUT_WR);
  EXPECT_EQ(read_to_end(b), "hi\nmore");
}

// test__socket.py::TestTCP::test_empty_send and test_sendall_empty_with_timeout
// (gevent issue 719): sending nothing returns at once, whatever the
// timeout, and the peer sees nothing but the end of the stream.
TEST_F(SocketIo, SendingNothingReturnsAtOnceAndThePeerSeesOnlyTheEnd) {
  auto [a, b] = Socket::pair();
  a.set_timeout(10.0);
  EXPECT_EQ(a.send(""), 0u);
  a.sendall("");
  a.set_timeout(std::nullopt);
  EXPECT_EQ(a.send(""), 0u);
  a.sendall("");
  a.shutdown(SHUT_WR);
  EXPECT_EQ(b.recv(16), "");
}

// test__socket_timeout.py::Test::test_timeout, with fern's rule for odd
// durations (README, "Time, timeouts and names"): NaN and negative mean
// "now" (timeout 0: a recv with nothing there raises SocketTimeout without
// waiting), +inf and values past the clock's range mean "never" (no timeout).
TEST_F(SocketIo, OddTimeoutsMeanNowOrNever) {
  auto [a, b] = Socket::pair();
  for (double now : {std::numeric_limits<double>::quiet_NaN(), -1.0, -0.0,
                     -std::numeric_limits<double>::infinity()}) {
    a.set_timeout(now);
    ASSERT_TRUE(a.timeout().has_value()) << now;
    EXPECT_EQ(a.timeout()->nanos(), 0) << now;
    try {
      a.recv(16);
      ADD_FAILURE() << "recv with nothing there returned, timeout " << now;
    } catch (const fern::SocketTimeout& e) {
      EXPECT_STREQ(e.op(), "recv");
      EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
    }
  }
  for (double never : {std::numeric_limits<double>::infinity(), 1e12, 1e300}) {
    a.set_timeout(never);
    EXPECT_FALSE(a.timeout().has_value()) << never;
  }
  // "never" really blocks: the recv waits for the data sent later.
  auto writer = spawn([&b = b] { b.send("late"); });
  EXPECT_EQ(a.recv(16), "late");
  writer.join();
}

// test__socketpair.py::TestSocketpair::test_fromfd: a socket adopted from a
// dup of each end works after the original is closed.
TEST_F(SocketIo, AdoptedDupsOfASocketpairCarryDataToTheEnd) {
  auto [x, y] = Socket::pair();
  Socket xx = Socket::adopt(::dup(x.fd()));
  x.close();
  Socket yy = Socket::adopt(::dup(y.fd()));
  y.close();
  xx.sendall("hello world");
  xx.close();
  EXPECT_EQ(read_to_end(yy), "hello world");
}

// Adopting something that is not an open fd is SocketError EBADF.
TEST_F(SocketIo, AdoptingABadFdRaisesEbadf) {
  for (int bad : {-1, -42}) {
    try {
      Socket::adopt(bad);
      ADD_FAILURE() << bad;
    } catch (const fern::SocketError& e) {
      EXPECT_EQ(e.code().value(), EBADF) << bad;
    }
  }
}

}  // namespace
