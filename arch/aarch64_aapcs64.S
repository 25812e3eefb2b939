/* fern_arch_switch for AArch64, AAPCS64 (ELF; Mach-O via __APPLE__).
 *
 * void* fern_arch_switch(Context* save /x0/, Context to /x1/, void* arg /x2/)
 * void* fern_arch_switch_fp_neutral(same): the caller owns no FP control
 *
 * Frame of a suspended context (176 bytes from its saved stack pointer):
 *   +0 x19 x20  +16 x21 x22  +32 x23 x24  +48 x25 x26  +64 x27 x28
 *   +80 x29 x30 (x30 = resume address)  +96 d8 d9  +112 d10 d11
 *   +128 d12 d13  +144 d14 d15  +160 FPCR
 * x18 is the platform register and is never touched. FPSR (status) is not
 * callee-saved and stays with the CPU. An FP-neutral context (one that runs
 * with whatever FPCR the thread has, and must leave it as it found it) has
 * bit 63 set in its FPCR slot, which FPCR (32 bits) never has. */

#if defined(__APPLE__)
#  define SYM(name) _##name
#  define FUNC(name) .globl SYM(name); .private_extern SYM(name); .p2align 4; SYM(name):
#  define ENDFUNC(name)
#  define ALIAS(name, to) .globl SYM(name); .private_extern SYM(name); .set SYM(name), SYM(to)
#else
#  define SYM(name) name
#  define FUNC(name) .globl name; .hidden name; .type name,%function; .p2align 4; name:
#  define ENDFUNC(name) .size name, .-name
#  define ALIAS(name, to) .globl name; .hidden name; .set name, to
#endif

/* FERN_FP_CONTROL=1: FPCR is per context; 0: thread state, which the
 * switch leaves alone (CMake's default here: AAPCS64 gives FPCR's modes
 * thread scope). */
#ifndef FERN_FP_CONTROL
#  define FERN_FP_CONTROL 1
#endif

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#  define BTI_C hint #34            /* bti c: landing pad for bl/blr */
/* With BTI, resume with ret: it is exempt from BTI checks, so it may land
 * on any call site (an indirect br would need a bti j there). */
#  define RESUME ret
#else
#  define BTI_C
/* Without BTI, resume with an indirect branch: a ret here never matches the
 * return stack (the other stack's calls filled it), so it mispredicts on
 * every switch, as ret did on x86-64; br goes through the indirect branch
 * predictor, which learns a switch site's targets from history. */
#  define RESUME br x30
#endif

    .text

