#!/usr/bin/env bash
# HTTP hello-world keep-alive throughput (issue 10): wrk at 100 connections
# against fern's HttpServer (bench/http_hello_server) and against nginx
# (one worker process, master off, the same 13-byte body, a temporary config
# on a loopback port), interleaved, REPS runs of SECONDS each; the server
# process's CPU per request from /proc/PID/stat (utime + stime) over the
# run; p99 latency from wrk --latency; medians. Then the RSS each idle
# keep-alive connection costs (IDLE connections, one request each, held
# open). Last, WebSocket echo of 64-byte messages at 100 connections against
# the io echo server (bench/echo_load ws|echo): the framing's cost. With
# valgrind, each server's user-space instructions per request under callgrind.
# Ends with one line per server in the issue's format.
# usage: bench/http_report.sh BUILD_DIR   (e.g. build/release); needs wrk, nginx
set -euo pipefail
build=${1:?usage: bench/http_report.sh BUILD_DIR}
reps=${REPS:-3}
seconds=${SECONDS_PER_RUN:-5}
conns=${CONNECTIONS:-100}
idle_n=${IDLE:-2000}
threads=${WRK_THREADS:-1}
for tool in wrk nginx python3; do
  command -v "$tool" >/dev/null || { echo "http_report.sh: $tool not found (Debian: apt-get install wrk nginx)" >&2; exit 2; }
done
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
tck=$(getconf CLK_TCK)

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 "${2:-100}"); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# fern
fern_port=$(free_port)
"$build/bench/http_hello_server" "$fern_port" >/dev/null &
fern_pid=$!
pids+=("$fern_pid")
# nginx_conf DIR PORT: a one-process nginx (master_process off) serving the
# same body, its files in DIR.
nginx_conf() {
  mkdir -p "$1"
  cat >"$1/nginx.conf" <<CONF
worker_processes 1;
master_process off;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path $1;
  proxy_temp_path $1;
  fastcgi_temp_path $1;
  uwsgi_temp_path $1;
  scgi_temp_path $1;
  server {
    listen 127.0.0.1:$2;
    location / { default_type text/plain; return 200 "Hello, World!"; }
  }
}
CONF
}
nginx_port=$(free_port)
nginx_conf "$tmp/nginx" "$nginx_port"
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" &
nginx_pid=$!
pids+=("$nginx_pid")
wait_port "$fern_port"
wait_port "$nginx_port"
echo "== response bytes"
for s in fern:$fern_port nginx:$nginx_port; do
  printf '%s: ' "${s%%:*}"
  exec 3<>"/dev/tcp/127.0.0.1/${s#*:}"
  printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
  wc -c <&3
  exec 3<&-
done

echo "== wrk -t$threads -c$conns -d${seconds}s, $reps repetitions, servers interleaved"
for rep in $(seq 1 "$reps"); do
  for s in fern:$fern_pid:$fern_port nginx:$nginx_pid:$nginx_port; do
    IFS=: read -r name pid port <<<"$s"
    before=$(cpu_ticks "$pid")
    out=$(wrk -t"$threads" -c"$conns" -d"${seconds}s" --latency "http://127.0.0.1:$port/")
    after=$(cpu_ticks "$pid")
    reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } print v }' <<<"$out")
    cpu_us=$(awk -v a="$after" -v b="$before" -v t="$tck" -v n="$reqs" 'BEGIN { printf "%.2f", (a - b) / t * 1e6 / n }')
    echo "rep $rep $name: $rps req/s, $cpu_us us CPU per request, p99 $p99 ms"
    echo "$rps" >>"$tmp/$name.rps"
    echo "$cpu_us" >>"$tmp/$name.cpu"
    echo "$p99" >>"$tmp/$name.p99"
    echo "$rps $cpu_us" >"$tmp/$name.last"
  done
  # The two runs of a repetition are next to each other in time: their
  # ratio drifts less with the machine's load than the medians do.
  read -r fr fc <"$tmp/fern.last"
  read -r nr nc <"$tmp/nginx.last"
  awk -v a="$fr" -v b="$nr" 'BEGIN { print a / b }' >>"$tmp/ratio.rps"
  awk -v a="$fc" -v b="$nc" 'BEGIN { print a / b }' >>"$tmp/ratio.cpu"
done

