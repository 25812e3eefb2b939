/* The floor for a stack switch on x86-64 (System V), for switch_bench and
 * switch_count only: the fewest instructions a switch that keeps the ABI's
 * callee-saved registers can run. No FP control, no landing pad, no CFI
 * beyond the frame: what fern_arch_switch with FERN_FP_CONTROL=OFF is
 * measured against. The frame layout is fern's, so fern::arch::make_context
 * builds its fresh contexts.
 *
 * void* bench_floor_switch(Context* save, Context to, void* arg) */
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
    .section .note.GNU-stack,"",@progbits
