#pragma once
// Small blocks kept per thread for reuse: a task (its object and its
// callable in one block, task.h's detail::Pooled) costs no malloc/free pair
// once the thread has made as many before. Sizes up to kMaxSize in 16-byte
// classes, each class keeping at most kKeptBytes; larger blocks go to
// operator new. A block freed on another thread joins that thread's lists.
// Not under ASan, which should see every use after free. Blocks are 16-byte
// aligned (operator new's); over-aligned types bypass the pool.
#include <cstddef>
#include <cstdint>
#include <new>

#include "fern/config.h"

namespace fern::detail {

inline constexpr std::size_t kPoolMaxSize = 512;
inline constexpr std::size_t kPoolGrain = 16;
inline constexpr std::size_t kPoolClasses = kPoolMaxSize / kPoolGrain;
inline constexpr std::size_t kPoolKeptBytes = 256 * 1024;  // per class: 512 blocks of 512 bytes, 16384 of 16

// The thread's lists: a `__thread` object (trivially constructible and
// destructible, usable while other thread-locals are destroyed) that the
// inline fast paths below reach without a call. `open` from the thread's
// first block made until its cleanup returned the kept blocks.
struct PoolFreeBlock {
  PoolFreeBlock* next;
};
struct PoolLists {
  PoolFreeBlock* head[kPoolClasses];
  std::uint32_t count[kPoolClasses];
  bool open;
  bool gone;
};
extern __thread PoolLists t_pool_lists;

constexpr std::size_t pool_class_of(std::size_t size) noexcept { return (size + kPoolGrain - 1) / kPoolGrain - 1; }
constexpr std::uint32_t pool_class_limit(std::size_t c) noexcept {
  return static_cast<std::uint32_t>(kPoolKeptBytes / ((c + 1) * kPoolGrain));
}

// The general paths (block_pool.cpp): a new block, any size; a block beyond
// what the class keeps, or freed after the thread's cleanup.
void* pool_allocate_slow(std::size_t size);
void pool_deallocate_slow(void* p, std::size_t size) noexcept;

// Inline, with the size a constant where they are used (a task's block):
// a pop or a push of the class's list.
inline void* pool_allocate(std::size_t size) {
#if !FERN_ASAN
  if (size - 1 < kPoolMaxSize) {
    std::size_t c = pool_class_of(size);
    if (PoolFreeBlock* b = t_pool_lists.head[c]) {
      t_pool_lists.head[c] = b->next;
      --t_pool_lists.count[c];
      return b;
    }
  }
#endif
  return pool_allocate_slow(size);
}

inline void pool_deallocate(void* p, std::size_t size) noexcept {
#if !FERN_ASAN
  if (size - 1 < kPoolMaxSize) {
    std::size_t c = pool_class_of(size);
    if (t_pool_lists.open && t_pool_lists.count[c] < pool_class_limit(c)) {
      auto* b = static_cast<PoolFreeBlock*>(p);
      b->next = t_pool_lists.head[c];
      t_pool_lists.head[c] = b;
      ++t_pool_lists.count[c];
      return;
    }
  }
#endif
  pool_deallocate_slow(p, size);
}

// An allocator over the pool (detail::Pooled uses it; std::allocate_shared could).
template <class T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() noexcept = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) noexcept {}  // NOLINT: rebinding
  T* allocate(std::size_t n) {
    if constexpr (alignof(T) > 16) {  // over-aligned: not pooled
      return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(alignof(T))));
    } else {
      return static_cast<T*>(pool_allocate(n * sizeof(T)));
    }
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if constexpr (alignof(T) > 16) {
      ::operator delete(p, std::align_val_t(alignof(T)));
    } else {
      pool_deallocate(p, n * sizeof(T));
    }
  }
  template <class U>
  friend bool operator==(const PoolAllocator&, const PoolAllocator<U>&) noexcept {
    return true;
  }
  template <class U>
  friend bool operator!=(const PoolAllocator&, const PoolAllocator<U>&) noexcept {
    return false;
  }
};

}  // namespace fern::detail
