#pragma once
// fern::Value: the type-erased value a greenlet switch carries (std::any's
// role, shaped for the switch's hot path).
//
// A Value is 32 bytes: 24 bytes of inline storage and a pointer to a
// per-type static table of operations. What goes where:
//   trivial   trivially copyable/destructible types that fit (int, pointers,
//             small PODs): move and copy are byte copies with no indirect
//             call, destruction is nothing;
//   inline    other nothrow-movable types that fit (std::unique_ptr): moved
//             and destroyed through the table;
//   heap      everything else (std::string, big structs, over-aligned
//             types): one allocation; moving a Value copies the pointer.
// The held type is identified by the table's address (one compare, no
// typeid on the hot path); a mismatch falls back to comparing type_info, so
// values that cross a shared-library boundary still match.
//
// Like std::any, except: move-only types can be held; copying a Value that
// holds one throws BadValueCopy. A moved-from Value is empty. Not
// thread-safe; a Value may be moved between threads like any object.
#include <cstddef>
#include <cstring>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace fern {

// value_cast / Value::get to a type the Value does not hold (or on an empty
// one). what() names the wanted and the held type.
class BadValueCast : public std::bad_cast {
 public:
  BadValueCast(const std::type_info& wanted, const std::type_info& held);
  const char* what() const noexcept override { return message_.what(); }
  const std::type_info& wanted() const noexcept { return *wanted_; }
  const std::type_info& held() const noexcept { return *held_; }  // typeid(void) when empty

 private:
  std::runtime_error message_;  // a copy never throws
  const std::type_info* wanted_;
  const std::type_info* held_;
};

// Copying a Value that holds a move-only type: move the Value instead.
class BadValueCopy : public std::logic_error {
 public:
  explicit BadValueCopy(const std::type_info& held);
};

namespace detail {

inline constexpr std::size_t kValueSize = 24;
inline constexpr std::size_t kValueAlign = alignof(std::max_align_t);

struct ValueOps {
  const std::type_info* type;
  void (*relocate)(void* to, void* from) noexcept;  // null: copying the bytes moves it
  void (*copy)(void* to, const void* from);         // null: copying the bytes copies it
  void (*destroy)(void* storage) noexcept;          // null: nothing to destroy
};

[[noreturn]] void throw_bad_value_cast(const std::type_info& wanted, const std::type_info& held);
[[noreturn]] void throw_bad_value_copy(const std::type_info& held);
// Same type under different tables (one per shared library that made one).
bool same_value_type(const ValueOps* held, const std::type_info& wanted) noexcept;

template <class T>
struct ValueTraits {
  static constexpr bool kInline = sizeof(T) <= kValueSize && alignof(T) <= kValueAlign &&
                                  std::is_nothrow_move_constructible_v<T>;
  static constexpr bool kTrivial = kInline && std::is_trivially_copy_constructible_v<T> &&
                                   std::is_trivially_move_constructible_v<T> &&
                                   std::is_trivially_destructible_v<T>;

