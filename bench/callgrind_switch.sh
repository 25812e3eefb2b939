#!/usr/bin/env bash
# Instructions per switch under callgrind: runs switch_count with two switch
# counts per impl and divides the difference of the total instruction counts
# (Ir) by the difference of the counts, so start-up and set-up cancel out.
#
#   bench/callgrind_switch.sh path/to/switch_count [impl...]
#
# impls default to fern, greenlet and boost_fcontext (skipped when
# switch_count was built without Boost). Builds nothing.
set -euo pipefail

if [[ $# -lt 1 || ! -x $1 ]]; then
  echo "usage: $0 path/to/switch_count [fern|boost_fcontext|greenlet ...]" >&2
  exit 2
fi
binary=$1
shift
impls=("$@")
[[ ${#impls[@]} -gt 0 ]] || impls=(fern boost_fcontext greenlet)

n1=100000
n2=200000
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Total Ir of one run: the "totals:" line (or "summary:" of older files).
total_ir() {
  local impl=$1 n=$2 out="$work/callgrind.$1.$2"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" "$n" "$impl" \
    >"$work/log" 2>&1 || { cat "$work/log" >&2; return 1; }
  awk '/^(totals|summary):/ { print $2; found = 1; exit } END { if (!found) exit 1 }' "$out"
}

for impl in "${impls[@]}"; do
  if ! "$binary" 2 "$impl" >/dev/null 2>&1; then
    echo "$impl: not available in $binary"
    continue
  fi
  ir1=$(total_ir "$impl" "$n1")
  ir2=$(total_ir "$impl" "$n2")
  awk -v impl="$impl" -v a="$ir1" -v b="$ir2" -v n1="$n1" -v n2="$n2" \
    'BEGIN { printf "%s: %.1f instructions per switch\n", impl, (b - a) / (n2 - n1) }'
done
