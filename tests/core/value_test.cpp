// fern::Value: the type-erased value a switch carries (GL-3's packing).
// Construction, moves, copies, typed access and its errors, and that every
// held object is destroyed exactly once whichever way it travels.
#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>
#include <tuple>
#include <typeinfo>
#include <utility>
#include <vector>

#include "fern/core/exceptions.h"
#include "fern/core/value.h"

namespace {

using fern::Value;
using fern::value_cast;

// Counts live instances and destructions; `Big` makes it heap-held.
template <std::size_t kPad>
struct Tracked {
  static inline int live = 0;
  static inline int destroyed = 0;
  int id;
  std::array<char, kPad> pad{};
  explicit Tracked(int i) : id(i) { ++live; }
  Tracked(const Tracked& o) : id(o.id) { ++live; }
  Tracked(Tracked&& o) noexcept : id(o.id) { ++live; }
  ~Tracked() {
    --live;
    ++destroyed;
  }
  static void reset() { live = destroyed = 0; }
};
using SmallTracked = Tracked<4>;   // fits inline, non-trivial
using BigTracked = Tracked<64>;    // heap-held

struct BigPod {
  long a[8];
};

TEST(Value, DefaultIsEmpty) {
  Value v;
  EXPECT_FALSE(v.has_value());
  EXPECT_EQ(v.type(), fern::type_id<void>());
  EXPECT_EQ(v.get_if<int>(), nullptr);
}

TEST(Value, HoldsAnInt) {
  Value v = 42;
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v.type(), fern::type_id<int>());
  EXPECT_TRUE(v.holds<int>());
  EXPECT_EQ(value_cast<int>(v), 42);
  EXPECT_EQ(v.get<int>(), 42);
  v.get<int>() = 7;
  EXPECT_EQ(*v.get_if<int>(), 7);
}

TEST(Value, HoldsAStringAndDecaysArraysToPointers) {
  Value s = std::string("hello, a string longer than the small-string buffer");
  EXPECT_EQ(value_cast<std::string>(s), "hello, a string longer than the small-string buffer");
  EXPECT_EQ(value_cast<const std::string&>(s).size(), 51u);
  Value p = "literal";
  EXPECT_EQ(p.type(), fern::type_id<const char*>());
}

TEST(Value, HoldsMoveOnlyTypes) {
  Value v = std::make_unique<int>(5);
  ASSERT_NE(v.get_if<std::unique_ptr<int>>(), nullptr);
  EXPECT_EQ(**v.get_if<std::unique_ptr<int>>(), 5);
  std::unique_ptr<int> out = value_cast<std::unique_ptr<int>>(std::move(v));
  EXPECT_EQ(*out, 5);
}

TEST(Value, HoldsBigStructs) {
  BigPod pod{};
  pod.a[7] = 99;
  Value v = pod;
  Value moved = std::move(v);
  EXPECT_EQ(value_cast<BigPod>(moved).a[7], 99);
  Value copy = moved;
  EXPECT_EQ(copy.get<BigPod>().a[7], 99);
  EXPECT_NE(copy.get_if<BigPod>(), moved.get_if<BigPod>());  // a deep copy
}

TEST(Value, HoldsTuplesAndEmplaces) {
  Value t = std::make_tuple(1, std::string("x"));
  EXPECT_EQ((value_cast<std::tuple<int, std::string>>(t)), std::make_tuple(1, std::string("x")));
  Value e;
  e.emplace<std::vector<int>>(3, 8);
  EXPECT_EQ(e.get<std::vector<int>>(), (std::vector<int>{8, 8, 8}));
  Value m = fern::make_value<std::string>(3, 'z');
  EXPECT_EQ(m.get<std::string>(), "zzz");
}

TEST(Value, MoveLeavesTheSourceEmpty) {
  for (Value v : {Value(1), Value(std::string("s")), Value(BigPod{}), Value(std::make_pair(3, 4.0))}) {
    fern::TypeId held = v.type();
    Value to = std::move(v);
    EXPECT_FALSE(v.has_value());  // NOLINT(bugprone-use-after-move): the contract under test
    EXPECT_EQ(to.type(), held);
    Value assigned;
    assigned = std::move(to);
    EXPECT_FALSE(to.has_value());  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(assigned.type(), held);
  }
  Value i = 41;
  Value j = std::move(i);
  EXPECT_EQ(j.get<int>(), 41);
  Value p = std::make_pair(3, 4.0);
  Value q = std::move(p);
  EXPECT_EQ((q.get<std::pair<int, double>>()), std::make_pair(3, 4.0));
  Value u = std::make_unique<int>(1);
  Value u2 = std::move(u);
  EXPECT_FALSE(u.has_value());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(*u2.get<std::unique_ptr<int>>(), 1);
}

