// What the blocking watchdog (io/watchdog.h) costs a running program: the
// hub's yield and a raw greenlet switch, each with no watchdog (the
// reference rows, impl "fern") and with one sampling every 25 ms (threshold
// 0.1 s, impl "fern_watchdog"). The switch path has nothing of the watchdog
// in it; the loop bumps a counter per iteration and stores a flag around its
// poller wait, on or off. One item = one yield or one switch.
// `watchdog_bench --demo` instead prints one report: a task that computes
// for 0.3 s without switching, under a 0.1 s watchdog.
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <vector>

#include "fern/core/clock.h"
#include "fern/core/task.h"
#include "fern/io/watchdog.h"
#include "ratio_report.h"

namespace {

std::unique_ptr<fern::Watchdog> maybe_watchdog(bool on) {
  if (!on) return nullptr;
  fern::WatchdogOptions options;
  options.threshold = 0.1;
  return std::make_unique<fern::Watchdog>(options);
}

void yield_loop(benchmark::State& state, bool watched) {
  auto watchdog = maybe_watchdog(watched);
  bool stop = false;
  auto other = fern::spawn([&stop] {
    while (!stop) fern::sleep(0);
  });
  fern::sleep(0);
  for (auto _ : state) fern::sleep(0);
  stop = true;
  other->join();
  state.SetItemsProcessed(state.iterations() * 2);
}

void switch_loop(benchmark::State& state, bool watched) {
  auto watchdog = maybe_watchdog(watched);
  fern::Greenlet main = fern::Greenlet::current();
  fern::Greenlet echo([&main](fern::Value v) {
    for (;;) v = main.switch_value(std::move(v));
  });
  echo.switch_to(0);
  for (auto _ : state) benchmark::DoNotOptimize(echo.switch_to(1));
  state.SetItemsProcessed(state.iterations() * 2);  // a round trip is two switches
}

void BM_Yield_fern(benchmark::State& state) { yield_loop(state, false); }
void BM_Yield_fern_watchdog(benchmark::State& state) { yield_loop(state, true); }
void BM_Switch_fern(benchmark::State& state) { switch_loop(state, false); }
void BM_Switch_fern_watchdog(benchmark::State& state) { switch_loop(state, true); }
BENCHMARK(BM_Yield_fern);
BENCHMARK(BM_Yield_fern_watchdog);
BENCHMARK(BM_Switch_fern);
BENCHMARK(BM_Switch_fern_watchdog);

extern "C" __attribute__((noinline)) void compute_without_yielding(fern::Nanos ns) {
  fern::Nanos until = fern::monotonic_now() + ns;
  while (fern::monotonic_now() < until) {
  }
  asm volatile("");
}

int demo() {
  fern::WatchdogOptions options;
  options.threshold = 0.1;
  fern::Watchdog watchdog(options);
  auto task = fern::spawn([] { compute_without_yielding(300'000'000); });
  task->set_name("cruncher");
  task->join();
  return 0;
}

fern::bench::Reference reference(const std::string& subject) { return {subject, "fern"}; }

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--demo") == 0) return demo();
  return fern::bench::run_with_ratios(argc, argv, &reference);
}
