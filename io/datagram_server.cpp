#include "fern/io/datagram_server.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <utility>

#include "fern/io/server_base.h"

namespace fern {
namespace {

// No retry cures these: the socket was closed behind the server's back or
// is not a socket.
bool socket_unusable(int err) { return err == EBADF || err == EINVAL || err == ENOTSOCK || err == EOPNOTSUPP; }

int socket_type(const Socket& s) { return s.get_option(SOL_SOCKET, SO_TYPE); }

void check(const DatagramServer::Handler& handle, std::size_t max) {
  if (!handle) throw std::invalid_argument("fern: a DatagramServer needs a handler function");
  if (max == 0) throw std::invalid_argument("fern: DatagramServer: max_datagram must be at least 1");
}

}  // namespace

DatagramServer::DatagramServer(const Address& address, Handler handle, Options options)
    : address_(address), handle_(std::move(handle)), options_(options) {
  check(handle_, options_.max_datagram);
}

DatagramServer::DatagramServer(Socket socket, Handler handle, Options options)
    : handle_(std::move(handle)), options_(options) {
  check(handle_, options_.max_datagram);
  if (!socket || socket_type(socket) != SOCK_DGRAM)
    throw std::invalid_argument("fern: DatagramServer needs a datagram socket (SOCK_DGRAM)");
  address_ = socket.local_address();
  socket_ = std::move(socket);
}

DatagramServer::~DatagramServer() {
  try {
    if (started_) stop(0.0);
    // A handler that stopped its own server may still run, in handle_ and
    // with this server's state: it ends (killed, waited for) before they go.
    std::vector<AnyTask> left = running();
    if (!left.empty()) killall(left);
  } catch (...) {
    Hub::report_error("DatagramServer::~DatagramServer", std::current_exception());
  }
}

// The handler tasks to wait for, less the calling one.
std::vector<AnyTask> DatagramServer::running() const { return detail::all_but_current(handlers_.members()); }

void DatagramServer::start() {
  if (started_) return;
  if (!socket_) {
    Socket s = detail::bound_socket(address_, SOCK_DGRAM, options_.reuse_addr, options_.reuse_port);
    address_ = s.local_address();
    socket_ = std::move(s);
  }
  if (!buffer_) buffer_.reset(new char[options_.max_datagram]);
  stopped_.clear();
  started_ = true;
  start_accepting();
}

void DatagramServer::serve_forever() {
  start();
  stopped_.wait();
}

void DatagramServer::start_accepting() {
  if (started_) detail::resume_serving(reader_, [this] { read_loop(); });
}

void DatagramServer::stop_accepting() { detail::pause_serving(reader_); }

void DatagramServer::stop(Duration timeout) {
  if (!started_ && handlers_.size() == 0) return;
  Deadline deadline = timeout.from_now();
  started_ = false;
  stop_accepting();
  socket_.close();
  detail::end_handlers(deadline, [this] { return running(); });
  stopped_.set();
}

std::size_t DatagramServer::sendto(std::string_view data, const Address& to) {
  write_lock_.acquire();
  struct Release {
    Lock& lock;
    ~Release() { lock.release(); }
  } release{write_lock_};
  return socket_.sendto(data, to);
}

void DatagramServer::read_loop() {
  double backoff = 0.001;
  for (;;) {
    if (options_.pool) options_.pool->wait_available();  // a full pool stops reading
    Socket::ReceivedInto got;
    try {
      got = socket_.recvfrom_into(buffer_.get(), options_.max_datagram);
    } catch (const FdClosedError&) {
      return;  // stop() closed the socket
    } catch (const SocketError& e) {
      bool fatal = socket_unusable(e.code().value());
      // A peer's ICMP errors may come as often as its datagrams: one line a second.
      if (fatal || detail::once_a_second(last_error_log_))
        Hub::report_error("DatagramServer recvfrom", std::current_exception());
      if (fatal) {
        started_ = false;
        socket_.close();
        stopped_.set();
        return;
      }
      ++read_errors_;
      fern::sleep(backoff);  // ENOBUFS, ENOMEM, an ICMP error: read again a little later
      backoff = backoff * 2 > 0.05 ? 0.05 : backoff * 2;
      continue;
    }
    backoff = 0.001;
    if (got.truncated) note_truncated(got.size);
    spawn_handler(std::string(buffer_.get(), got.size), got.from);
  }
}

void DatagramServer::note_truncated(std::size_t kept) {
  ++truncated_;
  if (!detail::once_a_second(last_log_)) return;
  std::fprintf(stderr, "fern: DatagramServer on %s: a datagram longer than max_datagram was cut to %zu bytes\n",
               address_.to_string().c_str(), kept);
}

void DatagramServer::spawn_handler(std::string data, const Address& from) {
  try {
    Task<void> task = Task<void>::create([this, data = std::move(data), from] { handle_(data, from); });
    handlers_.add(task);
    if (options_.pool) options_.pool->start(task);
    else task->start();
  } catch (const GreenletExit&) {
    throw;
  } catch (...) {
    Hub::report_error("DatagramServer spawn", std::current_exception());
  }
}

}  // namespace fern
