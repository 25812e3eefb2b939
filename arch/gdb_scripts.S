/* Embeds fern's gdb script (tools/fern_gdb.py) in every ELF program linked
 * with fern: gdb runs the .debug_gdb_scripts entries of an object it loads
 * (when its auto-load safe-path allows that object). Entry kind 4 is inline
 * Python: a name line, the script's text, a NUL. The linker merges equal
 * entries, so a program with fern linked twice carries it once. Linking pulls
 * this object in through the undefined symbol fern_gdb_scripts (CMake adds
 * -Wl,-u,fern_gdb_scripts to fern's users). FERN_GDB_SCRIPT is its path. */
#if defined(__ELF__)
    .pushsection ".debug_gdb_scripts", "MS", %progbits, 1
    .byte   4
    .ascii  "fern/fern_gdb.py\n"
    .incbin FERN_GDB_SCRIPT
    .byte   0
    .popsection

    .pushsection ".rodata", "a", %progbits
    .globl  fern_gdb_scripts
    .hidden fern_gdb_scripts
    .type   fern_gdb_scripts, %object
fern_gdb_scripts:
    .byte   0
    .size   fern_gdb_scripts, 1
    .popsection

    .section .note.GNU-stack, "", %progbits
#endif
