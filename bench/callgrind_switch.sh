#!/usr/bin/env bash
# Instructions per switch under callgrind (see callgrind_ops.sh):
#
#   bench/callgrind_switch.sh path/to/switch_count [impl...]
#
# impls default to fern, floor, boost_fcontext, greenlet and greenlet_empty (each skipped when
# switch_count was built without Boost). Builds nothing.
set -euo pipefail
if [[ $# -lt 1 || ! -x $1 ]]; then
  echo "usage: $0 path/to/switch_count [fern|boost_fcontext|greenlet ...]" >&2
  exit 2
fi
binary=$1
shift
impls=("$@")
[[ ${#impls[@]} -gt 0 ]] || impls=(fern floor boost_fcontext greenlet greenlet_empty)
UNIT=switch N1=100000 N2=200000 exec "$(dirname "$0")/callgrind_ops.sh" "$binary" "${impls[@]}"
