#!/usr/bin/env bash
# gdb's `bt` inside a greenlet must end cleanly at fern_arch_trampoline:
# no "Backtrace stopped", no corrupt or repeating frames.
set -euo pipefail
target=$1
out=$(gdb -nx -batch -ex 'break fern_test_breakpoint_here' -ex run -ex bt "$target" 2>&1)
echo "$out"
bt=$(printf '%s\n' "$out" | grep -E '^#[0-9]+ ')
last=$(printf '%s\n' "$bt" | tail -n 1)
fail() { echo "FAIL: $*" >&2; exit 1; }
printf '%s\n' "$bt" | grep -q 'inner' || fail "inner() missing from the backtrace"
printf '%s\n' "$bt" | grep -q 'outer' || fail "outer() missing from the backtrace"
case "$last" in *fern_arch_trampoline*) ;; *) fail "backtrace does not end at fern_arch_trampoline: $last" ;; esac
if printf '%s\n' "$out" | grep -qiE 'Backtrace stopped|corrupt stack|previous frame identical'; then
  fail "gdb reported a broken unwind"
fi
echo "OK: backtrace ends at fern_arch_trampoline"
