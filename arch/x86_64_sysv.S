/* fern_arch_switch for x86-64, System V ABI (ELF; Mach-O via __APPLE__).
 *
 * void* fern_arch_switch(Context* save /rdi/, Context to /rsi/, void* arg /rdx/)
 * void* fern_arch_switch_fp_neutral(same): the caller owns no FP control
 *
 * Frame of a suspended context, from its saved stack pointer upwards:
 *   +0 r15  +8 r14  +16 r13  +24 r12  +32 rbx  +40 rbp  +48 resume address
 * and in its red zone, below the saved stack pointer (signals skip the red
 * zone, and nothing else runs on a suspended stack):
 *   -8 x87 control word (16 bits)   -4 MXCSR (32 bits)
 * or, for an FP-neutral context (one that runs with whatever FP control the
 * thread has, and must leave it as it found it), FP_NEUTRAL at -4: bit 31,
 * which MXCSR never has (its bits 16-31 are reserved and read as zero). */
#if defined(__APPLE__)
#  define SYM(name) _##name
#  define FUNC(name) .globl SYM(name); .private_extern SYM(name); .p2align 4; SYM(name):
#  define ENDFUNC(name)
#  define ALIAS(name, to) .globl SYM(name); .private_extern SYM(name); .set SYM(name), SYM(to)
#else
#  define SYM(name) name
#  define FUNC(name) .globl name; .hidden name; .type name,@function; .p2align 4; name:
#  define ENDFUNC(name) .size name, .-name
#  define ALIAS(name, to) .globl name; .hidden name; .set name, to
#endif

#if defined(__CET__) && (__CET__ & 1)
#  define LANDING_PAD endbr64
#  define RESUME_JMP notrack jmp
#else
#  define LANDING_PAD
#  define RESUME_JMP jmp
#endif

/* FERN_FP_CONTROL=1 (default): FP control is per context. 0: it is thread
 * state, as in marl; saves reading MXCSR, which costs ~2.8 ns on some CPUs. */
#ifndef FERN_FP_CONTROL
#  define FERN_FP_CONTROL 1
#endif

#define FP_NEUTRAL    0x80000000  /* in the MXCSR slot: the context owns no FP control */

/* The six callee-saved registers, pushed and popped with their CFI. */
.macro PUSH_CALLEE_SAVED
    LANDING_PAD
    PUSH_CALLEE_SAVED_NO_PAD
.endm
.macro PUSH_CALLEE_SAVED_NO_PAD
    pushq   %rbp                    /* callee-saved: frame pointer */
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
.endm

/* Pops the target's registers and jumps to its resume address with rax = arg. */
.macro POP_AND_RESUME
    popq    %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r15
    popq    %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r14
    popq    %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r13
    popq    %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    popq    %rcx                    /* resume address; pop+jmp, not a mispredicted ret */
    .cfi_adjust_cfa_offset -8
    .cfi_register %rip, %rcx
    movq    %rdx, %rax              /* arg: the resumed switch's result (a fresh one's too) */
    RESUME_JMP *%rcx
.endm

/* Switches to the target's stack (rsi) and resumes it, loading its FP
 * control first unless it is FP-neutral (it then runs with ours). */
.macro RESUME_LOADING_FP
    cmpl    $0, -4(%rsi)            /* the target's slot, read before the switch to its stack */
    movq    %rsi, %rsp              /* the target's frame has the same layout: CFI holds */
    js      1f                      /* an FP-neutral target runs with ours */
    ldmxcsr -4(%rsp)
    fldcw   -8(%rsp)
1:  POP_AND_RESUME
.endm

    .text

/* FP control (FERN_FP_CONTROL=1): each context owns an FP environment, the
 * x87 control word and the whole MXCSR (control bits and status flags), as
 * each thread does and as Python's greenlet and Boost.Context keep it. The
 * switch stores the caller's and loads the target's unconditionally: reading
 * the current MXCSR back to compare it (to skip an unchanged load) costs more
 * here than the load it would save (README, Switch section). An FP-neutral
 * target (FP_NEUTRAL in its slot) gets nothing loaded: it runs with ours. */