echo "== idle keep-alive connections: RSS each, $idle_n connections after one request"
idle_rss() {  # pid port -> bytes per connection
  python3 - "$1" "$2" "$idle_n" <<'PY'
import socket, sys, time
pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
conns = []
def connect(k):
    for _ in range(k):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while not data.endswith(b"Hello, World!"):
            data += s.recv(4096)
        conns.append(s)
connect(100)  # warm up allocators and buffers
time.sleep(0.2)
base = rss()
connect(n)
time.sleep(0.2)
print(int((rss() - base) / n))
PY
}
fern_idle=$(idle_rss "$fern_pid" "$fern_port")
nginx_idle=$(idle_rss "$nginx_pid" "$nginx_port")
echo "fern $fern_idle bytes, nginx $nginx_idle bytes"

echo "== WebSocket echo against plain echo, 64-byte messages, $conns connections, $reps x ${seconds} s"
for rep in $(seq 1 "$reps"); do
  for mode in ws echo; do
    line=$("$build/bench/echo_load" "$mode" "$build/bench/echo_fern_server" "$conns" "$seconds")
    echo "rep $rep $mode: $line"
    awk -v s="$seconds" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
      END { printf "%.0f %.3f\n", v["rt"] / s, v["user_us_per_rt"] + v["sys_us_per_rt"] }' <<<"$line" >>"$tmp/$mode.echo"
  done
done

# User-space instructions per request, which the machine's load does not
# move: each server again, under callgrind, on its own port; its counters
# zeroed after a 1 s warm-up and dumped after a wrk run at the same
# concurrency; divided by the requests wrk completed.
count_ir() {  # name port command...
  local name=$1 port=$2 pid out reqs ir
  shift 2
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$name.%p" "$@" >/dev/null 2>"$tmp/cg.$name.err" &
  pid=$!
  pids+=("$pid")
  wait_port "$port" 600
  wrk -t"$threads" -c"$conns" -d1s "http://127.0.0.1:$port/" >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1
  out=$(wrk -t"$threads" -c"$conns" -d"${seconds}s" "http://127.0.0.1:$port/")
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
  ir=$(awk '/^summary:/ { print $2 }' "$tmp/cg.$name.$pid.1")
  awk -v i="$ir" -v n="$reqs" 'BEGIN { printf "%.0f\n", i / n }' >"$tmp/$name.ir"
  echo "$name: $ir instructions for $reqs requests: $(cat "$tmp/$name.ir") per request"
}
if command -v valgrind >/dev/null && command -v callgrind_control >/dev/null; then
  echo "== instructions per request (callgrind, user space; wrk -c$conns -d${seconds}s after a 1 s warm-up)"
  port=$(free_port)
  count_ir fern "$port" "$build/bench/http_hello_server" "$port"
  port=$(free_port)
  nginx_conf "$tmp/nginx-cg" "$port"
  count_ir nginx "$port" nginx -p "$tmp/nginx-cg" -c "$tmp/nginx-cg/nginx.conf" -e "$tmp/nginx-cg/error.log"
fi

echo
awk -v n="$conns" -v a="$(median <"$tmp/ratio.rps")" -v c="$(median <"$tmp/ratio.cpu")" \
  'BEGIN { printf "http hello c=%s: fern / nginx = %.2fx req/s, %.2fx CPU per request (median of the per-repetition ratios)\n", n, a, c }'
echo "http idle keep-alive connection: fern $fern_idle bytes RSS, nginx $nginx_idle bytes RSS"
if [[ -s $tmp/fern.ir && -s $tmp/nginx.ir ]]; then
  awk -v f="$(cat "$tmp/fern.ir")" -v n="$(cat "$tmp/nginx.ir")" -v c="$conns" \
    'BEGIN { printf "http hello c=%s: fern %d, nginx %d user-space instructions per request (callgrind): %.2fx\n", c, f, n, f / n }'
fi
for mode in ws echo; do
  awk '{ print $1 }' "$tmp/$mode.echo" | median >"$tmp/$mode.rts"
  awk '{ print $2 }' "$tmp/$mode.echo" | median >"$tmp/$mode.cpu"
done
awk -v wr="$(cat "$tmp/ws.rts")" -v wc="$(cat "$tmp/ws.cpu")" -v er="$(cat "$tmp/echo.rts")" -v ec="$(cat "$tmp/echo.cpu")" -v c="$conns" \
  'BEGIN { printf "ws echo c=%s: fern %.0f round trips/s, %.2f us CPU per round trip; io echo %.0f/s, %.2f us; ws / io = %.2fx CPU\n", c, wr, wc, er, ec, wc / ec }'
# Last, one line per server in the issue's format.
for name in fern nginx; do
  rps=$(median <"$tmp/$name.rps")
  cpu=$(median <"$tmp/$name.cpu")
  p99=$(median <"$tmp/$name.p99")
  printf 'http hello c=%s: %s %.0f req/s, %s us CPU per request, p99 %s ms\n' "$conns" "$name" "$rps" "$cpu" "$p99"
done
