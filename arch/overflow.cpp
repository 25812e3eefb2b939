// Stack-overflow reporting: a fault below the running context's stack in a
// guard region is reported by name and size, then the process aborts; any
// other fault goes to the handler installed before fern's.
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
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

// The report for a fault below the running stack in one of this thread's
// guard regions: its own, or a neighbour's that a frame larger than the
// guard reached. Returns false when the fault is not an overflow.
bool report_overflow(const void* fault_addr) {
  DescribeCurrent describe = g_describe.load(std::memory_order_relaxed);
  if (!describe) return false;
  OverflowInfo cur = describe();
  // Not on a greenlet stack: not an overflow fern reports. Checked before
  // the pool is looked at, so the handler never initialises a thread-local.
  if (!cur.stack) return false;
  Stack guarded = stack_guarded_at(fault_addr);
  auto fault = reinterpret_cast<std::uintptr_t>(fault_addr);
  auto base = reinterpret_cast<std::uintptr_t>(cur.stack.base);
  if (!cur.stack || !guarded || fault >= base) return false;
  put("fern: stack overflow in ");
  put(cur.label ? cur.label : "context");
  put(" #");
  put_number(cur.id, 10);
  put(" (stack size ");
  put_number(cur.stack.size, 10);
  put(" bytes, fault at 0x");
  put_number(fault, 16);
  if (guarded.base == cur.stack.base) {
    put(" in its guard");
  } else {
    put(" in the guard of a neighbouring stack, ");
    put_number(base - fault, 10);
    put(" bytes below its own");
  }
  put("); raise it with the stack size argument or fern::arch::set_default_stack_size\n");
  return true;
}

// Hands a fault that is not ours to the handler installed before, as the
// kernel would have run it.
void chain(int signo, siginfo_t* info, void* ucontext) {
  struct sigaction& prev = signo == SIGSEGV ? g_previous_segv : g_previous_bus;
  bool siginfo = (prev.sa_flags & SA_SIGINFO) != 0;
  if (!siginfo && (prev.sa_handler == SIG_DFL || prev.sa_handler == SIG_IGN)) {
    // Ignoring a real fault would repeat it forever: the kernel kills then.
    // The default action ends the process with the signal, from the kernel.
    signal(signo, SIG_DFL);
    if (info->si_code <= 0) raise(signo);  // sent, not a fault: no repeat
    return;
  }
  sigset_t mask = prev.sa_mask, old;
  if (!(prev.sa_flags & SA_NODEFER)) sigaddset(&mask, signo);
  pthread_sigmask(SIG_BLOCK, &mask, &old);
  if (prev.sa_flags & SA_RESETHAND) {
    struct sigaction once = prev;
    prev.sa_handler = SIG_DFL;
    prev.sa_flags &= ~SA_SIGINFO;
    if (siginfo) once.sa_sigaction(signo, info, ucontext);
    else once.sa_handler(signo);
  } else if (siginfo) {
    prev.sa_sigaction(signo, info, ucontext);
  } else {
    prev.sa_handler(signo);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void on_fault(int signo, siginfo_t* info, void* ucontext) {
  int saved_errno = errno;
  if (report_overflow(info->si_addr)) {
    signal(SIGABRT, SIG_DFL);
    abort();
  }
  chain(signo, info, ucontext);
  errno = saved_errno;
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

// What on_fault replaces becomes the handler to chain to.
void install(int signo, struct sigaction& previous) {
  struct sigaction sa{};
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(signo, &sa, &previous);
}

}  // namespace

void install_overflow_reporter(DescribeCurrent describe) {
  thread_local AltStack alt_stack;
  (void)alt_stack;
  // Once per process: installing again over a handler that chains to fern's
  // would make the two call each other.
  if (g_describe.exchange(describe) == describe) return;
  install(SIGSEGV, g_previous_segv);
  install(SIGBUS, g_previous_bus);
}

}  // namespace fern::arch