TEST(Value, CopyCopiesTheHeldObject) {
  Value a = std::string("abc");
  Value b = a;
  b.get<std::string>() += "d";
  EXPECT_EQ(a.get<std::string>(), "abc");
  EXPECT_EQ(b.get<std::string>(), "abcd");
  Value c;
  c = b;
  EXPECT_EQ(c.get<std::string>(), "abcd");
  Value empty;
  Value copy_of_empty = empty;
  EXPECT_FALSE(copy_of_empty.has_value());
  Value i = 7;
  Value j = i;
  EXPECT_EQ(j.get<int>(), 7);
  Value p = std::make_pair(1, 2.5);
  Value q = p;
  EXPECT_EQ((q.get<std::pair<int, double>>()), std::make_pair(1, 2.5));
}

TEST(Value, CopyingAMoveOnlyHeldTypeThrowsBadValueCopy) {
  Value v = std::make_unique<int>(1);
  try {
    Value copy = v;
    FAIL() << "copied a unique_ptr";
  } catch (const fern::BadValueCopy& e) {
    EXPECT_NE(std::string(e.what()).find("unique_ptr"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(v.has_value());  // the source is untouched
}

TEST(Value, GetIfOfTheWrongTypeIsNull) {
  Value v = 1;
  EXPECT_EQ(v.get_if<long>(), nullptr);
  EXPECT_EQ(v.get_if<std::string>(), nullptr);
  EXPECT_FALSE(v.holds<unsigned>());
  const Value& cv = v;
  EXPECT_EQ(cv.get_if<double>(), nullptr);
  ASSERT_NE(cv.get_if<int>(), nullptr);
  EXPECT_EQ(*cv.get_if<const int>(), 1);
}

TEST(Value, ValueCastToTheWrongTypeThrowsBadValueCastNamingBothTypes) {
  Value v = 1;
  try {
    (void)value_cast<std::string>(v);
    FAIL() << "no exception";
  } catch (const fern::BadValueCast& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("basic_string"), std::string::npos) << what;
    EXPECT_NE(what.find("int"), std::string::npos) << what;
    EXPECT_EQ(e.wanted(), fern::type_id<std::string>());
    EXPECT_EQ(e.held(), fern::type_id<int>());
  }
  EXPECT_THROW((void)value_cast<int>(Value()), std::bad_cast);  // derived from std::bad_cast
  EXPECT_THROW((void)v.get<double>(), fern::BadValueCast);
  try {
    (void)value_cast<int>(Value());
  } catch (const fern::BadValueCast& e) {
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  }
}

TEST(Value, ResetAndSwap) {
  Value a = 1, b = std::string("b");
  swap(a, b);
  EXPECT_EQ(a.get<std::string>(), "b");
  EXPECT_EQ(b.get<int>(), 1);
  a.reset();
  EXPECT_FALSE(a.has_value());
  a = 2.5;
  EXPECT_EQ(a.get<double>(), 2.5);
}

TEST(Value, HoldsGreenletExit) {
  Value v = fern::GreenletExit("bye");
  EXPECT_EQ(v.type(), fern::type_id<fern::GreenletExit>());
  EXPECT_EQ(value_cast<fern::GreenletExit>(v).message(), "bye");
}

// Every held object is destroyed exactly once: through moves, copies,
// assignments, emplace, reset and the Value's own destruction.
template <class T>
void check_destroyed_exactly_once() {
  T::reset();
  {
    Value a{std::in_place_type<T>, 1};
    Value b = std::move(a);
    Value c = b;
    Value d;
    d = std::move(c);
    d = T(2);
    Value e = T(3);
    e.emplace<T>(4);
    e.reset();
    Value f = T(5);
    f = Value();
    Value g = T(6);
    swap(g, b);
    EXPECT_EQ(value_cast<T&>(b).id, 6);
    EXPECT_EQ(value_cast<T>(std::move(g)).id, 1);  // moves the held object out
  }
  EXPECT_EQ(T::live, 0);
  EXPECT_GT(T::destroyed, 0);
}

TEST(Value, InlineHeldObjectsAreDestroyedExactlyOnce) {
  static_assert(fern::detail::ValueTraits<SmallTracked>::kInline);
  check_destroyed_exactly_once<SmallTracked>();
}

TEST(Value, HeapHeldObjectsAreDestroyedExactlyOnce) {
  static_assert(!fern::detail::ValueTraits<BigTracked>::kInline);
  check_destroyed_exactly_once<BigTracked>();
}

// Move assignment takes a one-word value (int, pointer, heap-held) by its
// bytes when the old one needs no destruction: every kind over every kind,
// and a self-move, keep each held object whole and destroyed once.
TEST(Value, MoveAssignmentOfEveryKindOverEveryKind) {
  struct Five {
    char c[5];
  };
  auto make = [](int kind) -> Value {
    switch (kind) {
      case 0: return Value();
      case 1: return Value(7);
      case 2: return Value(Five{{'a', 'b', 'c', 'd', 'e'}});
      case 3: return Value(std::in_place_type<SmallTracked>, 8);
      case 4: return Value(std::in_place_type<BigTracked>, 9);
      default: return Value(std::make_pair(10, 1.5));
    }
  };
  auto check = [](const Value& v, int kind) {
    switch (kind) {
      case 0: EXPECT_FALSE(v.has_value()); break;
      case 1: EXPECT_EQ(value_cast<int>(v), 7); break;
      case 2: EXPECT_EQ(std::string(value_cast<Five>(v).c, 5), "abcde"); break;
      case 3: EXPECT_EQ(value_cast<const SmallTracked&>(v).id, 8); break;
      case 4: EXPECT_EQ(value_cast<const BigTracked&>(v).id, 9); break;
      default: EXPECT_EQ((value_cast<std::pair<int, double>>(v)), std::make_pair(10, 1.5)); break;
    }
  };
  SmallTracked::reset();
  BigTracked::reset();
  for (int to = 0; to < 6; ++to) {
    for (int from = 0; from < 6; ++from) {
      Value a = make(to);
      Value b = make(from);
      a = std::move(b);
      check(a, from);
      EXPECT_FALSE(b.has_value());  // NOLINT(bugprone-use-after-move)
      Value& self = a;
      a = std::move(self);  // self-move keeps it
      check(a, from);
      EXPECT_EQ(value_cast<int>(Value(from)), from);  // the cast from a temporary
    }
  }
  EXPECT_EQ(SmallTracked::live, 0);
  EXPECT_EQ(BigTracked::live, 0);
  EXPECT_THROW(value_cast<int>(Value(1L)), fern::BadValueCast);  // the fast path's miss
  Value l = 2L;
  EXPECT_THROW(value_cast<int>(l), fern::BadValueCast);
}

// The hot path's promise: small trivially copyable types need no call.
TEST(Value, SmallTriviallyCopyableTypesMoveWithoutAnOperation) {
  using Ops = fern::detail::ValueOps;
  for (const Ops* ops : {&fern::detail::kValueOps<int>, &fern::detail::kValueOps<void*>,
                         &fern::detail::kValueOps<std::pair<int, double>>}) {
    EXPECT_EQ(ops->relocate, nullptr);
    EXPECT_EQ(ops->copy, nullptr);
    EXPECT_EQ(ops->destroy, nullptr);
  }
  EXPECT_EQ(fern::detail::kValueOps<BigPod>.relocate, nullptr);  // heap: the pointer moves
  EXPECT_NE(fern::detail::kValueOps<BigPod>.destroy, nullptr);
  EXPECT_NE(fern::detail::kValueOps<std::unique_ptr<int>>.relocate, nullptr);
  EXPECT_EQ(sizeof(Value), 32u);
}

}  // namespace

namespace {

// Without RTTI the type is named by the compiler's spelling: readable, and
// lambdas (which GCC spells alike within one function) stay distinct.
TEST(Value, TypeIdNamesTheTypeAndTellsLambdasApart) {
  EXPECT_EQ(fern::type_id<int>().name(), "int");
  EXPECT_NE(fern::type_id<int>(), fern::type_id<long>());
  auto first = [] { return 1; };
  auto second = [] { return 1; };
  Value v = first;
  EXPECT_TRUE(v.holds<decltype(first)>());
  EXPECT_FALSE(v.holds<decltype(second)>());
}

}  // namespace
