// Seeded random programs over raw greenlets, as a hostile user writes them:
// every greenlet runs a random script that makes children under random
// parents, switches to random greenlets (dead, unstarted, itself, main)
// with values, throws into them, reparents them (cycles included), kills
// them and drops its handles to them, catching only its own exception type
// now and then. Whatever the program: no crash, every error fern raises is
// one of its typed ones (GreenletError and its kinds), a value switched
// arrives intact, and once main drops its handles nothing is left alive
// (each suspended greenlet is unwound, GL-19).
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "fern/core/exceptions.h"
#include "fern/core/greenlet.h"
#include "fern_test.h"

namespace {

using fern::Greenlet;
using fern::Value;

struct Boom {
  int n;
};

struct World {
  explicit World(std::uint32_t seed) : rng(seed) {}

  std::mt19937 rng;
  std::vector<Greenlet> all;  // main's handles; the scripts' own are on their stacks
  int made = 0;
  int bad_values = 0;
  int untyped = 0;
  std::string first_untyped;

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }
  Greenlet any() { return all.empty() ? Greenlet::current() : all[pick(int(all.size()))]; }
  // A value is a number with its own check digit: a switch that delivered
  // something else (or half of it) shows.
  static long encode(int n) { return long(n) * 1000 + n % 997; }
  void check(const Value& v) {
    if (auto* p = v.get_if<long>(); p && *p % 1000 != (*p / 1000) % 997) ++bad_values;
  }

  Greenlet make(int depth);
  void script(int steps, int depth);
  void step(int depth);
};

Greenlet World::make(int depth) {
  ++made;
  int steps = pick(8);
  Greenlet parent = pick(3) == 0 ? any() : Greenlet();  // empty: the current greenlet
  if (parent && parent.dead()) parent = Greenlet();
  Greenlet g(
      [this, steps, depth](Value v) {
        check(v);
        script(steps, depth + 1);
        return encode(pick(1000));
      },
      parent);
  return g;
}

void World::script(int steps, int depth) {
  for (int i = 0; i < steps; ++i) {
    try {
      step(depth);
    } catch (const Boom&) {
    } catch (const fern::GreenletExit&) {
      throw;  // killed: unwind
    } catch (const fern::GreenletError&) {  // CyclicParentError and the other kinds
    } catch (const std::exception& e) {
      if (++untyped == 1) first_untyped = e.what();
    }
  }
}

// The scripts keep no handle on their own stacks across a switch (they
// reach greenlets through main's list): a handle held on a suspended stack
// to a greenlet that holds this one is a cycle only a kill can break (C++
// has no cycle collector; README, Lifetimes).
void World::step(int depth) {
  if (all.empty()) {
    if (made < 150) all.push_back(make(depth));
    return;
  }
  auto target = [&]() -> Greenlet& { return all[pick(int(all.size()))]; };
  switch (pick(9)) {
    case 0:
    case 1:
      if (made < 150 && depth < 40) all.push_back(make(depth));
      break;
    case 2:
    case 3:
      check(target().switch_to(encode(pick(1000))));
      break;
    case 4:
      target().switch_to();  // an empty value
      break;
    case 5:
      check(target().throw_in(Boom{pick(10)}));
      break;
    case 6:
      target().set_parent(any());  // a cycle, a dead parent, itself: typed errors
      break;
    case 7:
      all.erase(all.begin() + pick(int(all.size())));  // maybe the last handle
      break;
    case 8:
      if (Greenlet& g = target(); !g.dead() && g != Greenlet::current() && !g.is_main()) g.throw_in();  // a kill
      break;
  }
}

class RandomGreenletOps : public fern::testing::FernTest, public ::testing::WithParamInterface<std::uint32_t> {};

TEST_P(RandomGreenletOps, NoCrashTypedErrorsIntactValuesAndNothingLeftAlive) {
  {
    World w(GetParam());
    w.all.reserve(200);  // never reallocated under a switch in flight (made < 150)
    for (int round = 0; round < 30; ++round) {
      try {
        w.script(10, 0);
      } catch (const Boom&) {
      } catch (const fern::GreenletExit&) {  // a child's kill that fell through to main
      }
    }
    EXPECT_EQ(w.untyped, 0) << w.first_untyped;
    EXPECT_GT(w.made, 50);  // the program did make a forest (about 100 a seed)
    EXPECT_EQ(w.bad_values, 0);
    while (!w.all.empty()) w.all.pop_back();  // each last handle unwinds its greenlet
  }  // the fixture checks that no greenlet or stack is left
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomGreenletOps, ::testing::Range<std::uint32_t>(1, 61));

}  // namespace
