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
 * flags included: Boost's semantics, not fern's, which keeps the status
 * flags with the CPU and so must read its MXCSR back). The rows show what
 * each part of fern's switch costs. */
    .text
    .globl  bench_floor_switch
    .hidden bench_floor_switch
    .type   bench_floor_switch,@function
    .p2align 4
bench_floor_switch:
    .cfi_startproc
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    popq    %rcx
    movq    %rdx, %rax
    jmp     *%rcx
    .cfi_endproc
    .size   bench_floor_switch, .-bench_floor_switch

    .globl  bench_boostfp_switch
    .hidden bench_boostfp_switch
    .type   bench_boostfp_switch,@function
    .p2align 4
bench_boostfp_switch:
    .cfi_startproc
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    fnstcw  -8(%rsp)
    stmxcsr -4(%rsp)
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    fldcw   -8(%rsp)
    ldmxcsr -4(%rsp)
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    popq    %rcx
    movq    %rdx, %rax
    jmp     *%rcx
    .cfi_endproc
    .size   bench_boostfp_switch, .-bench_boostfp_switch
    .section .note.GNU-stack,"",@progbits
