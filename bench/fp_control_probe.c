/* What the FP control instructions cost here, one sequence per loop
 * iteration, in TSC ticks (x86-64, GCC or Clang). It shows why fern's
 * compare-and-skip switch (arch/x86_64_sysv.S) cannot match Boost's
 * unconditional restore on some CPUs while keeping MXCSR's status flags with
 * the thread:
 *   - `stmxcsr` alone has a throughput cost (about 14 cycles on AMD Zen 5),
 *     overlapping later independent work;
 *   - reading its stored value back makes the next `stmxcsr` wait for that
 *     load: on Zen 5 `stmxcsr` behaves as if it issues once what precedes it
 *     completed (inferred: it overlaps independent work after it, yet the
 *     loop runs at the latency from it to the read-back instead);
 *   - loading a value stored earlier (not by the `stmxcsr` just before) is
 *     cheap, so the cost is the dependence, not the load;
 *   - `ldmxcsr` of the value MXCSR already holds costs about a cycle, of a
 *     different one tens: the CPU skips an unchanged load by itself, which
 *     is what Boost's unconditional restore relies on.
 *   build/release/bench/fp_control_probe   (or: cc -O2 bench/fp_control_probe.c)
 * The first row calibrates the cycles column: 20 dependent adds take 20
 * cycles. Measured on the AMD EPYC (Zen 5) in README: 14 / 21 / 15 cycles
 * for the second, fourth and fifth rows, 1 and 55 for the two ldmxcsr rows. */
#include <stdint.h>
#include <stdio.h>
#include <x86intrin.h>

#define N 20000000L

static inline uint64_t ticks(void) {
  unsigned aux;
  return __rdtscp(&aux);
}

/* Best of 5 runs of N iterations, in ticks per iteration. */
#define PROBE(label, ...)                                    \
  do {                                                       \
    uint64_t best = UINT64_MAX;                              \
    for (int run = 0; run < 5; ++run) {                      \
      uint64_t t = ticks();                                  \
      for (long i = 0; i < N; ++i) { __VA_ARGS__ }                \
      t = ticks() - t;                                       \
      if (t < best) best = t;                                \
    }                                                        \
    double per = (double)best / N;                           \
    if (cycles_per_tick == 0) cycles_per_tick = 20 / per;    \
    printf("%-42s %6.2f ticks %5.1f cycles\n", label, per, per * cycles_per_tick); \
  } while (0)

int main(void) {
  double cycles_per_tick = 0;  /* from the first row */
  unsigned slot = 0, older[64] = {0}, same = 0, values[2] = {0x1f80, 0x3f80};
  __asm__ volatile("stmxcsr %0" : "=m"(same));
  const unsigned expect = same;
  PROBE("add chain (20 dependent adds)", __asm__ volatile(".rept 20\n\taddl $1, %%r10d\n\t.endr" ::: "cc", "r10"););
  PROBE("stmxcsr", __asm__ volatile("stmxcsr %0" : "=m"(slot)::"memory"););
  PROBE("stmxcsr, 20 dependent adds",
        __asm__ volatile("stmxcsr %0\n\t.rept 20\n\taddl $1, %%r10d\n\t.endr" : "=m"(slot)::"memory", "cc", "r10"););
  PROBE("stmxcsr, read back, compare", {
    unsigned v;
    __asm__ volatile("stmxcsr %1\n\tmovl %1, %0\n\tcmpl %2, %0\n\tjne 1f\n\tnop\n1:"
                     : "=&r"(v), "=m"(slot) : "r"(expect) : "memory", "cc");
  });
  PROBE("stmxcsr, read an older store, compare", {
    unsigned v;
    unsigned* now = &older[(i & 3) * 16];
    unsigned* before = &older[((i + 1) & 3) * 16];
    __asm__ volatile("stmxcsr (%1)\n\tmovl (%3), %0\n\tcmpl %2, %0\n\tjne 1f\n\tnop\n1:"
                     : "=&r"(v) : "r"(now), "r"(expect), "r"(before) : "memory", "cc");
  });
  PROBE("stmxcsr, ldmxcsr of the unchanged value", __asm__ volatile("stmxcsr %0\n\tldmxcsr %1" : "=m"(slot) : "m"(same) : "memory"););
  PROBE("ldmxcsr of the unchanged value", __asm__ volatile("ldmxcsr %0" ::"m"(same) : "memory"););
  PROBE("ldmxcsr of alternating values", __asm__ volatile("ldmxcsr %0" ::"m"(values[i & 1]) : "memory"););
  __asm__ volatile("ldmxcsr %0" ::"m"(same) : "memory");
  PROBE("fnstcw, read back, compare", {
    unsigned short v, w;
    __asm__ volatile("fnstcw %1\n\tmovw %1, %0\n\tcmpw $0x37f, %0\n\tjne 1f\n\tnop\n1:" : "=&r"(v), "=m"(w)::"memory", "cc");
  });
  return 0;
}
