// Round trip of an empty job through fern's ThreadPool (spawn, run in a
// worker, hand the result back through the hub's cross-thread wake, wait in
// the calling greenlet) against a plain std::thread hand-off with a mutex
// and condition variables. One item is one round trip.
#include <benchmark/benchmark.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "fern/io/thread_pool.h"
#include "ratio_report.h"

namespace {

void BM_ThreadRoundTrip_fern(benchmark::State& state) {
  fern::ThreadPool pool(1);
  pool.apply([] {});  // the worker thread exists before timing
  for (auto _ : state) pool.apply([] {});
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ThreadRoundTrip_fern)->UseRealTime();

void BM_ThreadRoundTrip_condvar(benchmark::State& state) {
  std::mutex m;
  std::condition_variable to_worker, to_caller;
  bool job = false, done = false, quit = false;
  std::thread worker([&] {
    std::unique_lock<std::mutex> lock(m);
    for (;;) {
      to_worker.wait(lock, [&] { return job || quit; });
      if (quit) return;
      job = false;
      done = true;
      to_caller.notify_one();
    }
  });
  for (auto _ : state) {
    std::unique_lock<std::mutex> lock(m);
    job = true;
    to_worker.notify_one();
    to_caller.wait(lock, [&] { return done; });
    done = false;
  }
  {
    std::lock_guard<std::mutex> lock(m);
    quit = true;
  }
  to_worker.notify_one();
  worker.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ThreadRoundTrip_condvar)->UseRealTime();

// The floor for any event-loop design: a worker blocked in epoll_wait on an
// eventfd, woken by a write, answering through another eventfd that the
// caller waits on with epoll_wait (what fern's hub does on each side).
void BM_ThreadRoundTrip_epoll(benchmark::State& state) {
  int to_worker = eventfd(0, EFD_CLOEXEC), to_caller = eventfd(0, EFD_CLOEXEC);
  auto waiter = [](int fd) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return ep;
  };
  auto ping = [](int fd) {
    std::uint64_t one = 1;
    if (write(fd, &one, sizeof one) != sizeof one) std::abort();
  };
  auto pong = [](int ep, int fd) {
    epoll_event ev;
    while (epoll_wait(ep, &ev, 1, -1) != 1) {
    }
    std::uint64_t n;
    if (read(fd, &n, sizeof n) != sizeof n) std::abort();
    return n;
  };
  int worker_ep = waiter(to_worker), caller_ep = waiter(to_caller);
  std::thread worker([&] {
    while (pong(worker_ep, to_worker) != 2) ping(to_caller);
  });
  for (auto _ : state) {
    ping(to_worker);
    pong(caller_ep, to_caller);
  }
  std::uint64_t two = 2;  // quit
  if (write(to_worker, &two, sizeof two) != sizeof two) std::abort();
  worker.join();
  for (int fd : {to_worker, to_caller, worker_ep, caller_ep}) close(fd);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ThreadRoundTrip_epoll)->UseRealTime();

fern::bench::Reference reference(const std::string& subject) { return {subject, "condvar"}; }

}  // namespace

int main(int argc, char** argv) { return fern::bench::run_with_ratios(argc, argv, &reference); }
