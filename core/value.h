#pragma once
// fern::Value: the type-erased value a greenlet switch carries (std::any's
// role, shaped for the switch's hot path).
//
// A Value is 32 bytes: 24 bytes of inline storage and a word naming a
// per-type static table of operations (its address, with flag bits that say
// whether moving and destroying need the table). What goes where:
//   trivial   trivially copyable/destructible types that fit (int, pointers,
//             small PODs): move and copy are byte copies with no indirect
//             call, destruction is nothing;
//   inline    other nothrow-movable types that fit (std::unique_ptr): moved
//             and destroyed through the table;
//   heap      everything else (std::string, big structs, over-aligned
//             types): one allocation; moving a Value copies the pointer.
// Trivial types of up to 8 bytes and heap pointers are stored and moved as
// one 8-byte word: a move then never loads more bytes than were stored
// (a wider load over a narrower, recent store stalls store forwarding).
// The held type is identified by the table's address (one compare on the
// hot path); a mismatch falls back to comparing type names (TypeId), so
// values that cross a shared-library boundary still match. No RTTI: Value
// and everything up to greenlet.h work with -fno-rtti.
//
// Like std::any, except: move-only types can be held; copying a Value that
// holds one throws BadValueCopy. A moved-from Value is empty. Not
// thread-safe; a Value may be moved between threads like any object.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>  // std::bad_cast only: no typeid
#include <utility>

namespace fern {
namespace detail {
// The compiler's signature of this function names T.
template <class T>
constexpr const char* type_signature() noexcept {
  return __PRETTY_FUNCTION__;
}
// One per type (and library): its address identifies the type, since the
// strings of types spelt alike (GCC's lambdas) may be merged.
struct TypeDescriptor {
  const char* signature;
};
template <class T>
inline constexpr TypeDescriptor kTypeDescriptor{type_signature<T>()};
bool same_type_name(const TypeDescriptor* a, const TypeDescriptor* b) noexcept;
}  // namespace detail

// A type's identity without RTTI, from the name the compiler gives it.
// Equal for the same type in every library of the program. Types without a
// program-wide name (lambdas, anonymous namespaces) are equal only to
// themselves within one library.
class TypeId {
 public:
  constexpr explicit TypeId(const detail::TypeDescriptor* type) noexcept : type_(type) {}
  // The type's name as the compiler spells it ("int", "std::__cxx11::basic_string<char>").
  std::string name() const;
  friend bool operator==(TypeId a, TypeId b) noexcept {
    return a.type_ == b.type_ || detail::same_type_name(a.type_, b.type_);
  }
  friend bool operator!=(TypeId a, TypeId b) noexcept { return !(a == b); }

 private:
  const detail::TypeDescriptor* type_;
};

// The TypeId of T (cv-qualifiers and references are part of it).
template <class T>
constexpr TypeId type_id() noexcept {
  return TypeId(&detail::kTypeDescriptor<T>);
}

// value_cast / Value::get to a type the Value does not hold (or on an empty
// one). what() names the wanted and the held type.
class BadValueCast : public std::bad_cast {
 public:
  BadValueCast(TypeId wanted, TypeId held);
  const char* what() const noexcept override { return message_.what(); }
  TypeId wanted() const noexcept { return wanted_; }
  TypeId held() const noexcept { return held_; }  // type_id<void>() when empty

 private:
  std::runtime_error message_;  // a copy never throws
  TypeId wanted_;
  TypeId held_;
};

// Copying a Value that holds a move-only type: move the Value instead.
class BadValueCopy : public std::logic_error {
 public:
  explicit BadValueCopy(TypeId held);
};

namespace detail {

inline constexpr std::size_t kValueSize = 24;
inline constexpr std::size_t kValueAlign = alignof(std::max_align_t);

struct alignas(8) ValueOps {
  TypeId type;
  void (*relocate)(void* to, void* from) noexcept;  // null: copying the bytes moves it
  void (*copy)(void* to, const void* from);         // null: copying the bytes copies it
  void (*destroy)(void* storage) noexcept;          // null: nothing to destroy
};

[[noreturn]] void throw_bad_value_cast(TypeId wanted, TypeId held);
[[noreturn]] void throw_bad_value_copy(TypeId held);
// Same type under different tables (one per shared library that made one).
// Out of line: the hot paths hold the matching table.
bool same_value_type(const ValueOps* held, TypeId wanted) noexcept;

template <class T>
struct ValueTraits {
  static constexpr bool kInline = sizeof(T) <= kValueSize && alignof(T) <= kValueAlign &&
                                  std::is_nothrow_move_constructible_v<T>;
  static constexpr bool kTrivial = kInline && std::is_trivially_copy_constructible_v<T> &&
                                   std::is_trivially_move_constructible_v<T> &&
                                   std::is_trivially_destructible_v<T>;
  // Stored as one 8-byte word: the object itself, zero-extended, or the
  // pointer to it on the heap.
  static constexpr bool kWord = (kTrivial && sizeof(T) <= 8) || !kInline;

