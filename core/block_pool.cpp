// Per-thread free lists of small blocks (see block_pool.h): the general paths.
#include "fern/core/block_pool.h"

namespace fern::detail {

__thread PoolLists t_pool_lists;

namespace {

// Returns the kept blocks when the thread ends; blocks freed later go to
// operator delete.
struct Cleanup {
  ~Cleanup() {
    PoolLists& l = t_pool_lists;
    l.open = false;
    l.gone = true;
    for (std::size_t c = 0; c < kPoolClasses; ++c) {
      while (PoolFreeBlock* b = l.head[c]) {
        l.head[c] = b->next;
        ::operator delete(static_cast<void*>(b));
      }
      l.count[c] = 0;
    }
  }
};
thread_local Cleanup t_cleanup;

}  // namespace

void* pool_allocate_slow(std::size_t size) {
#if !FERN_ASAN
  if (size - 1 < kPoolMaxSize) {
    PoolLists& l = t_pool_lists;
    if (!l.open && !l.gone) {
      l.open = true;
      (void)&t_cleanup;  // odr-use: registers its destructor for this thread
    }
    return ::operator new((pool_class_of(size) + 1) * kPoolGrain);
  }
#endif
  return ::operator new(size);
}

void pool_deallocate_slow(void* p, std::size_t) noexcept { ::operator delete(p); }

}  // namespace fern::detail
