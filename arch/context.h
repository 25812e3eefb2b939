#pragma once
// The raw stack switch. Knows nothing of greenlets; usable on its own.
//
// A Context is one pointer: the saved stack pointer of a suspended execution.
// Everything else (callee-saved registers, FP control, the resume address) is
// stored on that stack by fern_arch_switch. The switch itself lives in one
// hand-written .S per architecture (x86_64_sysv.S, aarch64_aapcs64.S).
#include <cstddef>

namespace fern::arch {

using Context = void*;

// Entry of a fresh context: `arg` is what the first switch into it passed,
// `data` what make_context was given. It must never return (there is nothing
// to return to); end it by switching away for good.
using EntryFn = void (*)(void* arg, void* data);

// Lays out a fresh context at the top of [stack_base, stack_base + size) so
// that the first switch into it calls entry(arg, data) on that stack, 16-byte
// aligned, with the unwind and frame-pointer chains ending at the trampoline.
// The new context starts with the caller's FP control state. No allocation.
Context make_context(void* stack_base, std::size_t size, EntryFn entry, void* data) noexcept;

}  // namespace fern::arch

extern "C" {
// Saves the callee-saved registers and FP control bits of the caller on its
// stack, stores the stack pointer in *save, resumes `to`, and hands it `arg`
// (returned from the switch that suspended `to`, or passed to its entry).
// Returns the `arg` of whichever switch later resumes *save. Never throws;
// no exception may unwind through it. Any thread, but `to` must not be running.
void* fern_arch_switch(fern::arch::Context* save, fern::arch::Context to, void* arg) noexcept;
}
