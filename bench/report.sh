#!/usr/bin/env bash
# Prints the README's measurement tables as markdown: every benchmark binary
# of a release build, park_memory at a million greenlets, and callgrind's
# instructions per switch. Run it from the repository root after
#   cmake --preset release && cmake --build --preset release
# (FP control per greenlet) and, for the FERN_FP_CONTROL=OFF column,
#   cmake --preset release -B build/release-nofp -DFERN_FP_CONTROL=OFF && cmake --build build/release-nofp
set -euo pipefail
build=${1:-build/release}
nofp=${2:-build/release-nofp}
min_time=${MIN_TIME:-0.5}
reps=${REPS:-3}
# PIN=N runs every benchmark on CPU N only (taskset): on a VM whose vCPUs run
# at different speeds, a run that migrates mixes them, fern's rows and the
# baselines' unequally.
pin=()
[[ -n ${PIN:-} ]] && pin=(taskset -c "$PIN")

run() {  # binary [filter]: the ratio table only (its explanation is printed once, below)
  local bin=$1; shift
  echo '```'
  "${pin[@]}" "$bin" --benchmark_min_time="$min_time" --benchmark_repetitions="$reps" \
    --benchmark_report_aggregates_only=true "$@" 2>/dev/null | sed -n '/^ns per item/,$p' | grep -v '^  '
  echo '```'
}

echo "How to read the tables: one row per benchmark, BM_<Subject>_<impl>. ns per item is"
echo "CPU time per item (one switch, yield, task, timer or message), the median of $reps"
echo "repetitions of at least ${min_time}s each, +-spread the standard deviation across them"
echo "as % of the mean; the ratio divides by the subject's reference row of the same run."
echo "Google Benchmark's \"Library was built as DEBUG\" (not shown here) is about Debian's"
echo "libbenchmark package, not fern, which is built as the build directory's CMAKE_BUILD_TYPE."
echo

echo "### Switch latency ($build/bench/switch_bench)"
run "$build/bench/switch_bench"
if [[ -x $nofp/bench/switch_bench ]]; then
  echo
  echo "### Switch latency with FERN_FP_CONTROL=OFF ($nofp/bench/switch_bench)"
  run "$nofp/bench/switch_bench"
fi
echo
echo "### Instructions per switch (bench/callgrind_switch.sh $build/bench/switch_count)"
echo '```'
bench/callgrind_switch.sh "$build/bench/switch_count"
[[ -x $nofp/bench/switch_count ]] && bench/callgrind_switch.sh "$nofp/bench/switch_count" fern | sed 's/^/FERN_FP_CONTROL=OFF /'
echo '```'
echo
echo "### Parked greenlets ($build/bench/park_memory 1000000)"
echo '```'
"$build/bench/park_memory" 1000000 | tail -n 1
echo '```'
echo
echo "### Hub ($build/bench/hub_bench)"
run "$build/bench/hub_bench"
if [[ -x $build/bench/timer_bench ]]; then
  echo
  echo "### Timers ($build/bench/timer_bench)"
  run "$build/bench/timer_bench"
fi
if [[ -x $build/bench/sync_bench ]]; then
  echo
  echo "### Sync primitives ($build/bench/sync_bench)"
  run "$build/bench/sync_bench"
fi
if [[ -x $build/bench/op_count ]] && command -v valgrind >/dev/null; then
  echo
  echo "### Instructions per hub operation (bench/callgrind_ops.sh $build/bench/op_count)"
  echo '```'
  bench/callgrind_ops.sh "$build/bench/op_count"
  echo '```'
fi
if [[ -x $build/bench/timer_count ]] && command -v valgrind >/dev/null; then
  echo
  echo "### Instructions per timer arm+cancel, 100,000 armed (bench/callgrind_ops.sh $build/bench/timer_count)"
  echo '```'
  UNIT=arm+cancel N1=100000 N2=200000 bench/callgrind_ops.sh "$build/bench/timer_count" armcancel_fern armcancel_libev
  echo '```'
fi
