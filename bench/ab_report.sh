#!/usr/bin/env bash
# Before/after: the fern rows of switch_bench, hub_bench and sync_bench from
# two release builds (e.g. the base commit's and this one's), run
# interleaved ROUNDS times; prints each row's median ns per item (CPU time,
# from the ratio table) in both and the ratio after / before, then the same
# for the fastest round of each (a busy machine only adds time: on a shared
# VM the minimum is the steadier estimate of a quiet minute).
# usage: bench/ab_report.sh BEFORE_BUILD_DIR AFTER_BUILD_DIR
set -euo pipefail
before=${1:?usage: bench/ab_report.sh BEFORE_BUILD_DIR AFTER_BUILD_DIR}
after=${2:?usage: bench/ab_report.sh BEFORE_BUILD_DIR AFTER_BUILD_DIR}
rounds=${ROUNDS:-3}
min_time=${MIN_TIME:-0.2}
# shellcheck source=bench/report_lib.sh
source "$(dirname "$0")/report_lib.sh"

benches=(switch_bench:'BM_Switch(Value)?_fern' hub_bench:'BM_Yield_fern/2|SpawnJoin_fern' sync_bench:'PingPong_fern|Fanout_fern/1$')
for round in $(seq 1 "$rounds"); do
  for side in before after; do
    dir=$before
    [[ $side == after ]] && dir=$after
    for b in "${benches[@]}"; do
      # "Subject  impl  12.34 ns ..." rows of the ratio table
      "$dir/bench/${b%%:*}" --benchmark_filter="${b#*:}" --benchmark_min_time="$min_time" 2>/dev/null |
        awk '$4 == "ns" { print $1 "/" $2, $3 }' >>"$tmp/$side"
    done
  done
done
minimum() { sort -g | head -1; }
for stat in median minimum; do
  printf '%-28s %12s %12s %8s  (%s of %s rounds)\n' row before after ratio "$stat" "$rounds"
  for row in $(awk '{ print $1 }' "$tmp/before" | sort -u); do
    b=$(awk -v r="$row" '$1 == r { print $2 }' "$tmp/before" | $stat)
    a=$(awk -v r="$row" '$1 == r { print $2 }' "$tmp/after" | $stat)
    awk -v r="$row" -v b="$b" -v a="$a" 'BEGIN { printf "%-28s %9.2f ns %9.2f ns %7.3fx\n", r, b, a, a / b }'
  done
done
