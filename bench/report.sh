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

run() {  # binary [filter]: the ratio table only
  local bin=$1; shift
  echo '```'
  "$bin" --benchmark_min_time="$min_time" --benchmark_repetitions="$reps" \
    --benchmark_report_aggregates_only=true "$@" 2>/dev/null | sed -n '/^ns per item/,$p'
  echo '```'
}

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
