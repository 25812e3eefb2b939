#!/usr/bin/env bash
# A hub per thread, used: echo throughput of fern's server on 1 and 2
# threads (ThreadedStreamServer: one hub and one SO_REUSEPORT listener per
# thread), closed loop, 64-byte messages, C connections, 127.0.0.1, with the
# single-threaded epoll load generator (bench/echo_load) on the same machine.
# Two server kinds: plain echo, and echo that spends WORK_US microseconds of
# CPU per message (a server that computes: its own CPU is what can scale).
# Prints the medians of REPS interleaved runs: round trips per second, the
# ratio 2 threads / 1 thread, and the CPU (in cores) of server and generator.
# usage: bench/scale_report.sh BUILD_DIR   (e.g. build/release)
set -euo pipefail
build=${1:?usage: bench/scale_report.sh BUILD_DIR}
bench=$build/bench
reps=${REPS:-3}
seconds=${SECONDS_PER_RUN:-2}
c=${CONNECTIONS:-100}
work=${WORK_US:-200}
# shellcheck source=bench/report_lib.sh
source "$(dirname "$0")/report_lib.sh"

echo "== $reps repetitions of ${seconds} s, C=$c, $(nproc) CPUs"
for rep in $(seq 1 "$reps"); do
  for w in 0 "$work"; do
    for t in 1 2; do
      line=$(FERN_ECHO_THREADS=$t FERN_ECHO_WORK_US=$w "$bench/echo_load" echo "$bench/echo_fern_server" "$c" "$seconds")
      echo "rep $rep work=${w}us threads=$t: $line"
      echo "$line" >>"$tmp/$w.$t"
    done
  done
done

echo
for w in 0 "$work"; do
  for t in 1 2; do
    f=$tmp/$w.$t
    rps=$(field rt_per_s <"$f" | median)
    echo "$rps" >"$tmp/rps.$w.$t"
    printf 'echo work=%sus threads=%s: %.0f round trips/s, server %.2f cores, load generator %.2f cores\n' \
      "$w" "$t" "$rps" "$(field server_cpu_share <"$f" | median)" "$(field load_cpu_share <"$f" | median)"
  done
  awk -v a="$(cat "$tmp/rps.$w.1")" -v b="$(cat "$tmp/rps.$w.2")" -v w="$w" \
    'BEGIN { printf "echo work=%sus: 2 threads / 1 thread = %.2fx round trips/s\n", w, b / a }'
done
