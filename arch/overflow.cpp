// Stack-overflow reporting: a fault in the guard page of the running
// context's stack is reported by name and size, then the process aborts.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>

#include "fern/arch/stack.h"

namespace fern::arch {
namespace {

constexpr std::size_t kAltStackBytes = 64 * 1024;

std::atomic<DescribeCurrent> g_describe{nullptr};
struct sigaction g_previous_segv;
struct sigaction g_previous_bus;

// Async-signal-safe formatting: write(2) and hand-made digits only.
void put(const char* s) {
  std::size_t n = 0;
  while (s[n]) ++n;
  ssize_t ignored = write(STDERR_FILENO, s, n);
  (void)ignored;
}

void put_number(unsigned long value, unsigned base) {
  char buf[32];
  int i = sizeof buf - 1;
  buf[i] = '\0';
  do {
    buf[--i] = "0123456789abcdef"[value % base];
    value /= base;
  } while (value && i > 0);
  put(buf + i);
}

void on_fault(int signo, siginfo_t* info, void* ucontext) {
  DescribeCurrent describe = g_describe.load(std::memory_order_relaxed);
  if (describe) {
    OverflowInfo cur = describe();
    auto fault = reinterpret_cast<std::uintptr_t>(info->si_addr);
    auto base = reinterpret_cast<std::uintptr_t>(cur.stack.base);
    auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
    if (cur.stack && fault < base && fault >= base - page) {
      put("fern: stack overflow in ");
      put(cur.label ? cur.label : "context");
      put(" #");
      put_number(cur.id, 10);
      put(" (stack size ");
      put_number(cur.stack.size, 10);
      put(" bytes, guard page at 0x");
      put_number(base - page, 16);
      put("); raise it with the stack size argument or fern::arch::set_default_stack_size\n");
      signal(SIGABRT, SIG_DFL);
      abort();
    }
  }
  // Not ours: put the previous handler back; the fault repeats into it.
  const struct sigaction& prev = signo == SIGSEGV ? g_previous_segv : g_previous_bus;
  sigaction(signo, &prev, nullptr);
  (void)ucontext;
}

// Each thread needs its own alternate stack: the faulting one is unusable.
struct AltStack {
  void* memory = nullptr;
  AltStack() {
    memory = mmap(nullptr, kAltStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
      memory = nullptr;
      return;
    }
    stack_t ss{};
    ss.ss_sp = memory;
    ss.ss_size = kAltStackBytes;
    sigaltstack(&ss, nullptr);
  }
  ~AltStack() {
    if (!memory) return;
    stack_t ss{};
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, nullptr);
    munmap(memory, kAltStackBytes);
  }
};

}  // namespace

void install_overflow_reporter(DescribeCurrent describe) {
  thread_local AltStack alt_stack;
  (void)alt_stack;
  if (g_describe.exchange(describe) == describe) return;
  struct sigaction sa{};
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_previous_segv);
  sigaction(SIGBUS, &sa, &g_previous_bus);
}

}  // namespace fern::arch
