// DatagramServer (gevent.server.DatagramServer): ported from gevent's
// test__example_udp_server.py and test__example_udp_client.py, with the
// server rules StreamServer follows (SRV-2..SRV-6 in their datagram form),
// and hostile input: truncation, a zero max_datagram, a stream socket, a
// sendto after stop. Also Socket's MSG_TRUNC reads (never more bytes than
// the buffer holds) and recvfrom_into.
#include <sys/socket.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/io/datagram_server.h"
#include "fern/sync/event.h"
#include "fern/sync/group.h"
#include "io_fixture.h"

namespace {

using fern::Address;
using fern::DatagramServer;
using fern::Socket;
using DatagramIo = fern::testing::IoTest;

const Address kAny = Address::ip("127.0.0.1", 0);

Socket client_of(const DatagramServer& s) {
  Socket c(AF_INET, SOCK_DGRAM);
  c.connect(Address::ip("127.0.0.1", s.server_port()));
  return c;
}

// test__example_udp_server.py / examples/udp_server.py: every datagram gets
// a reply to its sender; test__example_udp_client.py: the handler sees the
// message and its sender's address.
TEST_F(DatagramIo, EachDatagramGetsAReplyToItsSender) {
  std::vector<std::string> got;
  DatagramServer* self = nullptr;
  DatagramServer server(kAny, [&](const std::string& data, const Address& from) {
    got.push_back(data);
    self->sendto("Received " + std::to_string(data.size()) + " bytes", from);
  });
  self = &server;
  server.start();
  EXPECT_NE(server.server_port(), 0);  // the ephemeral port it bound
  Socket c = client_of(server);
  c.send("Test udp_server");
  Socket::Received reply = c.recvfrom(8192);
  EXPECT_EQ(reply.data, "Received 15 bytes");
  EXPECT_EQ(reply.from.port(), server.server_port());
  c.send("x");
  EXPECT_EQ(c.recv(100), "Received 1 bytes");
  EXPECT_EQ(got, (std::vector<std::string>{"Test udp_server", "x"}));
  server.stop();
  EXPECT_FALSE(server.started());
}

// SRV-2's form: nothing is read before start(); the datagram waits in the
// kernel and is handled once the server starts.
TEST_F(DatagramIo, NothingIsReadBeforeStart) {
  Socket bound(AF_INET, SOCK_DGRAM);
  bound.bind(kAny);
  Address at = bound.local_address();
  fern::Event handled;
  std::string seen;
  DatagramServer server(std::move(bound), [&](const std::string& data, const Address&) {
    seen = data;
    handled.set();
  });
  EXPECT_FALSE(server.started());
  EXPECT_EQ(server.server_port(), at.port());
  Socket c(AF_INET, SOCK_DGRAM);
  c.sendto("early", at);
  fern::sleep(0);
  EXPECT_TRUE(seen.empty());
  server.start();
  handled.wait();
  EXPECT_EQ(seen, "early");
  server.stop();
}

// SRV-3's form: each datagram's handler runs in its own task, so one that
// blocks does not hold up the next datagram.
TEST_F(DatagramIo, AHandlerThatBlocksDoesNotHoldUpTheNext) {
  fern::Event release, second;
  DatagramServer server(kAny, [&](const std::string& data, const Address&) {
    if (data == "first") release.wait();
    else second.set();
  });
  server.start();
  Socket c = client_of(server);
  c.send("first");
  c.send("second");
  second.wait();
  // The second's task leaves the server's set in a hub round after it ends.
  for (int i = 0; i < 10 && server.handler_count() != 1; ++i) fern::sleep(0);
  EXPECT_EQ(server.handler_count(), 1u);  // the first still waits
  release.set();
  server.stop();
  EXPECT_EQ(server.handler_count(), 0u);
}

// SRV-4's form: a handler's exception is reported, the server goes on.
TEST_F(DatagramIo, AThrowingHandlerIsReportedAndTheServerGoesOn) {
  fern::Event ok;
  DatagramServer server(kAny, [&](const std::string& data, const Address&) {
    if (data == "boom") throw std::runtime_error("handler failed");
    ok.set();
  });
  server.start();
  Socket c = client_of(server);
  ::testing::internal::CaptureStderr();
  c.send("boom");
  c.send("fine");
  ok.wait();
  server.stop();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("handler failed"), std::string::npos) << err;
}

// SRV-6's form: with a full pool the next datagram is not read until a
// handler ends.
TEST_F(DatagramIo, AFullPoolPausesReading) {
  fern::Pool pool(1);
  fern::Event release, first_in, second_in;
  DatagramServer::Options options;
  options.pool = &pool;
  DatagramServer server(kAny, [&](const std::string& data, const Address&) {
    if (data == "first") {
      first_in.set();
      release.wait();
    } else {
      second_in.set();
    }
  }, options);
  server.start();
  Socket c = client_of(server);
  c.send("first");
  c.send("second");
  first_in.wait();
  for (int i = 0; i < 5; ++i) fern::sleep(0);
  EXPECT_FALSE(second_in.ready());
  EXPECT_EQ(server.handler_count(), 1u);
  release.set();
  second_in.wait();
  server.stop();
}

