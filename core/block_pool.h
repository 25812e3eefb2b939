#pragma once
// Small blocks kept per thread for reuse: a task (its object and its
// callable in one block, task.h's detail::Pooled) costs no malloc/free pair
// once the thread has made as many before. Sizes up to kMaxSize in 16-byte
// classes, each class keeping at most kKeptBytes; larger blocks go to
// operator new. A block freed on another thread joins that thread's lists.
// Not under ASan, which should see every use after free. Blocks are 16-byte
// aligned (operator new's); over-aligned types bypass the pool.
#include <cstddef>
#include <new>

namespace fern::detail {

inline constexpr std::size_t kPoolMaxSize = 512;

void* pool_allocate(std::size_t size);
void pool_deallocate(void* p, std::size_t size) noexcept;

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
