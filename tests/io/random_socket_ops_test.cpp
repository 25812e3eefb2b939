// Seeded random programs over connected socket pairs, as a hostile user
// writes them: tasks send and receive chunks of random sizes in both
// directions under random socket timeouts, two of them at once in one
// direction (IO-2), while others kill them, shut a direction down or close
// a socket under a blocked call (IO-3). Whatever the interleaving: every
// error is one of the typed ones (SocketTimeout, BrokenPipeError, the
// SocketError of a closed socket, FdClosedError for a close under the call,
// ConcurrentObjectUseError), each direction
// delivers exactly the bytes its successful sends reported, in order, with
// nothing lost or doubled (a killed or timed-out call moves no bytes), and
// no task, fd or watcher is left behind (the fixture's checks).
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "fern/core/exceptions.h"
#include "fern/core/task.h"
#include "fern/io/socket.h"
#include "io_fixture.h"
#include "random_program.h"

namespace {

using std::chrono::microseconds;
using RandomSocketOps = fern::testing::IoTest;

constexpr int kPairs = 3;

struct Stream {
  std::string sent, received;
  bool eof = false;  // a recv returned nothing: the writer's side is shut or closed
};

struct World {
  explicit World(std::uint32_t seed) : rng(seed) {
    for (auto& p : socks) {
      auto [a, b] = fern::Socket::pair();
      p[0] = std::move(a);
      p[1] = std::move(b);
    }
  }

  std::mt19937 rng;
  std::array<std::array<fern::Socket, 2>, kPairs> socks;
  std::array<std::array<Stream, 2>, kPairs> streams;  // [pair][writer side]
  std::array<std::array<bool, 2>, kPairs> write_shut{};
  std::vector<fern::AnyTask> tasks;
  unsigned next_byte = 0;
  int unexpected = 0;
  std::string first_unexpected;

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }
  std::string chunk() {
    std::string s(pick(4) == 0 ? 1 + pick(200000) : 1 + pick(3000), '\0');
    for (char& c : s) c = static_cast<char>(next_byte++ * 7 + 3);
    return s;
  }

  void step(const fern::AnyTask& self);
  void spawn_worker(int steps) {
    tasks.push_back(fern::spawn([this, steps] {
      fern::AnyTask self = fern::current_task();
      for (int i = 0; i < steps; ++i) {
        try {
          step(self);
        } catch (const fern::SocketError&) {  // timeouts, a broken pipe, a closed socket
        } catch (const fern::ConcurrentObjectUseError&) {
        }
      }
    }).core());
  }
};

void World::step(const fern::AnyTask& self) {
  int pair = pick(kPairs), side = pick(2);
  fern::Socket& s = socks[pair][side];
  switch (pick(12)) {
    case 0:
    case 1:
    case 2: {
      std::string data = chunk();
      std::size_t n = s.send(data);  // throws, having sent nothing, or sent n
      if (write_shut[pair][side]) ++unexpected, first_unexpected = "a send after SHUT_WR succeeded";
      streams[pair][side].sent.append(data, 0, n);
      break;
    }
    case 3:
    case 4:
    case 5: {
      std::string got = pick(2) ? s.recv(1 + pick(300000)) : [&] {
        std::string buf(1 + pick(5000), '\0');
        buf.resize(s.recv_into(buf.data(), buf.size()));
        return buf;
      }();
      Stream& in = streams[pair][1 - side];
      if (got.empty()) in.eof = true;
      else if (in.eof) ++unexpected, first_unexpected = "bytes after the end of the stream";
      in.received += got;
      break;
    }
    case 6:
      s.set_timeout(pick(3) == 0 ? std::nullopt : std::optional<fern::Duration>(microseconds(pick(500))));
      break;
    case 7:
      fern::sleep(pick(2) ? fern::Duration(0) : fern::Duration(microseconds(pick(300))));
      break;
    case 8:
      if (auto& t = tasks[pick(int(tasks.size()))]; t != self) t->kill_async();
      break;
    case 9:
      if (pick(6) == 0 && s) {
        s.shutdown(SHUT_WR);
        write_shut[pair][side] = true;
      }
      break;
    case 10:
      if (pick(10) == 0) s.close();  // a blocked call on it ends with an error (IO-3)
      break;
    case 11:
      if (tasks.size() < 60) spawn_worker(pick(20));
      break;
  }
}

class RandomSocketOpsSeeds : public RandomSocketOps, public ::testing::WithParamInterface<std::uint32_t> {};

TEST_P(RandomSocketOpsSeeds, EveryDirectionDeliversExactlyWhatItsSendsReported) {
  World w(GetParam());
  for (int i = 0; i < 10; ++i) w.spawn_worker(15 + w.pick(25));
  fern::testing::run_until_all_ended(w.tasks, microseconds(300));
  for (const auto& t : w.tasks) {
    ASSERT_TRUE(t->dead());
    if (auto e = t->exception()) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        ADD_FAILURE() << "a task failed with an untyped error: " << x.what();
      } catch (...) {
      }
    }
  }
  EXPECT_EQ(w.unexpected, 0) << w.first_unexpected;
  // What is still in flight is read now, where the reading side is open.
  for (int pair = 0; pair < kPairs; ++pair) {
    for (int writer = 0; writer < 2; ++writer) {
      Stream& st = w.streams[pair][writer];
      fern::Socket& reader = w.socks[pair][1 - writer];
      if (reader) {
        reader.set_timeout(fern::Duration(0));
        try {
          for (std::string got; !(got = reader.recv(1 << 20)).empty();) st.received += got;
        } catch (const fern::SocketTimeout&) {  // drained, the writer's side still open
        } catch (const fern::SocketError&) {  // the writer closed with our unread data: reset
        }
        if (w.socks[pair][writer]) EXPECT_EQ(st.received.size(), st.sent.size()) << "pair " << pair << " lost bytes";
      }
      ASSERT_LE(st.received.size(), st.sent.size()) << "pair " << pair << " received more than was sent";
      EXPECT_TRUE(st.received == st.sent.substr(0, st.received.size()))
          << "pair " << pair << " writer " << writer << ": bytes out of order or changed";
    }
  }
  w.tasks.clear();
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomSocketOpsSeeds, ::testing::Range<std::uint32_t>(1, 31));

}  // namespace
