/* The floor for a stack switch on x86-64 (System V), for switch_bench and
 * switch_count only: the fewest instructions a switch that keeps the ABI's
 * callee-saved registers can run. No FP control, no landing pad, no CFI
 * beyond the frame: what fern_arch_switch with FERN_FP_CONTROL=OFF is
 * measured against. The frame layout is fern's, so fern::arch::make_context
 * builds its fresh contexts.
 *
 * void* bench_floor_switch(Context* save, Context to, void* arg)
 *
 * bench_boostfp_switch is the floor plus Boost fcontext's FP work: store the
 * x87 control word and MXCSR, load the target's unconditionally (status
 * flags included). fern's switch does the same FP work (and one test of the
 * target's slot for FP-neutral contexts).
 *
 * bench_readback_switch is the floor plus the scheme fern used before: store
 * both control words, read them back, compare them with the target's, load
 * nothing when they match (the rows' case), so that the status flags could
 * stay with the CPU. Against floor_boostfp it isolates the read-back:
 * `stmxcsr` behaves as if it issues only once what precedes it has
 * completed, so a load of what it stored (and the compare on it) holds back
 * the next switch's `stmxcsr` by its whole latency, where an unconditional
 * `ldmxcsr` of an unchanged value costs about a cycle on AMD Zen 5
 * (bench/fp_control_probe.c). */
    .text
/* The frame: the six callee-saved registers; popped, then the resume address. */
.macro PUSH6
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
.endm
.macro POP6_JMP
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    popq    %rcx
    movq    %rdx, %rax
    jmp     *%rcx
.endm

    .globl  bench_floor_switch
    .hidden bench_floor_switch
    .type   bench_floor_switch,@function
    .p2align 4
bench_floor_switch:
    .cfi_startproc
    PUSH6
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    POP6_JMP
    .cfi_endproc
    .size   bench_floor_switch, .-bench_floor_switch

    .globl  bench_boostfp_switch
    .hidden bench_boostfp_switch
    .type   bench_boostfp_switch,@function
    .p2align 4
bench_boostfp_switch:
    .cfi_startproc
    PUSH6
    fnstcw  -8(%rsp)
    stmxcsr -4(%rsp)
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    fldcw   -8(%rsp)
    ldmxcsr -4(%rsp)
    POP6_JMP
    .cfi_endproc
    .size   bench_boostfp_switch, .-bench_boostfp_switch

    .globl  bench_readback_switch
    .hidden bench_readback_switch
    .type   bench_readback_switch,@function
    .p2align 4
bench_readback_switch:
    .cfi_startproc
    PUSH6
    fnstcw  -8(%rsp)
    stmxcsr -4(%rsp)
    movzwl  -8(%rsp), %r8d
    movl    -4(%rsp), %r9d
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    cmpw    -8(%rsp), %r8w
    jne     1f
    cmpl    -4(%rsp), %r9d
    jne     1f
2:  POP6_JMP
1:  fldcw   -8(%rsp)
    ldmxcsr -4(%rsp)
    jmp     2b
    .cfi_endproc
    .size   bench_readback_switch, .-bench_readback_switch
    .section .note.GNU-stack,"",@progbits
