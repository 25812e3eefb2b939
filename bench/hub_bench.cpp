// The hub's scheduling costs against Boost.Fiber's round-robin scheduler.
//
// Yield/K: K runnable greenlets (fibers) yield in turn; one item = one
// yield. SpawnJoin/1000: spawn 1000 trivial tasks (fibers), run them, join
// them all; one item = one task.
#include <benchmark/benchmark.h>

#include <vector>

#include "fern/core/task.h"
#include "ratio_report.h"

#if FERN_HAVE_BOOST_FIBER
#  include <boost/fiber/all.hpp>
#endif

namespace {

void run_yield(benchmark::State& state, bool fp_neutral) {
  const int k = static_cast<int>(state.range(0));
  bool stop = false;
  std::vector<fern::AnyTask> others;
  for (int i = 0; i < k - 1; ++i)
    others.push_back(fern::spawn([&stop, fp_neutral] {
      fern::Greenlet::current().set_fp_neutral(fp_neutral);
      while (!stop) fern::sleep(0);
    }).core());
  fern::Greenlet::current().set_fp_neutral(fp_neutral);
  fern::Hub::current().greenlet().set_fp_neutral(fp_neutral);
  fern::sleep(0);  // everyone is running: each main yield is one full round
  for (auto _ : state) fern::sleep(0);
  fern::Greenlet::current().set_fp_neutral(false);
  fern::Hub::current().greenlet().set_fp_neutral(false);
  stop = true;
  fern::joinall(others);
  state.SetItemsProcessed(state.iterations() * k);
}
void BM_Yield_fern(benchmark::State& state) { run_yield(state, false); }
BENCHMARK(BM_Yield_fern)->Arg(2)->Arg(1000);
// Every task, the main greenlet and the hub FP-neutral (Greenlet::set_fp_neutral).
void BM_Yield_fern_fpneutral(benchmark::State& state) { run_yield(state, true); }
BENCHMARK(BM_Yield_fern_fpneutral)->Arg(2)->Arg(1000);

void BM_SpawnJoin_fern(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::vector<fern::AnyTask> batch;
  batch.reserve(static_cast<std::size_t>(n));
  int ran = 0;
  for (auto _ : state) {
    for (int i = 0; i < n; ++i) batch.push_back(fern::spawn([&ran] { ++ran; }).core());
    fern::joinall(batch);
    batch.clear();
  }
  benchmark::DoNotOptimize(ran);
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_SpawnJoin_fern)->Arg(1000);

#if FERN_HAVE_BOOST_FIBER
void BM_Yield_boost_fiber(benchmark::State& state) {
  const int k = static_cast<int>(state.range(0));
  bool stop = false;
  std::vector<boost::fibers::fiber> others;
  for (int i = 0; i < k - 1; ++i)
    others.emplace_back([&stop] {
      while (!stop) boost::this_fiber::yield();
    });
  boost::this_fiber::yield();
  for (auto _ : state) boost::this_fiber::yield();
  stop = true;
  for (auto& f : others) f.join();
  state.SetItemsProcessed(state.iterations() * k);
}
BENCHMARK(BM_Yield_boost_fiber)->Arg(2)->Arg(1000);

void BM_SpawnJoin_boost_fiber(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::vector<boost::fibers::fiber> batch;
  batch.reserve(static_cast<std::size_t>(n));
  int ran = 0;
  for (auto _ : state) {
    for (int i = 0; i < n; ++i) batch.emplace_back([&ran] { ++ran; });
    for (auto& f : batch) f.join();
    batch.clear();
  }
  benchmark::DoNotOptimize(ran);
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_SpawnJoin_boost_fiber)->Arg(1000);
#endif

fern::bench::Reference reference(const std::string& subject) { return {subject, "boost_fiber"}; }

}  // namespace

int main(int argc, char** argv) { return fern::bench::run_with_ratios(argc, argv, &reference); }