  static T* get(void* storage) noexcept {
    if constexpr (kInline) {
      return std::launder(reinterpret_cast<T*>(storage));
    } else {
      return *std::launder(reinterpret_cast<T**>(storage));
    }
  }
  template <class... A>
  static void construct(void* storage, A&&... args) {
    if constexpr (kTrivial && kWord) {
      // One whole-word store, which the one-word load of a move forwards
      // from (a wider load over a narrower store would stall).
      T object(std::forward<A>(args)...);
      std::uint64_t word = 0;
      std::memcpy(&word, &object, sizeof(T));
      std::memcpy(storage, &word, sizeof word);
    } else if constexpr (kInline) {
      ::new (storage) T(std::forward<A>(args)...);
    } else {
      ::new (storage) T*(new T(std::forward<A>(args)...));
    }
  }
  static void relocate(void* to, void* from) noexcept {
    T* src = get(from);
    ::new (to) T(std::move(*src));
    src->~T();
  }
  static void copy(void* to, const void* from) {
    if constexpr (std::is_copy_constructible_v<T>) {
      construct(to, static_cast<const T&>(*get(const_cast<void*>(from))));
    } else {
      throw_bad_value_copy(type_id<T>());
    }
  }
  static void destroy(void* storage) noexcept {
    if constexpr (kInline) {
      get(storage)->~T();
    } else {
      delete get(storage);
    }
  }
};

template <class T>
constexpr ValueOps make_value_ops() noexcept {
  using Traits = ValueTraits<T>;
  ValueOps ops{type_id<T>(), nullptr, nullptr, nullptr};
  if constexpr (!Traits::kTrivial) {
    if constexpr (Traits::kInline) ops.relocate = &Traits::relocate;  // a heap object moves with its pointer
    ops.copy = &Traits::copy;
    ops.destroy = &Traits::destroy;
  }
  return ops;
}

// One table per type: its address is the type's identity.
template <class T>
inline constexpr ValueOps kValueOps = make_value_ops<T>();

template <class T>
struct IsInPlaceType : std::false_type {};
template <class T>
struct IsInPlaceType<std::in_place_type_t<T>> : std::true_type {};

// A Value's type word is the address of the held type's table plus these
// flags, so the hot paths test a bit instead of loading from the table.
inline constexpr std::uintptr_t kValueDestroy = 1;   // destroy (and copy) through the table
inline constexpr std::uintptr_t kValueRelocate = 2;  // move through the table, not by bytes
inline constexpr std::uintptr_t kValueWord = 4;      // the storage is one 8-byte word
inline constexpr std::uintptr_t kValueFlags = kValueDestroy | kValueRelocate | kValueWord;
static_assert(alignof(ValueOps) > kValueFlags);

template <class T>
std::uintptr_t value_word() noexcept {
  using Traits = ValueTraits<T>;
  constexpr std::uintptr_t flags = (Traits::kTrivial ? 0
                                    : Traits::kInline ? kValueDestroy | kValueRelocate
                                                      : kValueDestroy) |
                                   (Traits::kWord ? kValueWord : 0);
  // Value's move assignment relies on it: a one-word value moves by bytes.
  static_assert((flags & (kValueWord | kValueRelocate)) != (kValueWord | kValueRelocate));
  return reinterpret_cast<std::uintptr_t>(&kValueOps<T>) + flags;
}

struct ValueAccess;

}  // namespace detail

class Value {
 public:
  // Empty.
  Value() noexcept = default;

  // Holds a decayed copy (or the moved) `v`. Allocates only for types that
  // do not fit the inline storage (see the top of this file).
  template <class T, class D = std::decay_t<T>,
            class = std::enable_if_t<!std::is_same_v<D, Value> && !detail::IsInPlaceType<D>::value &&
                                     std::is_constructible_v<D, T&&>>>
  Value(T&& v) {  // NOLINT: implicit, like std::any
    detail::ValueTraits<D>::construct(storage_, std::forward<T>(v));
    word_ = detail::value_word<D>();
  }
  // Holds a T made from args.
  template <class T, class... A>
  explicit Value(std::in_place_type_t<T>, A&&... args) {
    using D = std::decay_t<T>;
    detail::ValueTraits<D>::construct(storage_, std::forward<A>(args)...);
    word_ = detail::value_word<D>();
  }

