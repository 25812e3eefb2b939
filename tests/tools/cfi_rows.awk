# Checks the unwind rows of fern_arch_switch in `readelf --debug-dump=frames-interp`
# output against the frame layout of the .S files, at every address:
# - the CFA is the stack pointer plus the bytes pushed so far;
# - a callee-saved register is described at its slot exactly while its slot
#   holds it (x86-64: pushed and not yet popped; AArch64: stored, until the
#   frame is popped), and the return address likewise;
# - the row after the restore (CFA = sp+0) covers only the last two
#   instructions: code placed after the resume branch (the out-of-line FP
#   blocks) must carry the saved frame's rows again.
# Usage: awk -v arch=x86|a64 -v pc=<hex start of fern_arch_switch> -f cfi_rows.awk
function fail(msg) { print "FAIL: " msg > "/dev/stderr"; bad = 1 }
function hex(s,   i, v) {  # POSIX awk has no strtonum
  v = 0; s = tolower(s)
  for (i = 1; i <= length(s); ++i) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
  return v
}
BEGIN {
  if (arch == "x86") {
    sp = "rsp"; full = 56; exit_reg = "r2"
    split("rbp:16 rbx:24 r12:32 r13:40 r14:48 r15:56 ra:8", pairs, " ")
  } else {
    sp = "sp"; full = 176
    split("x19:176 x20:168 x21:160 x22:152 x23:144 x24:136 x25:128 x26:120 x27:112 x28:104 " \
          "x29:96 ra:88 v8:80 v9:72 v10:64 v11:56 v12:48 v13:40 v14:32 v15:24", pairs, " ")
  }
  for (i in pairs) { split(pairs[i], kv, ":"); slot[kv[1]] = kv[2]; nregs++ }
}
/ FDE / {
  infde = 0
  range = $0; sub(/.*pc=/, "", range); split(range, m, /\.\./)
  if (hex(m[1]) == hex(pc)) { infde = 1; seen = 1; end = hex(m[2]); rows = 0 }
  next
}
infde && $1 == "LOC" { ncols = NF; for (i = 1; i <= NF; ++i) col[i] = $i; next }
infde && NF == 0 { infde = 0; next }
infde {
  rows++; addr[rows] = hex($1); cfa[rows] = $2
  n = $2; sub("^" sp "\\+", "", n)
  if ($2 !~ "^" sp "\\+[0-9]+$") fail("at " $1 ": CFA " $2 " is not " sp "+N")
  saved = 0
  for (i = 3; i <= ncols; ++i) {
    r = col[i]; v = $i
    if (!(r in slot)) { fail("at " $1 ": unexpected column " r); continue }
    if (arch == "x86") want = (n + 0 >= slot[r]) ? "c-" slot[r] : "u"
    else want = (n + 0 == full && v != "u") ? "c-" slot[r] : "u"
    if (arch == "x86" && r == "ra" && n + 0 == 0) want = "r2"
    if (v != want) fail("at " $1 " (CFA " $2 "): " r " is " v ", expected " want)
    if (v ~ /^c-/) saved++
  }
  if (arch == "a64" && n + 0 != 0 && n + 0 != full) fail("at " $1 ": CFA " $2 " is neither sp+0 nor sp+" full)
  if (saved == nregs) complete = 1
  iszero[rows] = (n + 0 == 0)
}
END {
  if (!seen) { fail("no FDE for fern_arch_switch at pc " pc); exit 1 }
  if (!complete) fail("no row describes every callee-saved register at its slot")
  for (i = 2; i <= rows; ++i) {
    if (!iszero[i]) continue
    next_addr = (i < rows) ? addr[i + 1] : end
    if (next_addr - addr[i] > 8)
      fail(sprintf("the restored row at %x covers %d bytes: code after the resume branch has the wrong CFA",
                   addr[i], next_addr - addr[i]))
  }
  exit bad
}
