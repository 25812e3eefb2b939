#include "fern/io/threaded_server.h"

#include <condition_variable>
#include <exception>
#include <mutex>
#include <stdexcept>

namespace fern {

// One thread: its StreamServer lives on its stack, its hub with it. The
// owner learns it is up (or failed) through a mutex, and stops it through a
// Remote handle of its `stop` Event.
struct ThreadedStreamServer::Worker {
  std::mutex mutex;
  std::condition_variable cv;
  bool up = false;
  std::exception_ptr error;
  std::uint16_t port = 0;
  Remote<Event> stop;
  Duration timeout = 1.0;  // written before stop is set, read after
  std::thread thread;
};

ThreadedStreamServer::ThreadedStreamServer(const Address& address, StreamServer::Handler handle,
                                           std::size_t threads, StreamServer::Options options)
    : address_(address), handle_(std::move(handle)), options_(options), count_(threads) {
  if (threads == 0) throw std::invalid_argument("fern: a ThreadedStreamServer needs at least one thread");
  if (!handle_) throw std::invalid_argument("fern: a ThreadedStreamServer needs a handler function");
  // Every thread binds the address again with SO_REUSEPORT, which only IP
  // sockets share (a second Unix bind is EADDRINUSE; newer kernels refuse
  // the option on Unix sockets at once).
  if (address_.family() != AF_INET && address_.family() != AF_INET6)
    throw std::invalid_argument("fern: a ThreadedStreamServer needs an IPv4 or IPv6 address (SO_REUSEPORT)");
  // A Pool belongs to one hub: the N servers' threads would all use it.
  if (options_.pool)
    throw std::invalid_argument("fern: a ThreadedStreamServer cannot take options.pool: a Pool belongs to one "
                                "thread's hub, and each of its threads would use it");
  options_.reuse_port = true;
}

ThreadedStreamServer::~ThreadedStreamServer() { stop(0.0); }

void ThreadedStreamServer::launch(Worker& w, const Address& address) {
  w.thread = std::thread([this, &w, address] {
    {
      Event stop;
      StreamServer server(address, handle_, options_);
      try {
        server.start();
      } catch (...) {
        std::lock_guard<std::mutex> lock(w.mutex);
        w.error = std::current_exception();
        w.up = true;
        w.cv.notify_one();
        return;
      }
      {
        std::lock_guard<std::mutex> lock(w.mutex);
        w.port = server.server_port();
        w.stop = stop.remote();
        w.up = true;
      }
      w.cv.notify_one();
      stop.wait();
      server.stop(w.timeout);
    }
    Hub::destroy_current();
  });
  std::unique_lock<std::mutex> lock(w.mutex);
  w.cv.wait(lock, [&w] { return w.up; });
  if (w.error) {
    lock.unlock();
    w.thread.join();
    std::rethrow_exception(w.error);
  }
}

void ThreadedStreamServer::start() {
  if (!workers_.empty()) return;
  try {
    Address address = address_;
    for (std::size_t i = 0; i < count_; ++i) {
      workers_.push_back(std::make_unique<Worker>());
      launch(*workers_.back(), address);
      if (i == 0) {
        port_ = workers_[0]->port;
        address = Address::ip(address_.host(), port_);  // the others share the first one's port
      }
    }
  } catch (...) {
    // A launch that failed has joined its thread (or never started one);
    // a worker that did start is stopped below with the others.
    if (!workers_.empty() && !workers_.back()->thread.joinable()) workers_.pop_back();
    stop(0.0);
    throw;
  }
}

void ThreadedStreamServer::stop(Duration timeout) {
  for (auto& w : workers_) {
    std::lock_guard<std::mutex> lock(w->mutex);
    w->timeout = timeout;
  }
  for (auto& w : workers_) w->stop.set();
  for (auto& w : workers_) {
    w->thread.join();
    w->stop = {};
  }
  workers_.clear();
}

}  // namespace fern
