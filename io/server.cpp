#include "fern/io/server.h"

#include <netinet/in.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "fern/io/server_base.h"

namespace fern {
namespace {

bool out_of_resources(int err) { return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM; }

// No retry cures these: the listener was closed or shut down behind the
// server's back, was never listening, or is not a stream socket (gevent's
// BaseServer.fatal_errors, plus EOPNOTSUPP).
bool listener_unusable(int err) { return err == EBADF || err == EINVAL || err == ENOTSOCK || err == EOPNOTSUPP; }

// Fast enough to resume within 50 ms of an fd coming back, slow enough that
// a long exhaustion costs ~20 wake-ups a second.
constexpr double kMaxBackoff = 0.05;

// gevent's "'handle' must be provided": refused when the server is made,
// not as a std::bad_function_call in every connection's task.
void require_handler(const StreamServer::Handler& handle) {
  if (!handle) throw std::invalid_argument("fern: a StreamServer needs a handler function");
}

}  // namespace

// A handler task owns its connection: a task killed before it starts
// still closes the socket when it is destroyed. While not ended it is on
// the server's list, which stop() waits on; no Group, no std::function.
class StreamServer::Connection : public TaskBase {  // made by make_task (not final)
 public:
  Connection(StreamServer& server, Socket::Accepted conn) : server_(&server), socket_(std::move(conn.socket)) {
    // The peer is kept in 28 bytes, not a 136-byte Address: this object is
    // most of an idle connection's heap. A named Unix-socket peer does not
    // fit: the bytes then hold a pointer to a heap copy (peer_len_ 0).
    if (conn.address.size() <= sizeof peer_) {
      std::memcpy(peer_, conn.address.data(), conn.address.size());
      peer_len_ = conn.address.size();
    } else {
      Address* copy = new Address(conn.address);
      std::memcpy(peer_, &copy, sizeof copy);
    }
    next_ = server.connections_;
    if (next_) next_->prev_ = this;
    server.connections_ = this;
    ++server.connection_count_;
  }
  ~Connection() override {
    detach();
    delete long_peer();
  }

  // Leaves the server's list (when it ends, or when the server goes first).
  void detach() noexcept {
    if (!server_) return;
    if (prev_) prev_->next_ = next_;
    else server_->connections_ = next_;
    if (next_) next_->prev_ = prev_;
    --server_->connection_count_;
    server_ = nullptr;
  }
  Connection* next() const noexcept { return next_; }

 protected:
  void run() override {
    struct Done {
      Connection& c;
      ~Done() {
        c.socket_.close();  // SRV-4: closed when the handler returns or throws
        c.detach();
      }
    } done{*this};
    const Address* long_one = long_peer();
    const Address peer =
        long_one ? *long_one : Address::from_sockaddr(reinterpret_cast<const sockaddr*>(peer_), peer_len_);
    server_->handle_(socket_, peer);
  }

 private:
  Address* long_peer() const noexcept {
    Address* p = nullptr;
    if (peer_len_ == 0) std::memcpy(&p, peer_, sizeof p);
    return p;
  }

