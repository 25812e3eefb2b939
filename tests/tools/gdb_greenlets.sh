#!/usr/bin/env bash
# fern's gdb commands on a Release build with -g: `fern greenlets` lists the
# greenlets of both threads with their states and park sites, and `fern bt`
# shows each parked greenlet's frames down to its park-site function.
set -euo pipefail
target=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
# The script comes from the program's .debug_gdb_scripts section (auto-load).
out=$(gdb -nx -batch -iex 'set auto-load safe-path /' \
  -ex 'break fern_test_breakpoint_here' -ex run -ex 'fern greenlets' "$target" 2>&1)
echo "$out"
listing=$(printf '%s\n' "$out" | grep -E '^  #[0-9]+ ' || true)
[ "$(printf '%s\n' "$out" | grep -c '^fern: thread ')" = 2 ] || fail "expected two threads in the listing"
printf '%s\n' "$out" | grep -q '^  loop: [0-9]* iterations' || fail "no loop statistics line"
expect() {  # expect NAME REGEX: the greenlet line naming NAME matches REGEX
  local line
  line=$(printf '%s\n' "$listing" | grep -F "\"$1\"" || true)
  [ -n "$line" ] || fail "no greenlet named $1"
  printf '%s\n' "$line" | grep -qE "$2" || fail "$1: '$line' does not match '$2'"
}
expect sleeper 'parked .* stack [1-9][0-9]*/[0-9]+ .*  sleep$'
expect event-waiter 'parked .*  Event.wait 0x[0-9a-f]+$'
expect queue-getter 'parked .*  Queue.get 0x[0-9a-f]+$'
expect fd-reader 'parked .*  fd read fd [0-9]+$'
expect other-thread-sleeper 'parked .*  sleep$'
printf '%s\n' "$listing" | grep -qE '^  #0 +running +parent - +stack -  main$' || fail "main not running"
# gdb's stack use is the program's own (its dump_greenlets above): both count
# from the first frame, arch::stack_color bytes below the top.
for name in sleeper event-waiter queue-getter fd-reader; do
  uses=$(printf '%s\n' "$out" | grep -F "\"$name\"" | grep -oE 'stack [0-9]+/[0-9]+' | sort -u)
  [ "$(printf '%s\n' "$uses" | wc -l)" = 1 ] || fail "$name: gdb and dump_greenlets disagree: $uses"
done
printf '%s\n' "$listing" | grep -qE ' suspended .*  hub$' || fail "no suspended hub"
printf '%s\n' "$listing" | grep -qE ' unstarted ' || fail "no unstarted greenlet"

id_of() { printf '%s\n' "$listing" | grep -F "\"$1\"" | head -n 1 | sed -E 's/^  #([0-9]+).*/\1/'; }
raw_id=$(printf '%s\n' "$listing" | grep -E ' suspended ' | grep -vE '  hub$' | head -n 1 | sed -E 's/^  #([0-9]+).*/\1/')
cmds=(-ex 'break fern_test_breakpoint_here' -ex run)
for name in sleeper event-waiter queue-getter fd-reader; do
  cmds+=(-ex "echo @@ $name\n" -ex "fern bt $(id_of "$name")")
done
cmds+=(-ex "echo @@ raw\n" -ex "fern bt $raw_id")
# The other thread's greenlet: ids are per thread, so select that thread
# (gdb's thread 2 is the only other one) and fern bt prefers its greenlets.
cmds+=(-ex "echo @@ select\n" -ex "thread 2" -ex "echo @@ other\n" -ex "fern bt $(id_of other-thread-sleeper)")
cmds+=(-ex "echo @@ select\n" -ex "thread 1")
cmds+=(-ex "echo @@ after\n" -ex "bt 1")
bts=$(gdb -nx -batch -iex 'set auto-load safe-path /' "${cmds[@]}" "$target" 2>&1)
echo "$bts"
section() { printf '%s\n' "$bts" | awk -v s="@@ $1" '$0 == s {on = 1; next} /^@@ / {on = 0} on'; }
check_bt() {  # check_bt SECTION FUNCTION
  local b
  b=$(section "$1")
  printf '%s\n' "$b" | grep -qE "^#[0-9]+ .*$2" || fail "$1: $2 not in its backtrace"
  printf '%s\n' "$b" | grep -qE '^#0 .*fern_arch_switch|^#0 .*switch' || fail "$1: frame #0 is not the switch"
  printf '%s\n' "$b" | tail -n 1 | grep -q fern_arch_trampoline || fail "$1: backtrace does not end at the trampoline"
  if printf '%s\n' "$b" | grep -qiE 'Backtrace stopped|corrupt stack'; then fail "$1: broken unwind"; fi
}
check_bt sleeper park_in_sleep
check_bt event-waiter park_on_event
check_bt queue-getter park_on_queue
check_bt fd-reader park_on_fd
check_bt raw switched_away
check_bt other park_in_sleep
section after | grep -qE '^#0 .*fern_test_breakpoint_here' || fail "registers not restored after fern bt"
echo "OK: fern greenlets lists both threads; fern bt shows every park site"