  // Copies the held object; throws BadValueCopy for a move-only one.
  Value(const Value& other) {
    if (other.word_ & detail::kValueDestroy) {
      other.ops()->copy(storage_, other.storage_);
    } else {
      copy_bytes(other.word_, other);
    }
    word_ = other.word_;
  }
  // Takes the held object; `other` becomes empty. No allocation, and no
  // call for trivial and heap-held types.
  Value(Value&& other) noexcept : word_(other.word_) { take(other); }

  Value& operator=(const Value& other) {
    if (this != &other) *this = Value(other);
    return *this;
  }
  Value& operator=(Value&& other) noexcept {
    std::uintptr_t word = other.word_;
    // The common case first (a greenlet loop's `v = g.switch_to(...)`): a
    // one-word value (never a relocating one: see value_word) over one that
    // needs no destruction moves in three stores.
    if (__builtin_expect((word_ & detail::kValueDestroy) == 0 && (word & detail::kValueWord) && this != &other, 1)) {
      std::memcpy(storage_, other.storage_, 8);
      word_ = word;
      other.word_ = 0;
    } else if (this != &other) {
      reset();
      word_ = word;
      take(other);
    }
    return *this;
  }
  template <class T, class = std::enable_if_t<!std::is_same_v<std::decay_t<T>, Value>>>
  Value& operator=(T&& v) {
    return *this = Value(std::forward<T>(v));
  }

  ~Value() {
    if (word_ & detail::kValueDestroy) ops()->destroy(storage_);
  }

  // Destroys the held object (if any), then holds a T made from args.
  template <class T, class... A>
  std::decay_t<T>& emplace(A&&... args) {
    using D = std::decay_t<T>;
    reset();
    detail::ValueTraits<D>::construct(storage_, std::forward<A>(args)...);
    word_ = detail::value_word<D>();
    return *detail::ValueTraits<D>::get(storage_);
  }

  // Destroys the held object; the Value is empty afterwards.
  void reset() noexcept {
    std::uintptr_t word = std::exchange(word_, 0);
    if (word & detail::kValueDestroy) ops(word)->destroy(storage_);
  }
  void swap(Value& other) noexcept {
    Value tmp(std::move(other));
    other = std::move(*this);
    *this = std::move(tmp);
  }

  bool has_value() const noexcept { return word_ != 0; }
  // The held type; type_id<void>() when empty.
  TypeId type() const noexcept { return word_ ? ops()->type : type_id<void>(); }

  // Whether it holds a T (cv-qualifiers ignored).
  template <class T>
  bool holds() const noexcept {
    using U = std::remove_cv_t<T>;
    return word_ == detail::value_word<U>() || (word_ && detail::same_value_type(ops(), type_id<U>()));
  }
  // The held T, or nullptr when it holds something else or nothing.
  template <class T>
  T* get_if() noexcept {
    static_assert(!std::is_reference_v<T>, "fern::Value::get_if<T>: T must not be a reference");
    return holds<T>() ? detail::ValueTraits<std::remove_cv_t<T>>::get(storage_) : nullptr;
  }
  template <class T>
  const T* get_if() const noexcept {
    return const_cast<Value*>(this)->get_if<const T>();
  }
  // The held T; throws BadValueCast when it holds something else or nothing.
  template <class T>
  T& get() {
    if (!holds<T>()) detail::throw_bad_value_cast(type_id<std::remove_cv_t<T>>(), type());
    return *detail::ValueTraits<std::remove_cv_t<T>>::get(storage_);
  }
  template <class T>
  const T& get() const {
    return const_cast<Value*>(this)->get<const T>();
  }

 private:
  friend struct detail::ValueAccess;

  static const detail::ValueOps* ops(std::uintptr_t word) noexcept {
    return reinterpret_cast<const detail::ValueOps*>(word & ~detail::kValueFlags);
  }
  const detail::ValueOps* ops() const noexcept { return ops(word_); }

  // Moves other's object into *this (word_ already copied); empties other.
  void take(Value& other) noexcept {
    if (word_ & detail::kValueRelocate) {
      ops()->relocate(storage_, other.storage_);
    } else {
      copy_bytes(word_, other);
    }
    other.word_ = 0;
  }
  // Copies the bytes other's object is stored in (`word` is other's type word).
  void copy_bytes(std::uintptr_t word, const Value& other) noexcept {
    if (word & detail::kValueWord) {
      std::memcpy(storage_, other.storage_, 8);
    } else if (word) {
      std::memcpy(storage_, other.storage_, sizeof storage_);
    }
  }

