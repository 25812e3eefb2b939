#!/usr/bin/env bash
# The io benchmarks of a release build, as in issue 8:
#   echo: closed-loop 64-byte echo at C=100 and C=1000 against fern's
#         StreamServer and the raw epoll C server (the ceiling), interleaved,
#         REPS repetitions each; the server's CPU per round trip (user and
#         system from its getrusage), p50/p99 round-trip latency; medians.
#   idle: server RSS per idle connection (one parked handler each) at 10,000
#         connections, and at 100,000 when RLIMIT_NOFILE allows.
#   thread pool: an empty ThreadPool job's round trip against a std::thread
#         condition-variable hand-off (Google Benchmark, ratio table).
# usage: bench/io_report.sh BUILD_DIR   (e.g. build/release)
# Ends with one line per server and load in the issue's format.
set -euo pipefail
build=${1:?usage: bench/io_report.sh BUILD_DIR}
bench=$build/bench
reps=${REPS:-3}
seconds=${SECONDS_PER_RUN:-2}
servers=(fern:echo_fern_server raw_epoll:raw_epoll_echo)
loads=(100 1000)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

echo "== echo: $reps repetitions of ${seconds} s, servers interleaved"
for rep in $(seq 1 "$reps"); do
  for c in "${loads[@]}"; do
    for s in "${servers[@]}"; do
      name=${s%%:*}
      line=$("$bench/echo_load" echo "$bench/${s#*:}" "$c" "$seconds")
      echo "rep $rep C=$c $name: $line"
      echo "$line" >>"$tmp/$name.$c"
    done
  done
done

echo
echo "== echo medians (user + sys = CPU per round trip)"
summary=()
for c in "${loads[@]}"; do
  for s in "${servers[@]}"; do
    name=${s%%:*}
    f=$tmp/$name.$c
    user=$(field user_us_per_rt <"$f" | median)
    sys=$(field sys_us_per_rt <"$f" | median)
    p50=$(field p50_us <"$f" | median)
    p99=$(field p99_us <"$f" | median)
    total=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    echo "$total" >"$tmp/total.$name.$c"
    printf 'echo C=%s: %s user %.3f us + sys %.3f us per round trip\n' "$c" "$name" "$user" "$sys"
    summary+=("$(printf 'echo C=%s: %s %s us CPU per round trip, p50 %.0f us, p99 %.0f us' "$c" "$name" "$total" "$p50" "$p99")")
  done
  awk -v f="$(cat "$tmp/total.fern.$c")" -v r="$(cat "$tmp/total.raw_epoll.$c")" -v c="$c" \
    'BEGIN { printf "echo C=%s: fern / raw_epoll = %.2fx CPU per round trip\n", c, f / r }'
done

echo
echo "== thread pool round trip ($bench/thread_pool_bench)"
"$bench/thread_pool_bench" --benchmark_min_time=0.5 --benchmark_repetitions="$reps" \
  --benchmark_report_aggregates_only=true 2>/dev/null | sed -n '/^ns per item/,$p'

echo
echo "== idle connections"
# Root may raise the hard limit (the load and the server each need N fds).
if [[ $(id -u) == 0 ]]; then ulimit -Hn 250000 2>/dev/null && ulimit -Sn 250000 2>/dev/null || true; fi
hard=$(ulimit -Hn)
idle=()
for n in 10000 100000; do
  if [[ $hard != unlimited && $hard -lt $((n + 64)) ]]; then
    echo "idle N=$n: skipped (RLIMIT_NOFILE hard limit $hard; server and load each need N fds)"
    continue
  fi
  for s in "${servers[@]}"; do
    name=${s%%:*}
    b=$("$bench/echo_load" idle "$bench/${s#*:}" "$n" | field rss_bytes_per_connection)
    idle+=("idle connections N=$n: $name $b bytes RSS each")
  done
done

echo
for line in "${summary[@]}" "${idle[@]}"; do echo "$line"; done
