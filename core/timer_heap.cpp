#include "fern/core/timer_heap.h"

#include <cassert>
#include <cstdint>
#include <cstring>
#include <new>

namespace fern {
namespace {

// Children of i are 4i+1 .. 4i+4. A 4-ary heap is half as deep as a binary
// one, and the four 16-byte siblings fill exactly one 64-byte cache line
// because entries_[0] sits kPad entries into a line-aligned block.
constexpr std::size_t kArity = 4;
constexpr std::size_t kPad = 3;
constexpr std::align_val_t kLine{64};
constexpr std::size_t kInitialCapacity = 64;

// The templates below deduce TimerHeap's private Entry without naming it.
// Sequences are unique, so this is a strict total order; the node is read
// only on equal deadlines.
template <class E>
inline bool before(const E& a, const E& b) noexcept {
  return a.deadline < b.deadline ||
         (a.deadline == b.deadline && a.node->sequence < b.node->sequence);
}

// Sifts move entries into a hole, each moved node learning its new slot; the
// sifted entry is written, with its slot, once at the end.
template <class E>
void sift_up(E* h, std::size_t hole, E e) noexcept {
  while (hole > 0) {
    const std::size_t parent = (hole - 1) / kArity;
    if (!before(e, h[parent])) break;
    h[hole] = h[parent];
    h[hole].node->slot = hole;
    hole = parent;
  }
  h[hole] = e;
  e.node->slot = hole;
}

// cond ? a : b by masks: GCC turns a plain ?: on an unpredictable bool back
// into a branch.
inline std::uint64_t pick(bool cond, std::uint64_t a, std::uint64_t b) noexcept {
  return b ^ ((a ^ b) & (0 - std::uint64_t{cond}));
}

// For a pushed entry, whose sequence exceeds every queued one: it goes
// before an entry exactly when its deadline is earlier. Whether a new
// deadline passes its parent is a coin toss to the branch predictor, so the
// first level is decided without a branch; the loop runs only when the entry
// rose and rises again, which is rare.
template <class E>
void sift_up_pushed(E* h, std::size_t hole, E e) noexcept {
  if (hole > 0) {
    const std::size_t parent = (hole - 1) / kArity;
    const E above = h[parent];
    const bool up = e.deadline < above.deadline;
    const auto as_int = [](TimerNode* n) { return reinterpret_cast<std::uintptr_t>(n); };
    auto* down = reinterpret_cast<TimerNode*>(pick(up, as_int(above.node), as_int(e.node)));
    h[hole] = E{static_cast<Nanos>(pick(up, above.deadline, e.deadline)), down};
    down->slot = hole;
    hole = pick(up, parent, hole);
    // Opaque, or GCC branches on up again to skip the loop's first test.
    __asm__("" : "+r"(hole));
  }
  while (hole > 0 && e.deadline < h[(hole - 1) / kArity].deadline) {
    h[hole] = h[(hole - 1) / kArity];
    h[hole].node->slot = hole;
    hole = (hole - 1) / kArity;
  }
  h[hole] = e;
  e.node->slot = hole;
}

// The earliest of the children first .. min(first + 4, n) - 1. A full
// family is a tournament: two independent compares, then one.
template <class E>
inline std::size_t min_child(const E* h, std::size_t first, std::size_t n) noexcept {
  if (n - first >= kArity) {
    const std::size_t a = before(h[first + 1], h[first]) ? first + 1 : first;
    const std::size_t b = before(h[first + 3], h[first + 2]) ? first + 3 : first + 2;
    return before(h[b], h[a]) ? b : a;
  }
  std::size_t best = first;
  for (std::size_t c = first + 1; c < n; ++c) {
    if (before(h[c], h[best])) best = c;
  }
  return best;
}

// Slots: whether each moved node learns its new slot at once (false: the
// caller writes every slot afterwards, as a sweep does).
template <bool kSlots = true, class E>
void sift_down(E* h, std::size_t n, std::size_t hole, E e) noexcept {
  for (;;) {
    const std::size_t first = kArity * hole + 1;
    if (first >= n) break;
    // The grandchildren fill four lines; fetching them now overlaps their
    // misses with this level's compares instead of serialising them.
    const std::size_t grand = kArity * first + 1;
    for (std::size_t g = grand; g < grand + kArity * kArity && g < n; g += kArity) {
      __builtin_prefetch(h + g);
    }
    const std::size_t best = min_child(h, first, n);
    if (!before(h[best], e)) break;
    h[hole] = h[best];
    if (kSlots) h[hole].node->slot = hole;
    hole = best;
  }
  h[hole] = e;
  if (kSlots) e.node->slot = hole;
}

}  // namespace

TimerHeap::TimerHeap() noexcept { HookHolder::detach = &detach_from; }

void TimerHeap::detach_from(HookHolder* self, detail::Hook* h) noexcept {
  static_cast<TimerHeap*>(self)->remove(static_cast<TimerNode*>(h));
}

void TimerNode::set_ref(bool ref) noexcept {
  if (ref == ref_) return;
  ref_ = ref;
  if (linked()) {
    auto* heap = static_cast<TimerHeap*>(holder());
    if (ref) ++heap->ref_count_;
    else --heap->ref_count_;
  }
}

TimerHeap::~TimerHeap() {
  // Nodes outlive the heap; none may go on believing it is queued.
  for (std::size_t i = 0; i < size_; ++i) {
    entries_[i].node->slot = TimerNode::kNotQueued;
    entries_[i].node->holder_ = nullptr;
  }
  tomb_.holder_ = nullptr;
  if (entries_) ::operator delete(entries_ - kPad, kLine);
}

void TimerHeap::reserve(std::size_t n) {
  if (n <= capacity_) return;
  auto* block = static_cast<Entry*>(::operator new((n + kPad) * sizeof(Entry), kLine));
  if (entries_) {
    std::memcpy(static_cast<void*>(block + kPad), entries_, size_ * sizeof(Entry));
    ::operator delete(entries_ - kPad, kLine);
  }
  entries_ = block + kPad;
  capacity_ = n;
}

bool TimerHeap::push(TimerNode* node) {
  // The common case stays a leaf function with few registers to save: a
  // node already held (re-arm, or a refusal) and growth go out of line.
  if (__builtin_expect(node->holder_ != nullptr, 0)) return push_held(node);
  if (__builtin_expect(size_ == capacity_, 0)) return push_growing(node);
  node->sequence = next_sequence_++;
  node->holder_ = this;
  ref_count_ += node->ref_;
  sift_up_pushed(entries_, size_++, Entry{node->deadline, node});
  return true;
}

[[gnu::noinline]] bool TimerHeap::push_growing(TimerNode* node) {
  reserve(capacity_ ? 2 * capacity_ : kInitialCapacity);
  return push(node);
}

// Re-arming a queued node re-keys its entry in place, as a new push
// (sequence included) would order it; a node in another container is refused.
[[gnu::noinline]] bool TimerHeap::push_held(TimerNode* node) noexcept {
  assert(node->holder_ == this && "fern: a timer linked in another container");
  if (node->holder_ != this) return false;
  const std::size_t hole = node->slot;
  const Entry e{node->deadline, node};
  node->sequence = next_sequence_++;
  if (hole > 0 && before(e, entries_[(hole - 1) / kArity])) {
    sift_up(entries_, hole, e);
  } else {
    sift_down(entries_, size_, hole, e);
  }
  return true;
}

void TimerHeap::unqueue(TimerNode* node) noexcept {
  node->holder_ = nullptr;  // slot is meaningful only while queued: left as it is
  ref_count_ -= node->ref_;
}

// Cuts the tombstones that the last cut left at the end of the array.
[[gnu::noinline]] void TimerHeap::trim_tombstones() noexcept {
  while (size_ && entries_[size_ - 1].node == &tomb_) {
    --size_;
    --tombs_;
  }
}

void TimerHeap::remove(TimerNode* node) noexcept {
  if (node->holder_ != this) return;
  const std::size_t hole = node->slot;
  assert(hole < size_ && entries_[hole].node == node);
  unqueue(node);
  // A leaf function: what is not the last entry goes out of line.
  std::size_t n = size_;
  if (__builtin_expect(hole + 1 != n, 0)) return remove_inside(hole);
  // The last entry (a timer armed and cancelled before anything passed it:
  // a Timeout around a quick call) is simply cut off, and with it the
  // tombstones it leaves at the end. The new size is computed from the old
  // one, not from the slot: hole + 1 == n, but the slot was stored by the
  // sift that depended on a parent's load, and an arm then cancel would
  // chain two store-to-load forwardings per pair through it (measured:
  // about 15% of the pair's time). Opaque, so the compiler keeps it so.
  __asm__("" : "+r"(n));
  size_ = --n;
  if (__builtin_expect(n != 0 && entries_[n - 1].node == &tomb_, 0)) trim_tombstones();
}

[[gnu::noinline]] void TimerHeap::remove_inside(std::size_t hole) noexcept {
  if (hole == (size_ - 2) / kArity) {
    // The parent of the last entry (a timer that rose one level when armed
    // and is cancelled: the arm+cancel pattern of Timeouts under load): the
    // last entry moves up into it. It was a child of this slot, so it
    // belongs below the slot's parent, and at most its three siblings, in
    // one cache line, are compared with it. No tombstone to sweep later.
    const Entry last = entries_[--size_];
    sift_down(entries_, size_, hole, last);
    if (tombs_) trim_tombstones();
    return;
  }
  entries_[hole].node = &tomb_;
  if (++tombs_ > kInitialCapacity && tombs_ > size_ / 2) sweep();
}

void TimerHeap::pop_top() noexcept {
  const Entry last = entries_[--size_];
  if (size_ > 0) sift_down(entries_, size_, 0, last);
}

void TimerHeap::drop_tombstones_on_top() noexcept {
  while (size_ && entries_[0].node == &tomb_) {
    --tombs_;
    pop_top();
  }
}

// Keeps the live entries, in array order, and rebuilds the heap bottom-up
// (Floyd): O(n). The nodes, scattered in memory (a cache miss each in a big
// heap), learn their slots in one last pass, not at each move; the pass
// fetches a node some entries ahead so that the misses overlap.
void TimerHeap::sweep() noexcept {
  // Without a branch: half the entries are tombstones, in no order, and a
  // branch on each was half the sweep's time.
  std::size_t n = 0;
  for (std::size_t i = 0; i < size_; ++i) {
    entries_[n] = entries_[i];
    n += entries_[i].node != &tomb_;
  }
  size_ = n;
  tombs_ = 0;
  if (n >= 2) {
    for (std::size_t i = (n - 2) / kArity + 1; i-- > 0;) {
      sift_down<false>(entries_, n, i, entries_[i]);
    }
  }
  constexpr std::size_t kAhead = 16;
  for (std::size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) __builtin_prefetch(entries_[i + kAhead].node, 1);
    entries_[i].node->slot = i;
  }
}

TimerNode* TimerHeap::pop_expired(Nanos now) noexcept {
  TimerNode* node = top();
  if (!node || entries_[0].deadline > now) return nullptr;
  unqueue(node);
  pop_top();
  return node;
}

}  // namespace fern
