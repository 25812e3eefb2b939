#!/usr/bin/env bash
# Instructions per operation under callgrind: runs a counting program
# (`BINARY N SUBJECT`: op_count, switch_count) at two operation counts per
# subject and divides the difference of the totals (Ir) by the difference of
# the counts, so start-up and set-up cancel out. Exactly repeatable: a
# regression shows without a quiet machine.
#
#   bench/callgrind_ops.sh path/to/op_count [subject...]
#   UNIT=switch N1=100000 N2=200000 bench/callgrind_ops.sh path/to/switch_count fern
# Subjects default to every hub subject of op_count, fern and Boost.Fiber.
set -euo pipefail

if [[ $# -lt 1 || ! -x $1 ]]; then
  echo "usage: $0 path/to/op_count [subject...]" >&2
  exit 2
fi
binary=$1
shift
subjects=("$@")
[[ ${#subjects[@]} -gt 0 ]] || subjects=(yield_fern yield1000_fern yield_boost_fiber event_fern event_boost_fiber
  queue_fern semaphore_fern channel_fern channel_boost_fiber spawnjoin_fern)
unit=${UNIT:-operation}
n1=${N1:-20000}
n2=${N2:-40000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Total Ir of one run: the "totals:" line (or "summary:" of older files).
total_ir() {
  local subject=$1 n=$2 out="$work/callgrind.$1.$2"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" "$n" "$subject" \
    >"$work/log" 2>&1 || { cat "$work/log" >&2; return 1; }
  awk '/^(totals|summary):/ { print $2; found = 1; exit } END { if (!found) exit 1 }' "$out"
}

for subject in "${subjects[@]}"; do
  if ! "$binary" 2 "$subject" >/dev/null 2>&1; then
    echo "$subject: not available in $binary"
    continue
  fi
  ir1=$(total_ir "$subject" "$n1")
  ir2=$(total_ir "$subject" "$n2")
  awk -v s="$subject" -v u="$unit" -v a="$ir1" -v b="$ir2" -v n1="$n1" -v n2="$n2" \
    'BEGIN { printf "%s: %.1f instructions per %s\n", s, (b - a) / (n2 - n1), u }'
done