  static T* get(void* storage) noexcept {
    if constexpr (kInline) {
      return std::launder(reinterpret_cast<T*>(storage));
    } else {
      return *std::launder(reinterpret_cast<T**>(storage));
    }
  }
  template <class... A>
  static void construct(void* storage, A&&... args) {
    if constexpr (kInline) {
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
      throw_bad_value_copy(typeid(T));
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
  ValueOps ops{&typeid(T), nullptr, nullptr, nullptr};
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
    ops_ = &detail::kValueOps<D>;
  }
  // Holds a T made from args.
  template <class T, class... A>
  explicit Value(std::in_place_type_t<T>, A&&... args) {
    using D = std::decay_t<T>;
    detail::ValueTraits<D>::construct(storage_, std::forward<A>(args)...);
    ops_ = &detail::kValueOps<D>;
  }

  // Copies the held object; throws BadValueCopy for a move-only one.
  Value(const Value& other) {
    if (!other.ops_) return;
    if (other.ops_->copy) {
      other.ops_->copy(storage_, other.storage_);
    } else {
      std::memcpy(storage_, other.storage_, sizeof storage_);
    }
    ops_ = other.ops_;
  }
  // Takes the held object; `other` becomes empty. No allocation, and no
  // call for trivial and heap-held types.
  Value(Value&& other) noexcept : ops_(other.ops_) { take(other); }

  Value& operator=(const Value& other) {
    if (this != &other) *this = Value(other);
    return *this;
  }
  Value& operator=(Value&& other) noexcept {
    if (this != &other) {
      reset();
      ops_ = other.ops_;
      take(other);
    }
    return *this;
  }
  template <class T, class = std::enable_if_t<!std::is_same_v<std::decay_t<T>, Value>>>
  Value& operator=(T&& v) {
    return *this = Value(std::forward<T>(v));
  }

  ~Value() {
    if (ops_ && ops_->destroy) ops_->destroy(storage_);
  }

  // Destroys the held object (if any), then holds a T made from args.
  template <class T, class... A>
  std::decay_t<T>& emplace(A&&... args) {
    using D = std::decay_t<T>;
    reset();
    detail::ValueTraits<D>::construct(storage_, std::forward<A>(args)...);
    ops_ = &detail::kValueOps<D>;
    return *detail::ValueTraits<D>::get(storage_);
  }

  // Destroys the held object; the Value is empty afterwards.
  void reset() noexcept {
    const detail::ValueOps* ops = std::exchange(ops_, nullptr);
    if (ops && ops->destroy) ops->destroy(storage_);
  }
  void swap(Value& other) noexcept {
    Value tmp(std::move(other));
    other = std::move(*this);
    *this = std::move(tmp);
  }

  bool has_value() const noexcept { return ops_ != nullptr; }
  // The held type; typeid(void) when empty.
  const std::type_info& type() const noexcept { return ops_ ? *ops_->type : typeid(void); }

  // Whether it holds a T (cv-qualifiers ignored).
  template <class T>
  bool holds() const noexcept {
    using U = std::remove_cv_t<T>;
    const detail::ValueOps* want = &detail::kValueOps<U>;
    return ops_ == want || (ops_ && detail::same_value_type(ops_, typeid(U)));
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
    if (T* p = get_if<T>()) return *p;
    detail::throw_bad_value_cast(typeid(T), type());
  }
  template <class T>
  const T& get() const {
    return const_cast<Value*>(this)->get<const T>();
  }

 private:
  // Moves other's object into *this (ops_ already copied); empties other.
  void take(Value& other) noexcept {
    if (ops_ && ops_->relocate) {
      ops_->relocate(storage_, other.storage_);
    } else {
      std::memcpy(storage_, other.storage_, sizeof storage_);
    }
    other.ops_ = nullptr;
  }

  alignas(detail::kValueAlign) unsigned char storage_[detail::kValueSize];
  const detail::ValueOps* ops_ = nullptr;
};

inline void swap(Value& a, Value& b) noexcept { a.swap(b); }

// A Value holding a T made from args (std::make_any).
template <class T, class... A>
Value make_value(A&&... args) {
  return Value(std::in_place_type<T>, std::forward<A>(args)...);
}

// As std::any_cast: T is the held type, optionally cv/ref-qualified; the
// result is a copy (a move for an rvalue Value) or a reference. Throws
// BadValueCast when the Value holds something else or nothing.
template <class T>
T value_cast(const Value& v) {
  using U = std::remove_cv_t<std::remove_reference_t<T>>;
  static_assert(std::is_constructible_v<T, const U&>, "fern::value_cast<T>(const Value&): T cannot be made from const T&");
  if (const U* p = v.get_if<U>()) return static_cast<T>(*p);
  detail::throw_bad_value_cast(typeid(U), v.type());
}
template <class T>
T value_cast(Value& v) {
  using U = std::remove_cv_t<std::remove_reference_t<T>>;
  static_assert(std::is_constructible_v<T, U&>, "fern::value_cast<T>(Value&): T cannot be made from T&");
  if (U* p = v.get_if<U>()) return static_cast<T>(*p);
  detail::throw_bad_value_cast(typeid(U), v.type());
}
template <class T>
T value_cast(Value&& v) {
  using U = std::remove_cv_t<std::remove_reference_t<T>>;
  static_assert(std::is_constructible_v<T, U>, "fern::value_cast<T>(Value&&): T cannot be made from T&&");
  if (U* p = v.get_if<U>()) return static_cast<T>(std::move(*p));
  detail::throw_bad_value_cast(typeid(U), v.type());
}

}  // namespace fern