// SRV-5's form: stop() waits for running handlers up to its timeout, then
// kills them; a handler may stop its own server.
TEST_F(DatagramIo, StopKillsHandlersLeftAfterItsTimeout) {
  fern::Event in, never;
  bool killed = false;
  DatagramServer server(kAny, [&](const std::string&, const Address&) {
    in.set();
    try {
      never.wait();
    } catch (const fern::GreenletExit&) {
      killed = true;
      throw;
    }
  });
  server.start();
  Socket c = client_of(server);
  c.send("x");
  in.wait();
  server.stop(0.0);
  EXPECT_TRUE(killed);
  EXPECT_EQ(server.handler_count(), 0u);
}

TEST_F(DatagramIo, AHandlerMayStopItsOwnServer) {
  fern::Event done;
  DatagramServer* self = nullptr;
  DatagramServer server(kAny, [&](const std::string&, const Address&) {
    self->stop();
    done.set();
  });
  self = &server;
  auto serving = fern::spawn([&] { server.serve_forever(); });
  fern::sleep(0);
  Socket c = client_of(server);
  c.send("stop");
  serving.join();  // serve_forever returned
  done.wait();
  EXPECT_FALSE(server.started());
}

// A datagram longer than max_datagram is handed over cut, counted and
// reported (gevent cuts at 8192 without a word).
TEST_F(DatagramIo, ALongDatagramIsCutCountedAndReported) {
  auto [a, b] = Socket::pair(SOCK_DGRAM);
  DatagramServer::Options options;
  options.max_datagram = 16;
  fern::Event handled;
  std::vector<std::string> got;
  DatagramServer server(std::move(a), [&](const std::string& data, const Address&) {
    got.push_back(data);
    if (got.size() == 2) handled.set();
  }, options);
  ::testing::internal::CaptureStderr();
  server.start();
  b.send(std::string(100, 'x'));
  b.send("short");
  handled.wait();
  server.stop();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(got, (std::vector<std::string>{std::string(16, 'x'), "short"}));
  EXPECT_EQ(server.truncated(), 1u);
  EXPECT_NE(err.find("cut to 16 bytes"), std::string::npos) << err;
}

// An ICMP error (port unreachable, on a connected socket) fails one read:
// reported, counted, and the server goes on reading.
TEST_F(DatagramIo, AnIcmpErrorIsReportedAndTheServerGoesOn) {
  Address dead;
  {
    Socket gone(AF_INET, SOCK_DGRAM);
    gone.bind(kAny);
    dead = gone.local_address();
  }
  Socket s(AF_INET, SOCK_DGRAM);
  s.bind(kAny);
  s.connect(dead);
  DatagramServer server(std::move(s), [](const std::string&, const Address&) {});
  ::testing::internal::CaptureStderr();
  server.start();
  server.sendto("anyone?", dead);
  for (int i = 0; i < 10000 && server.read_errors() == 0; ++i) fern::sleep(0.001);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(server.read_errors(), 1u);
  EXPECT_TRUE(server.started());
  EXPECT_NE(err.find("DatagramServer recvfrom"), std::string::npos) << err;
  server.stop();
}

TEST_F(DatagramIo, BadConfigurationIsATypedError) {
  auto handler = [](const std::string&, const Address&) {};
  DatagramServer::Options zero;
  zero.max_datagram = 0;
  EXPECT_THROW(DatagramServer(kAny, handler, zero), std::invalid_argument);
  EXPECT_THROW(DatagramServer(Socket(AF_INET, SOCK_STREAM), handler), std::invalid_argument);
  EXPECT_THROW(DatagramServer(Socket(), handler), std::invalid_argument);
  EXPECT_THROW(DatagramServer(kAny, nullptr), std::invalid_argument);
  // A port in use: start() throws, nothing runs.
  Socket taken(AF_INET, SOCK_DGRAM);
  taken.bind(kAny);
  DatagramServer::Options no_reuse;
  no_reuse.reuse_addr = false;
  DatagramServer clash(taken.local_address(), handler, no_reuse);
  EXPECT_THROW(clash.start(), fern::SocketError);
  EXPECT_FALSE(clash.started());
}

TEST_F(DatagramIo, SendtoAfterStopIsASocketError) {
  DatagramServer server(kAny, [](const std::string&, const Address&) {});
  server.start();
  server.stop();
  EXPECT_THROW(server.sendto("late", Address::ip("127.0.0.1", 9)), std::system_error);
}

// Socket: MSG_TRUNC asks the kernel for a datagram's real length, which is
// not what the buffer holds: no read reports more bytes than it stored.
TEST_F(DatagramIo, MsgTruncNeverReportsBytesThatAreNotThere) {
  auto [a, b] = Socket::pair(SOCK_DGRAM);
  b.send(std::string(10, 'a'));
  EXPECT_EQ(a.recv(4, MSG_TRUNC), "aaaa");
  b.send(std::string(10, 'b'));
  char buf[8] = {};
  EXPECT_EQ(a.recv_into(buf, 3, MSG_TRUNC), 3u);
  b.send(std::string(10, 'c'));
  EXPECT_EQ(a.recvfrom(5, MSG_TRUNC).data, "ccccc");
  b.send(std::string(10, 'd'));
  Socket::ReceivedInto got = a.recvfrom_into(buf, 6);
  EXPECT_EQ(got.size, 6u);
  EXPECT_TRUE(got.truncated);
  EXPECT_EQ(std::string(buf, 6), "dddddd");
  b.send("ee");
  got = a.recvfrom_into(buf, 6);
  EXPECT_EQ(got.size, 2u);
  EXPECT_FALSE(got.truncated);
}

}  // namespace
