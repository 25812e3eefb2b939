// Lays out the first frame of a fresh context so that fern_arch_switch's
// ordinary restore path lands in fern_arch_trampoline (see the .S files for
// the frame layouts this mirrors).
#include "fern/arch/context.h"

#include <cstdint>
#include <cstring>

extern "C" {
void fern_arch_trampoline();
// The caller's FP control state as the switch stores it (see the .S files).
std::uint64_t fern_arch_fp_control() noexcept;
}

namespace fern::arch {
namespace {

std::uintptr_t aligned_top(void* stack_base, std::size_t size) {
  // 16 bytes of zeros above the first frame: a clean end for anything that
  // walks past the trampoline.
  return ((reinterpret_cast<std::uintptr_t>(stack_base) + size) & ~std::uintptr_t{15}) - 16;
}

// A frame's FP save area as the switch stores it: FP-neutral (the marker of
// the .S files: bit 31 of the MXCSR half on x86-64, which MXCSR never has;
// bit 63 of FPCR's slot on AArch64), or the caller's FP control.
std::uint64_t fp_slot(bool neutral) noexcept {
#if defined(__x86_64__)
  constexpr std::uint64_t kNeutralSlot = std::uint64_t{0x80000000} << 32;
#else
  constexpr std::uint64_t kNeutralSlot = std::uint64_t{1} << 63;
#endif
  return neutral ? kNeutralSlot : fern_arch_fp_control();
}

}  // namespace

#if defined(__x86_64__)

Context make_context(void* stack_base, std::size_t size, EntryFn entry, void* data,
                     bool fp_from_first_switch) noexcept {
  // After the switch pops 6 registers and the resume address, rsp must be
  // 16-byte aligned so that the trampoline's call enters entry ABI-aligned.
  auto top = aligned_top(stack_base, size);
  auto* frame = reinterpret_cast<std::uint64_t*>(top - 7 * 8);
  frame[0] = 0;                                                      // r15
  frame[1] = 0;                                                      // r14
  frame[2] = 0;                                                      // r13
  frame[3] = reinterpret_cast<std::uint64_t>(data);                  // r12
  frame[4] = reinterpret_cast<std::uint64_t>(entry);                 // rbx
  frame[5] = 0;                                                      // rbp: chain end
  frame[6] = reinterpret_cast<std::uint64_t>(&fern_arch_trampoline); // resume address
  // FP save area in the red zone: the creator's x87 control word at -8,
  // its MXCSR at -4 (or FP_NEUTRAL there).
  frame[-1] = fp_slot(fp_from_first_switch);
  return frame;
}

void set_fp_neutral(Context context, bool neutral) noexcept {
  static_cast<std::uint64_t*>(context)[-1] = fp_slot(neutral);  // the 8 bytes below the saved sp
}

std::uint64_t fp_control_now() noexcept {
  return fern_arch_fp_control() & 0x0000FFC0'0000FFFFull;  // MXCSR's status flags out
}

#elif defined(__aarch64__)

Context make_context(void* stack_base, std::size_t size, EntryFn entry, void* data,
                     bool fp_from_first_switch) noexcept {
  auto top = aligned_top(stack_base, size);
  auto* frame = reinterpret_cast<std::uint64_t*>(top - 176);
  std::memset(frame, 0, 176);
  frame[0] = reinterpret_cast<std::uint64_t>(entry);                  // x19
  frame[1] = reinterpret_cast<std::uint64_t>(data);                   // x20
  frame[11] = reinterpret_cast<std::uint64_t>(&fern_arch_trampoline); // x30: resume address
  frame[20] = fp_slot(fp_from_first_switch);                                  // FPCR
  return frame;
}

void set_fp_neutral(Context context, bool neutral) noexcept {
  static_cast<std::uint64_t*>(context)[20] = fp_slot(neutral);  // FPCR's slot, 160 bytes up
}

std::uint64_t fp_control_now() noexcept { return fern_arch_fp_control(); }

#else
#  error "fern: unsupported architecture (CMake should have stopped here)"
#endif

}  // namespace fern::arch