/* Saves the callee-saved registers with their CFI. */
.macro SAVE_CALLEE_SAVED
    BTI_C
    sub     sp, sp, #176
    .cfi_def_cfa_offset 176
    stp     x19, x20, [sp, #0]      /* callee-saved */
    stp     x21, x22, [sp, #16]     /* callee-saved */
    stp     x23, x24, [sp, #32]     /* callee-saved */
    stp     x25, x26, [sp, #48]     /* callee-saved */
    stp     x27, x28, [sp, #64]     /* callee-saved */
    stp     x29, x30, [sp, #80]     /* frame pointer, link register = resume address */
    .cfi_offset x19, -176
    .cfi_offset x20, -168
    .cfi_offset x21, -160
    .cfi_offset x22, -152
    .cfi_offset x23, -144
    .cfi_offset x24, -136
    .cfi_offset x25, -128
    .cfi_offset x26, -120
    .cfi_offset x27, -112
    .cfi_offset x28, -104
    .cfi_offset x29, -96
    .cfi_offset x30, -88
    stp     d8,  d9,  [sp, #96]     /* callee-saved: low halves of v8-v15 */
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    .cfi_offset d8, -80
    .cfi_offset d9, -72
    .cfi_offset d10, -64
    .cfi_offset d11, -56
    .cfi_offset d12, -48
    .cfi_offset d13, -40
    .cfi_offset d14, -32
    .cfi_offset d15, -24
.endm

/* Restores the target's registers and resumes it with x0 = arg. */
.macro RESTORE_AND_RESUME
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8,  d9,  [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #176
    .cfi_def_cfa_offset 0
    .cfi_restore x19                /* every register holds its own value again */
    .cfi_restore x20
    .cfi_restore x21
    .cfi_restore x22
    .cfi_restore x23
    .cfi_restore x24
    .cfi_restore x25
    .cfi_restore x26
    .cfi_restore x27
    .cfi_restore x28
    .cfi_restore x29
    .cfi_restore x30
    .cfi_restore d8
    .cfi_restore d9
    .cfi_restore d10
    .cfi_restore d11
    .cfi_restore d12
    .cfi_restore d13
    .cfi_restore d14
    .cfi_restore d15
    mov     x0, x2                  /* arg: the resumed switch's result (a fresh one's too) */
    RESUME                          /* to x30, the target's resume address */
.endm

FUNC(fern_arch_switch)
    .cfi_startproc
    SAVE_CALLEE_SAVED
#if FERN_FP_CONTROL
    mrs     x9, fpcr                /* FP control: rounding, flush-to-zero, traps */
    str     x9, [sp, #160]
#endif
    mov     x10, sp
    str     x10, [x0]               /* *save = our stack pointer */
    mov     sp, x1                  /* the target's frame has the same layout: CFI holds */
#if FERN_FP_CONTROL
    ldr     x10, [sp, #160]
    cmp     x9, x10                 /* writing FPCR is slow: only when it differs */
    b.ne    .Lfpcr_differs
#endif
    .cfi_remember_state             /* the whole frame is saved: .Lfpcr_differs runs here */
.Lfpcr_done:
    RESTORE_AND_RESUME
#if FERN_FP_CONTROL
.Lfpcr_differs:
    .cfi_restore_state              /* the frame as before .Lfpcr_done, not as after RESUME */
    tbnz    x10, #63, .Lfpcr_done   /* an FP-neutral target runs with ours */
    msr     fpcr, x10
    b       .Lfpcr_done
#endif
    .cfi_endproc
ENDFUNC(fern_arch_switch)

#if FERN_FP_CONTROL
/* The switch out of an FP-neutral context: it saves no FPCR (its slot says
 * it owns none), so between two FP-neutral contexts it is the bare register
 * switch. A target that owns FP control gets its FPCR as above. */
FUNC(fern_arch_switch_fp_neutral)
    .cfi_startproc
    SAVE_CALLEE_SAVED
    movz    x9, #0x8000, lsl #48    /* bit 63 */
    str     x9, [sp, #160]
    mov     x10, sp
    str     x10, [x0]
    mov     sp, x1
    ldr     x10, [sp, #160]
    tbz     x10, #63, .Lneutral_to_owner
    .cfi_remember_state
.Lneutral_done:
    RESTORE_AND_RESUME
.Lneutral_to_owner:
    .cfi_restore_state
    mrs     x9, fpcr
    cmp     x9, x10
    b.eq    .Lneutral_done
    msr     fpcr, x10
    b       .Lneutral_done
    .cfi_endproc
ENDFUNC(fern_arch_switch_fp_neutral)
#else
/* FPCR is thread state: every context is FP-neutral. */
ALIAS(fern_arch_switch_fp_neutral, fern_arch_switch)
#endif

/* First code of a fresh context, entered by fern_arch_switch's RESUME with
 * x0 = arg, x19 = entry, x20 = data, x29 = 0. Ends the unwind chain (x30
 * undefined) and the frame-record chain (x29 = 0). entry must never return. */
FUNC(fern_arch_trampoline)
    .cfi_startproc
    .cfi_undefined x30
    BTI_C
    mov     x29, #0                 /* frame-record chain terminator */
    mov     x30, #0
    mov     x1, x20                 /* entry(arg, data) */
    blr     x19
    brk     #1                      /* entry returned: a broken invariant */
    .cfi_endproc
ENDFUNC(fern_arch_trampoline)

/* uint64_t fern_arch_fp_control(): FPCR, for fresh frames. */
FUNC(fern_arch_fp_control)
    .cfi_startproc
    BTI_C
    mrs     x0, fpcr
    ret
    .cfi_endproc
ENDFUNC(fern_arch_fp_control)

#if !defined(__APPLE__)
    .section .note.GNU-stack,"",%progbits
#  if (defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT) || \
      (defined(__ARM_FEATURE_PAC_DEFAULT) && __ARM_FEATURE_PAC_DEFAULT)
#    if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#      define FEATURE_BTI 1
#    else
#      define FEATURE_BTI 0
#    endif
#    if defined(__ARM_FEATURE_PAC_DEFAULT) && __ARM_FEATURE_PAC_DEFAULT
#      define FEATURE_PAC 2
#    else
#      define FEATURE_PAC 0
#    endif
    /* The switch signs nothing itself: it restores x30 exactly as the caller
     * left it, so pac-ret callers authenticate their own, unchanged LR. */
    .section .note.gnu.property,"a"
    .p2align 3
    .long 4, 16, 5              /* namesz, descsz, NT_GNU_PROPERTY_TYPE_0 */
    .asciz "GNU"
    .long 0xc0000000, 4         /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
    .long (FEATURE_BTI | FEATURE_PAC)
    .p2align 3
#  endif
#endif
