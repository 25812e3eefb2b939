#pragma once
// The raw stack switch. Knows nothing of greenlets; usable on its own.
//
// A Context is one pointer: the saved stack pointer of a suspended execution.
// Everything else (callee-saved registers, FP control, the resume address) is
// stored on that stack by fern_arch_switch. The switch itself lives in one
// hand-written .S per architecture (x86_64_sysv.S, aarch64_aapcs64.S).
#include <cstddef>
#include <cstdint>

namespace fern::arch {

using Context = void*;

// Entry of a fresh context: `arg` is what the first switch into it passed,
// `data` what make_context was given. It must never return (there is nothing
// to return to); end it by switching away for good.
using EntryFn = void (*)(void* arg, void* data);

// Lays out a fresh context at the top of [stack_base, stack_base + size) so
// that the first switch into it calls entry(arg, data) on that stack, 16-byte
// aligned, with the unwind and frame-pointer chains ending at the trampoline.
// The new context starts with the caller's FP control state; with
// fp_from_first_switch, with that of the switch that first enters it (its
// frame is FP-neutral until then, and making it reads no FP control: for a
// context made by the switch that enters it). No allocation.
Context make_context(void* stack_base, std::size_t size, EntryFn entry, void* data,
                     bool fp_from_first_switch = false) noexcept;

// Makes a suspended (or fresh) context FP-neutral: switching to it loads no
// FP control, it runs with the thread's (see fern_arch_switch_fp_neutral);
// or, with neutral false, makes it own FP control again, starting from the
// caller's.
void set_fp_neutral(Context context, bool neutral) noexcept;

// The FP control the thread has now, status flags left out: the x87
// control word and MXCSR's control bits on x86-64, FPCR on AArch64.
std::uint64_t fp_control_now() noexcept;

}  // namespace fern::arch

extern "C" {
// Saves the callee-saved registers and FP control of the caller on its
// stack, stores the stack pointer in *save, resumes `to`, and hands it `arg`
// (returned from the switch that suspended `to`, or passed to its entry).
// Returns the `arg` of whichever switch later resumes *save. Never throws;
// no exception may unwind through it. Any thread, but `to` must not be running.
void* fern_arch_switch(fern::arch::Context* save, fern::arch::Context to, void* arg) noexcept;
// The same switch out of an FP-neutral context: one that owns no FP control
// (x87 control word and MXCSR; FPCR) and leaves the thread's as it found it.
// It saves none and marks its frame FP-neutral; a target that is FP-neutral
// too gets none loaded (the switch is the bare register switch), one that
// owns FP control gets its own loaded, as fern_arch_switch does. With FP
// control as thread state (FERN_FP_CONTROL off) it is fern_arch_switch.
void* fern_arch_switch_fp_neutral(fern::arch::Context* save, fern::arch::Context to, void* arg) noexcept;
}
