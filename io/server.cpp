#include "fern/io/server.h"

#include <cerrno>
#include <cstdio>

#include "fern/core/clock.h"

namespace fern {
namespace {

bool out_of_resources(int err) { return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM; }

// Fast enough to resume within 50 ms of an fd coming back, slow enough that
// a long exhaustion costs ~20 wake-ups a second.
constexpr double kMaxBackoff = 0.05;

}  // namespace

StreamServer::StreamServer(const Address& address, Handler handle, Options options)
    : address_(address), handle_(std::make_shared<const Handler>(std::move(handle))), options_(options),
      group_(options.pool ? options.pool : &own_group_) {}

StreamServer::StreamServer(Socket listener, Handler handle, Options options)
    : address_(listener.local_address()), handle_(std::make_shared<const Handler>(std::move(handle))), options_(options),
      listener_(std::move(listener)), group_(options.pool ? options.pool : &own_group_) {}

StreamServer::~StreamServer() {
  if (started_) {
    try {
      stop(0.0);
    } catch (...) {
      Hub::report_error("StreamServer::~StreamServer", std::current_exception());
    }
  }
}

void StreamServer::start() {
  if (started_) return;
  if (!listener_) {
    Socket s(address_.family(), SOCK_STREAM);
    if (options_.reuse_addr && address_.family() != AF_UNIX) s.set_reuse_addr();
#ifdef SO_REUSEPORT
    if (options_.reuse_port) s.set_option(SOL_SOCKET, SO_REUSEPORT, 1);
#endif
    s.bind(address_);
    s.listen(options_.backlog);
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
  if (!started_ || acceptor_) return;
  acceptor_ = spawn([this] { accept_loop(); });
}

void StreamServer::stop_accepting() {
  if (!acceptor_) return;
  Task<void> t = std::move(acceptor_);
  acceptor_ = Task<void>();
  t.kill();
}

void StreamServer::stop(Duration timeout) {
  if (!started_) return;
  Deadline deadline = timeout.from_now();
  started_ = false;
  stop_accepting();
  listener_.close();
  // Handlers get until the deadline to finish, then are killed (SRV-5).
  double left = static_cast<double>(deadline.remaining(monotonic_now())) / 1e9;
  if (!group_->join(left)) group_->kill();
  stopped_.set();
}

Address StreamServer::address() const { return address_; }

void StreamServer::accept_loop() {
  double backoff = 0.001;
  for (;;) {
    group_->wait_available();  // a full pool stops accepting (SRV-6)
    Socket::Accepted conn;
    try {
      conn = listener_.accept();
    } catch (const FdClosedError&) {
      return;  // stop() closed the listener
    } catch (const SocketError& e) {
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
  Nanos now = monotonic_now();
  if (last_log_ != 0 && now - last_log_ < 1'000'000'000) return;
  last_log_ = now;
  std::fprintf(stderr, "fern: StreamServer on %s: accept: %s; backing off\n", address_.to_string().c_str(),
               e.code().message().c_str());
}

void StreamServer::spawn_handler(Socket::Accepted conn) {
  // shared_ptr: a handler task killed before it starts (stop) still closes
  // its socket when the task's function is destroyed.
  auto sock = std::make_shared<Socket>(std::move(conn.socket));
  try {
    group_->spawn([sock, addr = conn.address, handle = handle_] {
      struct Closer {
        Socket& s;
        ~Closer() { s.close(); }
      } closer{*sock};
      (*handle)(*sock, addr);
    });
  } catch (const GreenletExit&) {
    throw;
  } catch (...) {
    // SRV-8: the connection closes (sock's last owner goes) and the error is reported.
    Hub::report_error("StreamServer spawn", std::current_exception());
  }
}

}  // namespace fern
