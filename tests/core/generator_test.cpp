// GL-30: generators built from greenlets (greenlet's test_generator.py).
#include <functional>
#include <optional>
#include <set>
#include <vector>

#include "fern_test.h"

namespace {

using fern::Greenlet;
using Generators = fern::testing::FernTest;

// A "genlet": next() makes the caller its parent and switches in; the body
// yields by switching a value to that parent.
class Genlet {
 public:
  explicit Genlet(std::function<void()> body) : g_(std::move(body)) { registry().insert(g_.id()); }
  ~Genlet() { registry().erase(g_.id()); }

  std::optional<int> next() {
    g_.set_parent(Greenlet::current());
    fern::Value v = g_.switch_to();
    if (!g_.active()) return std::nullopt;  // fell off the end: StopIteration
    return fern::value_cast<int>(v);
  }

  // Yield(v): find the innermost genlet above the current greenlet and send v to its parent.
  static void yield(int value) {
    Greenlet g = Greenlet::current();
    while (g && !registry().count(g.id())) g = g.parent();
    if (!g) throw std::logic_error("yield outside a genlet");
    g.parent().switch_to(value);
  }

 private:
  static std::set<unsigned long>& registry() {
    static std::set<unsigned long> ids;
    return ids;
  }
  Greenlet g_;
};

TEST_F(Generators, GeneratorYieldsInterleaveWithTheConsumer) {
  std::vector<int> seen;
  for (int round = 0; round < 3; ++round) {
    Genlet gen([&] {
      for (int i = 0; i < 5; ++i) {
        seen.push_back(i);
        Genlet::yield(i);
      }
    });
    while (auto j = gen.next()) seen.push_back(*j);
  }
  std::vector<int> expected;
  for (int round = 0; round < 3; ++round)
    for (int i : {0, 0, 1, 1, 2, 2, 3, 3, 4, 4}) expected.push_back(i);
  EXPECT_EQ(seen, expected);
}

// test_generator_nested: a genlet consuming another yields the layered values.
TEST_F(Generators, NestedGeneratorsYieldThroughEachOther) {
  std::vector<int> out;
  Genlet outer([] {
    Genlet inner([] {
      for (int i = 0; i < 3; ++i) Genlet::yield(i);
    });
    while (auto v = inner.next()) Genlet::yield(*v * 10);
  });
  while (auto v = outer.next()) out.push_back(*v);
  EXPECT_EQ(out, (std::vector<int>{0, 10, 20}));
}

TEST_F(Generators, YieldOutsideAGeneratorIsAnError) {
  EXPECT_THROW(Genlet::yield(1), std::logic_error);
}

}  // namespace
