#include "fern/arch/thread_id.h"

#include <pthread.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace fern::arch {

long thread_id() noexcept {
#if defined(__linux__)
  return static_cast<long>(::syscall(SYS_gettid));
#else
  return static_cast<long>(reinterpret_cast<unsigned long>(pthread_self()));
#endif
}

}  // namespace fern::arch
