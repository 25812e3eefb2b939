#!/bin/sh
# Runs one example twin and compares it with the output real gevent printed.
#
# usage: run_example.sh [options] -- COMMAND [ARGS...]
#   --stdout FILE            expected stdout (the reference .out without its stderr lines)
#   --meta FILE              reference .meta; its rc= is the expected exit status
#   --rc N                   expected exit status instead of the .meta's
#   --unordered-after LINE   lines after the first LINE are compared as a set (random order)
#   --unordered              every line is compared as a set
#   --mask-ports             127.0.0.1:PORT for every 127.0.0.1:<number> (ephemeral ports)
#   --times-at-least         "at N.N seconds" are lower bounds: each printed time must be
#                            at least the reference's (a loaded machine runs late, never early)
#   --stderr-last LINE       the last line of stderr must be LINE
#   --sigquit-after SECONDS  send SIGQUIT after SECONDS, and again every 0.5 s until it exits
#   --stderr-ref FILE|none   check stderr instead of stdout and exit status: with the
#                            reference .err, the same number of "failed with" reports
#                            (fern's wording differs from Python's); with none, empty
# COMMAND may start with an emulator (qemu-aarch64 -L ...): signals sent to it
# reach the guest. Hex addresses (0x...) are masked on both sides.
set -u

expected_stdout= meta= rc= unordered_after= stderr_last= sigquit_after= stderr_ref= unordered= mask_ports=
times_at_least=
while [ $# -gt 0 ]; do
  case $1 in
    --stdout) expected_stdout=$2; shift 2 ;;
    --meta) meta=$2; shift 2 ;;
    --rc) rc=$2; shift 2 ;;
    --unordered-after) unordered_after=$2; shift 2 ;;
    --unordered) unordered=1; shift ;;
    --mask-ports) mask_ports=1; shift ;;
    --times-at-least) times_at_least=1; shift ;;
    --stderr-last) stderr_last=$2; shift 2 ;;
    --sigquit-after) sigquit_after=$2; shift 2 ;;
    --stderr-ref) stderr_ref=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "run_example.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ $# -eq 0 ] || [ -z "$expected_stdout" ]; then
  echo "run_example.sh: need --stdout FILE and -- COMMAND" >&2
  exit 2
fi
if [ -z "$rc" ]; then
  rc=$(sed -n 's/^rc=\(-\{0,1\}[0-9]*\).*/\1/p' "$meta")
fi

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

if [ -z "$sigquit_after" ]; then
  "$@" >"$tmp/stdout" 2>"$tmp/stderr" </dev/null
  status=$?
else
  # A background job of a non-interactive shell starts with SIGQUIT ignored,
  # so a signal that comes before the program installs its handler is lost,
  # not fatal: send it again until the program exits (at most ~10 s).
  "$@" >"$tmp/stdout" 2>"$tmp/stderr" </dev/null &
  pid=$!
  sleep "$sigquit_after"
  ticks=0
  while kill -0 "$pid" 2>/dev/null && [ $ticks -lt 100 ]; do
    if [ $((ticks % 5)) -eq 0 ]; then kill -QUIT "$pid" 2>/dev/null; fi
    ticks=$((ticks + 1))
    sleep 0.1
  done
  wait "$pid"
  status=$?
fi

# Python reports death by signal N as -N; a shell as 128+N.
if [ "$rc" -lt 0 ]; then rc=$((128 - rc)); fi

mask() {
  times='s/^//'
  if [ -n "$times_at_least" ]; then times='s/at [0-9][0-9]*\.[0-9][0-9]* seconds/at T seconds/g'; fi
  if [ -n "$mask_ports" ]; then
    sed 's/0x[0-9a-fA-F][0-9a-fA-F]*/0x?/g; s/127\.0\.0\.1:[0-9][0-9]*/127.0.0.1:PORT/g' "$1" | sed "$times"
  else
    sed 's/0x[0-9a-fA-F][0-9a-fA-F]*/0x?/g' "$1" | sed "$times"
  fi
}
# The "at N.N seconds" times of a file, one per line, in order.
times_of() {
  grep -o 'at [0-9][0-9]*\.[0-9][0-9]* seconds' "$1" | sed 's/at \(.*\) seconds/\1/'
}
# Everything up to the first $unordered_after line in order, the rest sorted.
normalize() {
  if [ -n "$unordered" ]; then
    mask "$1" | LC_ALL=C sort
  elif [ -z "$unordered_after" ]; then
    mask "$1"
  else
    mask "$1" | awk -v mark="$unordered_after" 'seen { print | "LC_ALL=C sort" ; next } { print } $0 == mark { seen = 1; fflush() }'
  fi
}

if [ -n "$stderr_ref" ]; then
  if [ "$stderr_ref" = none ]; then
    [ -s "$tmp/stderr" ] || exit 0
    echo "stderr is not empty (gevent printed nothing there):"
  else
    want=$(grep -c ' failed with ' "$stderr_ref")
    got=$(grep -c ' failed with ' "$tmp/stderr")
    [ "$want" -eq "$got" ] && exit 0
    echo "$got failure reports on stderr, gevent printed $want:"
  fi
  cat "$tmp/stderr"
  exit 1
fi

failed=0
normalize "$expected_stdout" >"$tmp/want"
normalize "$tmp/stdout" >"$tmp/got"
if ! cmp -s "$tmp/want" "$tmp/got"; then
  echo "stdout differs from the reference (--- expected, +++ actual):"
  diff -u "$tmp/want" "$tmp/got" | tail -n +3
  failed=1
fi
if [ -n "$times_at_least" ]; then
  times_of "$expected_stdout" >"$tmp/want_times"
  times_of "$tmp/stdout" >"$tmp/got_times"
  if ! paste "$tmp/want_times" "$tmp/got_times" | awk -F'\t' '$2 == "" || $2 + 0 < $1 + 0 { bad = 1 } END { exit bad }'; then
    echo "a printed time is earlier than the reference's (reference, actual):"
    paste "$tmp/want_times" "$tmp/got_times"
    failed=1
  fi
fi
if [ "$status" -ne "$rc" ]; then
  echo "exit status $status, expected $rc"
  failed=1
fi
if [ -n "$stderr_last" ]; then
  last=$(sed -n '$p' "$tmp/stderr")
  if [ "$last" != "$stderr_last" ]; then
    echo "last stderr line is '$last', expected '$stderr_last'"
    failed=1
  fi
fi
if [ $failed -ne 0 ] && [ -s "$tmp/stderr" ]; then
  echo "stderr:"
  cat "$tmp/stderr"
fi
exit $failed
