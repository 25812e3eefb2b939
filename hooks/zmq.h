#pragma once
// Cooperative ZeroMQ send/recv (pyzmq's zmq.green): a send or recv that
// would block parks only the calling greenlet until the socket can go on.
// A zmq socket's ZMQ_FD is edge-triggered (it says only "the events may
// have changed"), so ZMQ_EVENTS is read before every wait and the operation
// is retried after every wake; a wake without the wanted event waits again.
//
// Mapping from pyzmq:
//   import zmq.green as zmq          #include "fern/hooks/zmq.h" (link fern::zmq)
//   sock.send(b"x")                  fern::zmq::send(sock, "x", 1) / send(sock, std::string_view)
//   sock.recv()                      fern::zmq::recv(sock) -> std::string (one message part)
//   zmq.NOBLOCK flag                 ZMQ_DONTWAIT: libzmq's own call, never parks
// Results and errors are libzmq's (bytes, or -1 with zmq_errno()); the
// std::string forms throw ZmqError. ZMQ_RCVTIMEO / ZMQ_SNDTIMEO end a parked
// call as they end libzmq's blocking one: -1 with EAGAIN (0: at once). From the hub, or a thread without a hub,
// they are libzmq's blocking calls. One greenlet per socket at a time (zmq
// sockets are not thread-safe, and the ZMQ_FD has one reader: IO-2).
#include <zmq.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fern::zmq {

// A failed zmq call: errno() is zmq_errno(); what() names the call and says why.
class ZmqError : public std::runtime_error {
 public:
  ZmqError(int err, const std::string& op);
  int error() const noexcept { return err_; }

 private:
  int err_;
};

// zmq_send / zmq_recv / zmq_msg_send / zmq_msg_recv, cooperative.
// Blocks: switches to the hub while the socket cannot send (receive).
int send(void* socket, const void* buf, std::size_t len, int flags = 0);
int recv(void* socket, void* buf, std::size_t len, int flags = 0);
int msg_send(zmq_msg_t* msg, void* socket, int flags = 0);
int msg_recv(zmq_msg_t* msg, void* socket, int flags = 0);

// One whole message part; ZmqError on failure.
void send(void* socket, std::string_view data, int flags = 0);
std::string recv(void* socket, int flags = 0);

}  // namespace fern::zmq
