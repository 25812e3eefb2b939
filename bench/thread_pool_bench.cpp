// Round trip of an empty job through fern's ThreadPool (spawn, run in a
// worker, hand the result back through the hub's cross-thread wake, wait in
// the calling greenlet) against a plain std::thread hand-off with a mutex
// and condition variables. One item is one round trip.
#include <benchmark/benchmark.h>

#include <condition_variable>
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

fern::bench::Reference reference(const std::string& subject) { return {subject, "condvar"}; }

}  // namespace

int main(int argc, char** argv) { return fern::bench::run_with_ratios(argc, argv, &reference); }
