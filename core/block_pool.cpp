// Per-thread free lists of small blocks (see block_pool.h).
#include "fern/core/block_pool.h"

#include <cstdint>

#include "fern/config.h"

namespace fern::detail {
namespace {

constexpr std::size_t kGrain = 16;
constexpr std::size_t kClasses = kPoolMaxSize / kGrain;
constexpr std::size_t kKeptBytes = 256 * 1024;  // per class: 512 tasks of 512 bytes, 16384 of 16

struct FreeBlock {
  FreeBlock* next;
};

// Trivially destructible so that it stays usable while other thread-locals
// are destroyed; `gone` is set once the thread's blocks were returned.
struct Lists {
  FreeBlock* head[kClasses];
  std::uint32_t count[kClasses];
  bool registered;
  bool gone;
};
thread_local Lists t_lists;

struct Cleanup {
  ~Cleanup() {
    t_lists.gone = true;
    for (std::size_t c = 0; c < kClasses; ++c) {
      while (FreeBlock* b = t_lists.head[c]) {
        t_lists.head[c] = b->next;
        ::operator delete(static_cast<void*>(b));
      }
      t_lists.count[c] = 0;
    }
  }
};
thread_local Cleanup t_cleanup;

constexpr std::size_t class_of(std::size_t size) noexcept { return (size + kGrain - 1) / kGrain - 1; }

}  // namespace

void* pool_allocate(std::size_t size) {
#if !FERN_ASAN
  if (size - 1 < kPoolMaxSize) {
    Lists& l = t_lists;
    std::size_t c = class_of(size);
    if (FreeBlock* b = l.head[c]) {
      l.head[c] = b->next;
      --l.count[c];
      return b;
    }
    if (!l.registered && !l.gone) {
      l.registered = true;
      (void)&t_cleanup;  // odr-use: registers its destructor for this thread
    }
    return ::operator new((c + 1) * kGrain);
  }
#endif
  return ::operator new(size);
}

void pool_deallocate(void* p, std::size_t size) noexcept {
#if !FERN_ASAN
  if (size - 1 < kPoolMaxSize) {
    Lists& l = t_lists;
    std::size_t c = class_of(size);
    if (l.registered && !l.gone && l.count[c] < kKeptBytes / ((c + 1) * kGrain)) {
      auto* b = static_cast<FreeBlock*>(p);
      b->next = l.head[c];
      l.head[c] = b;
      ++l.count[c];
      return;
    }
  }
#endif
  ::operator delete(p);
}

}  // namespace fern::detail