  StreamServer* server_;
  Connection* prev_ = nullptr;
  Connection* next_ = nullptr;
  Socket socket_;
  alignas(sockaddr_in6) unsigned char peer_[sizeof(sockaddr_in6)] = {};  // zero: an empty peer reads as no pointer
  socklen_t peer_len_ = 0;  // 0: peer_ holds an Address* (see the constructor)
};

StreamServer::StreamServer(const Address& address, Handler handle, Options options)
    : address_(address), handle_(std::move(handle)), options_(options) {
  require_handler(handle_);
}

StreamServer::StreamServer(Socket listener, Handler handle, Options options)
    : address_(listener.local_address()), handle_(std::move(handle)), options_(options),
      listener_(std::move(listener)) {
  require_handler(handle_);
  if (options_.backlog)
    throw std::invalid_argument("fern: StreamServer: a backlog cannot be given with an already listening socket");
}

StreamServer::~StreamServer() {
  try {
    if (started_) stop(0.0);
    // A handler that stopped its own server may still run, in handle_ and
    // with this server's state: it ends (killed, waited for) before they go.
    if (connections_) killall(running());
  } catch (...) {
    Hub::report_error("StreamServer::~StreamServer", std::current_exception());
  }
  while (connections_) connections_->detach();  // killed before they started, or the caller's own
}

// The handler tasks to wait for, less the calling one: a handler may stop
// its own server (it ends by itself after).
std::vector<AnyTask> StreamServer::running() const {
  std::vector<AnyTask> out;
  out.reserve(connection_count_);
  Greenlet me = Greenlet::current();
  for (Connection* c = connections_; c; c = c->next())
    if (!(c->greenlet() == me)) out.push_back(AnyTask(c));
  return out;
}

void StreamServer::start() {
  if (started_) return;
  if (!listener_) {
    Socket s = detail::bound_socket(address_, SOCK_STREAM, options_.reuse_addr, options_.reuse_port);
    s.listen(options_.backlog.value_or(SOMAXCONN));
    address_ = s.local_address();
    listener_ = std::move(s);
  }
  stopped_.clear();
  started_ = true;
  start_accepting();
}

void StreamServer::serve_forever() {
  start();
  stopped_.wait();
}

void StreamServer::start_accepting() {
  if (started_) detail::resume_serving(acceptor_, [this] { accept_loop(); });
}

void StreamServer::stop_accepting() { detail::pause_serving(acceptor_); }

void StreamServer::stop(Duration timeout) {
  // Not started, yet handlers may run: the accept loop closed the server
  // on a fatal error (below). They are waited for and killed all the same.
  if (!started_ && !connections_) return;
  Deadline deadline = timeout.from_now();
  started_ = false;
  stop_accepting();
  listener_.close();
  detail::end_handlers(deadline, [this] { return running(); });
  stopped_.set();
}

Address StreamServer::address() const { return address_; }

void StreamServer::accept_loop() {
  double backoff = 0.001;
  for (;;) {
    if (options_.pool) options_.pool->wait_available();  // a full pool stops accepting (SRV-6)
    Socket::Accepted conn;
    try {
      conn = listener_.accept();
    } catch (const FdClosedError&) {
      return;  // stop() closed the listener
    } catch (const SocketError& e) {
      if (listener_unusable(e.code().value())) {
        // Reported once; the server closes as stop() would, but leaves its
        // handlers running (gevent's close()): serve_forever returns.
        Hub::report_error("StreamServer accept", std::current_exception());
        started_ = false;
        listener_.close();
        stopped_.set();
        return;
      }
      if (!out_of_resources(e.code().value())) {
        Hub::report_error("StreamServer accept", std::current_exception());
        fern::sleep(backoff);
        continue;
      }
      back_off(e);
      fern::sleep(backoff);
      backoff = backoff * 2 > kMaxBackoff ? kMaxBackoff : backoff * 2;
      continue;
    }
    backoff = 0.001;
    spawn_handler(std::move(conn));
  }
}

void StreamServer::back_off(const SocketError& e) {
  ++resource_errors_;
  if (!detail::once_a_second(last_log_)) return;
  std::fprintf(stderr, "fern: StreamServer on %s: accept: %s; backing off\n", address_.to_string().c_str(),
               e.code().message().c_str());
}

void StreamServer::spawn_handler(Socket::Accepted conn) {
  try {
    AnyTask task = make_task<Connection>(*this, std::move(conn));
    if (options_.pool) options_.pool->start(task);
    else task->start();
  } catch (const GreenletExit&) {
    throw;
  } catch (...) {
    // SRV-8: the connection closes (its task is gone) and the error is reported.
    Hub::report_error("StreamServer spawn", std::current_exception());
  }
}

}  // namespace fern