  alignas(detail::kValueAlign) unsigned char storage_[detail::kValueSize];
  std::uintptr_t word_ = 0;  // see detail::value_word; 0: empty
};

inline void swap(Value& a, Value& b) noexcept { a.swap(b); }

// A Value holding a T made from args (std::make_any).
template <class T, class... A>
Value make_value(A&&... args) {
  return Value(std::in_place_type<T>, std::forward<A>(args)...);
}

namespace detail {
struct ValueAccess {
  // The held U, which the caller has checked it holds.
  template <class U>
  static U& held(Value& v) noexcept {
    return *ValueTraits<U>::get(v.storage_);
  }
  template <class U>
  static U& checked(Value& v) {
    if (!v.holds<U>()) throw_bad_value_cast(type_id<U>(), v.type());
    // Every table of a trivial type lacks kValueDestroy: told so, the
    // compiler drops the Value's destructor after a cast from a temporary.
    if constexpr (ValueTraits<U>::kTrivial) {
      if (v.word_ & kValueDestroy) __builtin_unreachable();
    }
    return held<U>(v);
  }

  // A value the greenlet switch carries in a register: empty, or one 8-byte
  // word that copying the bytes moves (kValueWord without kValueDestroy or
  // kValueRelocate). `bits` is that word's content, 0 when empty.
  static bool is_register_value(const Value& v) noexcept {
    return (v.word_ & kValueFlags) == kValueWord || v.word_ == 0;
  }
  static std::uintptr_t word(const Value& v) noexcept { return v.word_; }
  // A copy of the held U of a Value whose word is U's own (trivial, one word).
  template <class U>
  static U word_object(const Value& v) noexcept {
    if (v.word_ & kValueDestroy) __builtin_unreachable();  // U's table (see checked)
    // The whole word, as it was stored: the compiler forwards it from the
    // store (a narrower load it would leave to the CPU).
    std::uint64_t word;
    std::memcpy(&word, v.storage_, sizeof word);
    U out;
    std::memcpy(&out, &word, sizeof(U));
    return out;
  }
  // value_cast's fast path: T a copy of a trivial one-word U, read by value
  // on the matching table (a cast through the reference would read it only
  // after joining the slow match's path, through the Value's memory).
  template <class T, class U>
  static constexpr bool kCastByWord = !std::is_reference_v<T> && ValueTraits<U>::kTrivial &&
                                      ValueTraits<U>::kWord && std::is_trivially_default_constructible_v<U>;
  static void* bits(const Value& v) noexcept {
    void* b = nullptr;
    if (v.word_ != 0) std::memcpy(&b, v.storage_, sizeof b);
    return b;
  }
  // The same for a T, known when compiled: T is one, and its bits.
  template <class T>
  static constexpr bool kRegister = ValueTraits<T>::kTrivial && ValueTraits<T>::kWord;
  template <class T, class A>
  static void* register_bits(A&& a) noexcept {
    T object(std::forward<A>(a));
    void* b = nullptr;
    std::memcpy(&b, &object, sizeof(T));
    return b;
  }
  static Value from_register(std::uintptr_t word, void* bits) noexcept {
    Value v;
    v.word_ = word;
    std::memcpy(v.storage_, &bits, sizeof bits);
    return v;
  }
};
}  // namespace detail

// As std::any_cast: T is the held type, optionally cv/ref-qualified; the
// result is a copy (a move for an rvalue Value) or a reference. Throws
// BadValueCast when the Value holds something else or nothing.
template <class T>
T value_cast(const Value& v) {
  using U = std::remove_cv_t<std::remove_reference_t<T>>;
  static_assert(std::is_constructible_v<T, const U&>,
                "fern::value_cast<T>(const Value&): T cannot be made from const T&");
  return static_cast<T>(
      static_cast<const U&>(detail::ValueAccess::checked<U>(const_cast<Value&>(v))));
}
template <class T>
T value_cast(Value& v) {
  using U = std::remove_cv_t<std::remove_reference_t<T>>;
  static_assert(std::is_constructible_v<T, U&>, "fern::value_cast<T>(Value&): T cannot be made from T&");
  if constexpr (detail::ValueAccess::kCastByWord<T, U>) {
    if (__builtin_expect(detail::ValueAccess::word(v) == detail::value_word<U>(), 1))
      return static_cast<T>(detail::ValueAccess::word_object<U>(v));
  }
  return static_cast<T>(detail::ValueAccess::checked<U>(v));
}
template <class T>
T value_cast(Value&& v) {
  using U = std::remove_cv_t<std::remove_reference_t<T>>;
  static_assert(std::is_constructible_v<T, U>, "fern::value_cast<T>(Value&&): T cannot be made from T&&");
  if constexpr (detail::ValueAccess::kCastByWord<T, U>) {
    if (__builtin_expect(detail::ValueAccess::word(v) == detail::value_word<U>(), 1))
      return static_cast<T>(detail::ValueAccess::word_object<U>(v));
  }
  return static_cast<T>(std::move(detail::ValueAccess::checked<U>(v)));
}

}  // namespace fern
