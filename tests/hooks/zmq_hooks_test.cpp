// fern::zmq: cooperative send/recv on zmq sockets (zmq.green).
#include "fern/hooks/zmq.h"

#include <string>
#include <thread>
#include <vector>

#include "fern/core/task.h"
#include "hooks/hooks_fixture.h"

namespace {

using fern::spawn;
using Vec = std::vector<std::string>;

class ZmqGreen : public fern::testing::HooksTest {
 protected:
  // The context's own fds come and go inside the fixture's fd count.
  void SetUp() override {
    HooksTest::SetUp();
    context_ = zmq_ctx_new();
  }
  void TearDown() override {
    for (void* s : sockets_) zmq_close(s);
    zmq_ctx_term(context_);
    HooksTest::TearDown();
  }
  void* socket(int type) {
    sockets_.push_back(zmq_socket(context_, type));
    return sockets_.back();
  }
  // Binds to an ephemeral 127.0.0.1 port; the endpoint to connect to.
  static std::string bind_any(void* s) {
    EXPECT_EQ(zmq_bind(s, "tcp://127.0.0.1:*"), 0);
    char endpoint[256];
    std::size_t size = sizeof endpoint;
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, endpoint, &size);
    return endpoint;
  }
  void* context_ = nullptr;
  std::vector<void*> sockets_;
};

TEST_F(ZmqGreen, ReqRepAlternatesBetweenGreenlets) {
  void* req = socket(ZMQ_REQ);
  void* rep = socket(ZMQ_REP);
  std::string endpoint = bind_any(req);
  ASSERT_EQ(zmq_connect(rep, endpoint.c_str()), 0);
  auto server = spawn([&] {
    for (int i = 1; i <= 3; ++i) {
      fern::zmq::send(req, "Hello");
      log.push_back("server " + std::to_string(i));
      EXPECT_EQ(fern::zmq::recv(req), "World");
    }
  });
  auto client = spawn([&] {
    for (int i = 1; i <= 3; ++i) {
      EXPECT_EQ(fern::zmq::recv(rep), "Hello");
      log.push_back("client " + std::to_string(i));
      fern::zmq::send(rep, "World");
    }
  });
  fern::joinall(server, client);
  EXPECT_EQ(log, (Vec{"server 1", "client 1", "server 2", "client 2", "server 3", "client 3"}));
}

TEST_F(ZmqGreen, RecvParksOnlyItsGreenlet) {
  void* pull = socket(ZMQ_PULL);
  void* push = socket(ZMQ_PUSH);
  std::string endpoint = bind_any(pull);
  ASSERT_EQ(zmq_connect(push, endpoint.c_str()), 0);
  auto receiver = spawn([&] {
    log.push_back("receiving");
    log.push_back("got " + fern::zmq::recv(pull));
  });
  auto sender = spawn([&] {
    log.push_back("sending");
    fern::zmq::send(push, "m");
  });
  fern::joinall(receiver, sender);
  EXPECT_EQ(log, (Vec{"receiving", "sending", "got m"}));
}

TEST_F(ZmqGreen, DontwaitAndErrorsAreLibzmqs) {
  void* pull = socket(ZMQ_PULL);
  bind_any(pull);
  auto g = spawn([&] {
    char buf[4];
    EXPECT_EQ(fern::zmq::recv(pull, buf, sizeof buf, ZMQ_DONTWAIT), -1);
    EXPECT_EQ(zmq_errno(), EAGAIN);
    void* rep = socket(ZMQ_REP);
    EXPECT_THROW(fern::zmq::send(rep, "x"), fern::zmq::ZmqError);  // REP must receive first: EFSM
  });
  g.join();
}

// ZMQ_RCVTIMEO / ZMQ_SNDTIMEO end a parked call with -1/EAGAIN, as they
// end libzmq's blocking one; 0 answers at once. A rescuer thread, the only
// user of the peer socket, lets a call that ignored them finish.
TEST_F(ZmqGreen, RcvtimeoAndSndtimeoEndAParkedCallAsLibzmqs) {
  void* pull = socket(ZMQ_PULL);
  void* push = socket(ZMQ_PUSH);
  std::string endpoint = bind_any(pull);
  ASSERT_EQ(zmq_connect(push, endpoint.c_str()), 0);
  auto recv_with_timeout = [&](int ms) {
    EXPECT_EQ(zmq_setsockopt(pull, ZMQ_RCVTIMEO, &ms, sizeof ms), 0);
    fern::testing::Rescuer rescue([&] { zmq_send(push, "r", 1, 0); });
    char buf[4];
    int r = fern::zmq::recv(pull, buf, sizeof buf);
    return fern::testing::Outcome{r, r < 0 ? zmq_errno() : 0};
  };
  const fern::testing::Outcome eagain{-1, EAGAIN};
  EXPECT_EQ(spawn([&] { return recv_with_timeout(20); }).get(), eagain);
  EXPECT_EQ(spawn([&] { return recv_with_timeout(0); }).get(), eagain);
  // A PUSH socket with no peer cannot send: libzmq's blocking send waits for
  // one. The rescuer's peer is its own socket.
  void* lonely = socket(ZMQ_PUSH);
  int ms = 20, linger = 0;
  ASSERT_EQ(zmq_setsockopt(lonely, ZMQ_SNDTIMEO, &ms, sizeof ms), 0);
  ASSERT_EQ(zmq_setsockopt(lonely, ZMQ_LINGER, &linger, sizeof linger), 0);
  std::string lonely_endpoint = bind_any(lonely);
  EXPECT_EQ(zmq_send(lonely, "x", 1, 0), -1);  // libzmq's own answer
  EXPECT_EQ(zmq_errno(), EAGAIN);
  EXPECT_EQ(spawn([&] {
    void* peer = nullptr;
    fern::testing::Outcome got;
    {
      fern::testing::Rescuer rescue([&] {
        peer = zmq_socket(context_, ZMQ_PULL);
        zmq_setsockopt(peer, ZMQ_LINGER, &linger, sizeof linger);
        zmq_connect(peer, lonely_endpoint.c_str());
      });
      int r = fern::zmq::send(lonely, static_cast<const void*>("x"), 1);
      got = {r, r < 0 ? zmq_errno() : 0};
    }
    if (peer) zmq_close(peer);
    return got;
  }).get(), eagain);
}

}  // namespace
