// Twin of gevent's tutorial program 34_zeromq_req_rep.py: a REQ socket
// ("server", it binds) and a REP socket ("client") in two greenlets, the
// switch between them implicit in each blocking send/recv. zmq.green
// becomes fern::zmq (link fern::zmq): libzmq's sockets, cooperative
// send/recv.
// Deliberate difference: the REQ socket binds an ephemeral port
// (tcp://127.0.0.1:*) instead of 5000, so the twin never collides with
// another program; the client connects to whatever was bound.
#include <zmq.h>

#include <cstdio>
#include <functional>
#include <string>

#include "fern/core/task.h"
#include "fern/hooks/zmq.h"
#include "fern/sync/event.h"

namespace {

// Global Context
void* context = nullptr;

void server(std::string& endpoint, fern::Event& bound) {
  void* server_socket = zmq_socket(context, ZMQ_REQ);
  zmq_bind(server_socket, "tcp://127.0.0.1:*");
  char last[256];
  std::size_t size = sizeof last;
  zmq_getsockopt(server_socket, ZMQ_LAST_ENDPOINT, last, &size);
  endpoint = last;
  bound.set();

  for (int request = 1; request < 10; ++request) {
    fern::zmq::send(server_socket, "Hello");
    std::printf("Switched to Server for %d\n", request);
    // Implicit context switch occurs here
    fern::zmq::recv(server_socket);
  }
  zmq_close(server_socket);
}

void client(const std::string& endpoint, fern::Event& bound) {
  bound.wait();
  void* client_socket = zmq_socket(context, ZMQ_REP);
  zmq_connect(client_socket, endpoint.c_str());

  for (int request = 1; request < 10; ++request) {
    fern::zmq::recv(client_socket);
    std::printf("Switched to Client for %d\n", request);
    // Implicit context switch occurs here
    fern::zmq::send(client_socket, "World");
  }
  zmq_close(client_socket);
}

}  // namespace

int main() {
  context = zmq_ctx_new();
  std::string endpoint;
  fern::Event bound;
  auto publisher = fern::spawn(server, std::ref(endpoint), std::ref(bound));
  auto client_task = fern::spawn(client, std::cref(endpoint), std::ref(bound));

  fern::joinall(publisher, client_task);
  zmq_ctx_term(context);
}
