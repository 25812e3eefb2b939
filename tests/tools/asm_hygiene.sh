#!/usr/bin/env bash
# Assembler hygiene of the switch files: a non-executable-stack note in every
# object, CFI (an FDE) for every function, and with CET / BTI enabled the
# landing pads and the GNU property note claiming exactly what is supported.
set -euo pipefail
src=$1; cc=${2:-cc}; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

check_common() {  # object
  readelf -S "$1" | grep -q '.note.GNU-stack' || fail "$1: no .note.GNU-stack"
  local fdes; fdes=$(readelf --debug-dump=frames "$1" | grep -c ' FDE ')
  [ "$fdes" -ge 3 ] || fail "$1: $fdes FDEs for 3 functions"
}

"$cc" -c "$src/arch/x86_64_sysv.S" -o "$tmp/plain.o"
check_common "$tmp/plain.o"
if readelf -n "$tmp/plain.o" | grep -q 'x86 feature'; then fail "plain build claims CET features"; fi
"$cc" -c -fcf-protection "$src/arch/x86_64_sysv.S" -o "$tmp/cet.o"
check_common "$tmp/cet.o"
readelf -n "$tmp/cet.o" | grep -q 'x86 feature: IBT$' || fail "CET build: IBT not claimed (or SHSTK claimed)"
[ "$(objdump -d "$tmp/cet.o" | grep -c endbr64)" -ge 3 ] || fail "CET build: missing endbr64"

if command -v aarch64-linux-gnu-gcc >/dev/null; then
  aarch64-linux-gnu-gcc -c "$src/arch/aarch64_aapcs64.S" -o "$tmp/a64.o"
  check_common "$tmp/a64.o"
  aarch64-linux-gnu-gcc -c -mbranch-protection=standard "$src/arch/aarch64_aapcs64.S" -o "$tmp/bti.o"
  check_common "$tmp/bti.o"
  readelf -n "$tmp/bti.o" | grep -q 'AArch64 feature: BTI, PAC' || fail "BTI build: property note missing"
  [ "$(aarch64-linux-gnu-objdump -d "$tmp/bti.o" | grep -c 'bti')" -ge 3 ] || fail "BTI build: missing bti c"
fi
echo "OK: GNU-stack notes, CFI, CET and BTI landing pads and property notes"
