#!/usr/bin/env bash
# The hooks' measurements of a release build (issue 11):
#   fast path: hooks_bench (Google Benchmark) -- a 1-byte write + read on a
#     ready socket: hooked from a greenlet (the cooperative path), hooked
#     on a thread without a hub (libc's path), and libc's own functions;
#     ns per call and the ratio to libc, REPS repetitions (median);
#     then user-space instructions per call under callgrind (hooks_count).
#   hiredis: the GET loop of C connections, C OS threads with the plain
#     library against C greenlets on one thread with the hooks, each in its
#     own process, REPS interleaved runs of SECONDS; medians and ratio.
# usage: bench/hooks_report.sh BUILD_DIR   (e.g. build/release)
set -euo pipefail
build=${1:?usage: bench/hooks_report.sh BUILD_DIR}
bench=$build/bench
reps=${REPS:-3}
seconds=${SECONDS_PER_RUN:-2}
conns=${CONNECTIONS:-"8 50"}
here=$(cd "$(dirname "$0")" && pwd)

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "== fast path: hooks_bench, $reps repetitions"
"$bench/hooks_bench" --benchmark_repetitions="$reps" --benchmark_min_time=0.5 | sed -n '/^ns per item/,$p'

if command -v valgrind >/dev/null; then
  echo
  echo "== instructions per call (callgrind, user space only: the syscall itself is not counted)"
  UNIT=call "$here/callgrind_ops.sh" "$bench/hooks_count" readwrite_libc readwrite_hooked readwrite_hookednohub
fi

if [[ -x $bench/hooks_redis_load ]]; then
  echo
  echo "== hiredis GET loop: $reps interleaved runs of $seconds s per mode"
  for c in $conns; do
    t=() g=()
    for _ in $(seq 1 "$reps"); do
      t+=("$("$bench/hooks_redis_load" "$c" "$seconds" threads | sed -n 's/.*(plain) \([0-9]*\)\/s.*/\1/p')")
      g+=("$("$bench/hooks_redis_load" "$c" "$seconds" greenlets | sed -n 's/.*(hooks) \([0-9]*\)\/s.*/\1/p')")
    done
    tm=$(printf '%s\n' "${t[@]}" | median)
    gm=$(printf '%s\n' "${g[@]}" | median)
    awk -v c="$c" -v t="$tm" -v g="$gm" -v ts="${t[*]}" -v gs="${g[*]}" 'BEGIN {
      printf "C=%d: %d OS threads, plain hiredis %.0f GET/s (runs: %s); 1 thread, %d greenlets, hooks %.0f GET/s (runs: %s); ratio %.2f\n",
             c, c, t, ts, c, g, gs, g / t }'
  done
fi