FUNC(fern_arch_switch)
    .cfi_startproc
#if FERN_FP_CONTROL
    LANDING_PAD
    /* First: stmxcsr issues only once what precedes it has completed. The
     * slots are those below the six registers pushed next (-8 and -4 from
     * the saved stack pointer). */
    stmxcsr -52(%rsp)               /* callee-saved control bits, and the status flags */
    fnstcw  -56(%rsp)               /* callee-saved: x87 control word */
    PUSH_CALLEE_SAVED_NO_PAD
#else
    PUSH_CALLEE_SAVED
#endif
    movq    %rsp, (%rdi)            /* *save = our stack pointer */
#if FERN_FP_CONTROL
    RESUME_LOADING_FP
#else
    movq    %rsi, %rsp              /* the target's frame has the same layout: CFI holds */
    POP_AND_RESUME
#endif
    .cfi_endproc
ENDFUNC(fern_arch_switch)

#if FERN_FP_CONTROL
/* The switch out of an FP-neutral context: it saves no FP control (its
 * slot says it owns none), so between two FP-neutral contexts it is the bare
 * register switch. A target that owns FP control gets its own loaded. */
FUNC(fern_arch_switch_fp_neutral)
    .cfi_startproc
    PUSH_CALLEE_SAVED
    movl    $FP_NEUTRAL, -4(%rsp)
    movq    %rsp, (%rdi)
    RESUME_LOADING_FP
    .cfi_endproc
ENDFUNC(fern_arch_switch_fp_neutral)
#else
/* FP control is thread state: every context is FP-neutral. */
ALIAS(fern_arch_switch_fp_neutral, fern_arch_switch)
#endif

/* First code of a fresh context, entered from fern_arch_switch's jmp with
 * rax = arg, rbx = entry, r12 = data, rbp = 0. It ends both the unwind chain
 * (return address undefined) and the frame-pointer chain (rbp = 0), so
 * debuggers and unwinders stop here. entry must never return. */
FUNC(fern_arch_trampoline)
    .cfi_startproc
    .cfi_undefined %rip
    LANDING_PAD
    xorl    %ebp, %ebp              /* frame-pointer chain terminator */
    movq    %rax, %rdi              /* entry(arg, */
    movq    %r12, %rsi              /*       data) */
    callq   *%rbx                   /* rsp is 16-byte aligned here: ABI entry alignment */
    ud2                             /* entry returned: a broken invariant */
    .cfi_endproc
ENDFUNC(fern_arch_trampoline)

/* uint64_t fern_arch_fp_control(): the FP save area as the switch stores it
 * (x87 control word in bits 0-15, MXCSR in bits 32-63), for fresh frames. */
FUNC(fern_arch_fp_control)
    .cfi_startproc
    LANDING_PAD
    movq    $0, -8(%rsp)
    fnstcw  -8(%rsp)
    stmxcsr -4(%rsp)
    movq    -8(%rsp), %rax
    ret
    .cfi_endproc
ENDFUNC(fern_arch_fp_control)

#if !defined(__APPLE__)
    .section .note.GNU-stack,"",@progbits
#  if defined(__CET__) && (__CET__ & 1)
    /* IBT landing pads are present; shadow stacks are not supported (the
     * pop+jmp switch does not maintain one), so only IBT is claimed. */
    .section .note.gnu.property,"a"
    .p2align 3
    .long 4, 16, 5              /* namesz, descsz, NT_GNU_PROPERTY_TYPE_0 */
    .asciz "GNU"
    .long 0xc0000002, 4, 1      /* GNU_PROPERTY_X86_FEATURE_1_AND: IBT */
    .p2align 3
#  endif
#endif
