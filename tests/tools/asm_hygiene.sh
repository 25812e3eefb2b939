#!/usr/bin/env bash
# Assembler hygiene of the switch files: a non-executable-stack note in every
# object, CFI (an FDE) for every function whose rows are right at every
# address (cfi_rows.awk), and with CET / BTI enabled the landing pads and the
# GNU property note claiming exactly what is supported. The AArch64 object is
# built with aarch64-linux-gnu-gcc, or clang when that is missing.
set -euo pipefail
src=$1; cc=${2:-cc}; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

check_common() {  # object [x86|a64]
  readelf -S "$1" | grep -q '.note.GNU-stack' || fail "$1: no .note.GNU-stack"
  local fdes; fdes=$(readelf --debug-dump=frames "$1" | grep -c ' FDE ')
  [ "$fdes" -ge 3 ] || fail "$1: $fdes FDEs for 3 functions"
  local pc; pc=$(readelf -sW "$1" | awk '$8 == "fern_arch_switch" { print $2 }')
  readelf --debug-dump=frames-interp "$1" |
    awk -v arch="${2:-x86}" -v pc="$pc" -f "$here/cfi_rows.awk" || fail "$1: unwind rows"
  # The trampoline ends the unwind chain: its return address is undefined.
  pc=$(readelf -sW "$1" | awk '$8 == "fern_arch_trampoline" { print $2 }')
  readelf --debug-dump=frames-interp "$1" | awk -v pc="$pc" '
    / FDE / { r = $0; sub(/.*pc=0*/, "", r); sub(/\.\..*/, "", r); p = pc; sub(/^0*/, "", p); f = (r == p); next }
    f && $1 == "LOC" { for (i = 1; i <= NF; ++i) if ($i == "ra") c = i; next }
    f && c { ok = ($c == "u"); f = 0 }
    END { exit !ok }' || fail "$1: trampoline return address not undefined"
}
here=$(cd "$(dirname "$0")" && pwd)

"$cc" -c "$src/arch/x86_64_sysv.S" -o "$tmp/plain.o"
check_common "$tmp/plain.o"
"$cc" -c -DFERN_FP_CONTROL=0 "$src/arch/x86_64_sysv.S" -o "$tmp/nofp.o"
check_common "$tmp/nofp.o"
if readelf -n "$tmp/plain.o" | grep -q 'x86 feature'; then fail "plain build claims CET features"; fi
"$cc" -c -fcf-protection "$src/arch/x86_64_sysv.S" -o "$tmp/cet.o"
check_common "$tmp/cet.o"
readelf -n "$tmp/cet.o" | grep -q 'x86 feature: IBT$' || fail "CET build: IBT not claimed (or SHSTK claimed)"
[ "$(objdump -d "$tmp/cet.o" | grep -c endbr64)" -ge 3 ] || fail "CET build: missing endbr64"

a64cc=
if command -v aarch64-linux-gnu-gcc >/dev/null; then a64cc=(aarch64-linux-gnu-gcc)
elif command -v clang >/dev/null; then a64cc=(clang --target=aarch64-linux-gnu)
fi
if [ -n "$a64cc" ]; then
  "${a64cc[@]}" -c "$src/arch/aarch64_aapcs64.S" -o "$tmp/a64.o"
  check_common "$tmp/a64.o" a64
  "${a64cc[@]}" -c -DFERN_FP_CONTROL=0 "$src/arch/aarch64_aapcs64.S" -o "$tmp/a64nofp.o"
  check_common "$tmp/a64nofp.o" a64
  "${a64cc[@]}" -c -mbranch-protection=standard "$src/arch/aarch64_aapcs64.S" -o "$tmp/bti.o"
  check_common "$tmp/bti.o" a64
  readelf -n "$tmp/bti.o" | grep -q 'AArch64 feature: BTI, PAC' || fail "BTI build: property note missing"
  if command -v aarch64-linux-gnu-objdump >/dev/null; then
    [ "$(aarch64-linux-gnu-objdump -d "$tmp/bti.o" | grep -c 'bti')" -ge 3 ] || fail "BTI build: missing bti c"
  fi
else
  echo "NOTE: no AArch64 assembler (aarch64-linux-gnu-gcc or clang): AArch64 object not checked"
fi
echo "OK: GNU-stack notes, CFI rows, CET and BTI landing pads and property notes"
