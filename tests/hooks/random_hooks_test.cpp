// Seeded random programs over the hooked libc calls, as a hostile user
// writes them: tasks call plain read/readv/recv and write/writev/send on
// blocking AF_UNIX pairs and loopback TCP connections (connect and accept
// on one listener), read and write an application-non-blocking pipe, poll
// and select random fd sets with random timeouts, nanosleep and usleep,
// while others kill them, wrap their calls in Timeouts, set SO_RCVTIMEO /
// SO_SNDTIMEO, shut a direction down or close an fd out from under a parked
// call. Whatever the interleaving: every call's error is one libc could
// give it (EBADF, EPIPE with SIGPIPE ignored, ECONNRESET, EAGAIN past a
// socket timeout, ...), every exception is fern's for a kill, a Timeout or
// a second waiter (ConcurrentObjectUseError), each direction delivers
// exactly the bytes its successful writes reported, in order (a write a
// kill or Timeout ends may have sent a prefix of its bytes: the hook sends
// a blocking write in parts), and no task, fd, timer or watcher is left
// behind (the fixture's checks).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fern/core/exceptions.h"
#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "hooks/hooks_fixture.h"
#include "random_program.h"

namespace {

using std::chrono::microseconds;
using RandomHooks = fern::testing::HooksTest;

constexpr long kThrew = -2;  // a write a kill or Timeout ended: it sent some prefix of its bytes
enum Kind { kUnix, kTcp, kPipe };
enum SideState { kPending, kOpen, kClosed };  // kPending: the TCP end not connected or accepted yet

struct Write {
  std::string data;
  long n = kThrew;  // the count it reported (0 for -1)
};

// One direction: its writes in order (one writer at a time) and what its
// reader got.
struct Direction {
  std::vector<Write> writes;
  std::string received;
  bool eof = false;
  bool writing = false;
};

struct Conn {
  Kind kind;
  int port = 0;  // TCP: the connecting side's port, which pairs it with its accepted end
  std::array<int, 2> fd{-1, -1};  // pipe: [0] reads, [1] writes
  std::array<SideState, 2> state{kClosed, kClosed};
  std::array<Direction, 2> dir;  // dir[w]: written by side w
  std::array<bool, 2> write_shut{};
};

// Byte j of the i-th write of a direction: its top bit alternates from one
// write to the next, so a prefix sent by a write that threw ends where the
// next write's bytes begin.
std::string payload(std::size_t i, std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t j = 0; j < size; ++j) s[j] = static_cast<char>(((i & 1) << 7) | ((j * 7 + (j >> 7) * 3 + i) & 0x7f));
  return s;
}

// Whether `d.received` is what its writes can have delivered; `all` when
// every reported byte came. Empty when it is, else what is wrong.
std::string check(const Direction& d, bool& all) {
  std::size_t at = 0;
  all = true;
  for (const Write& w : d.writes) {
    if (w.n == kThrew) {
      std::size_t m = 0;
      while (at + m < d.received.size() && m < w.data.size() && d.received[at + m] == w.data[m]) ++m;
      at += m;
      continue;
    }
    std::size_t n = static_cast<std::size_t>(w.n);
    std::size_t have = std::min(n, d.received.size() - at);
    if (d.received.compare(at, have, w.data, 0, have) != 0) return "bytes changed or out of order at " + std::to_string(at);
    at += have;
    if (have < n) all = false;
  }
  if (at != d.received.size()) return "bytes nobody wrote at " + std::to_string(at);
  return {};
}

int local_port(int fd) {
  sockaddr_in me{};
  socklen_t len = sizeof me;
  return ::getsockname(fd, reinterpret_cast<sockaddr*>(&me), &len) == 0 ? ntohs(me.sin_port) : 0;
}

struct World {
  explicit World(std::uint32_t seed) : rng(seed), listener(16) {
    for (int i = 0; i < 2; ++i) {
      fern::testing::SocketPair p;
      add(kUnix, p.fd[0], p.fd[1]);
      p.fd[0] = p.fd[1] = -1;
    }
    int p[2];
    if (::pipe2(p, O_NONBLOCK) == 0) add(kPipe, p[0], p[1]);
  }
  ~World() {
    for (Conn& c : conns)
      for (int s = 0; s < 2; ++s)
        if (c.state[s] == kOpen) ::close(c.fd[s]);
  }

  std::mt19937 rng;
  fern::testing::LoopbackSocket listener;
  std::deque<Conn> conns;  // a deque: a parked call's references stay valid as it grows
  std::vector<fern::AnyTask> tasks;
  std::set<int> abandoned_ports;  // connects that ended without their socket
  int queued = 0;                 // connects begun less accepts: kept under the backlog
  int connects = 0;
  int unexpected = 0;
  std::string first_unexpected;

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }
  Conn& add(Kind kind, int a, int b) {
    Conn& c = conns.emplace_back();
    c.kind = kind;
    c.fd = {a, b};
    c.state = {a >= 0 ? kOpen : kPending, b >= 0 ? kOpen : kPending};
    return c;
  }
  int fd_of(const Conn& c, int side) const { return c.state[side] == kOpen ? c.fd[side] : -1; }
  void fail(const std::string& what, int err) {
    if (unexpected++ == 0) first_unexpected = what + ": errno " + std::to_string(err) + " (" + std::strerror(err) + ")";
  }
  void expect_errno(const char* what, long r, int err, std::initializer_list<int> allowed) {
    if (r < 0 && std::find(allowed.begin(), allowed.end(), err) == allowed.end()) fail(what, err);
  }

  void step(const fern::AnyTask& self, int op);
  void write_op(int ci, int side);
  void read_op(int ci, int side);
  void poll_op();
  void connect_op();
  void accept_op();
  void close_op();
  void spawn_worker(int steps) {
    tasks.push_back(fern::spawn([this, steps] {
      fern::AnyTask self = fern::current_task();
      for (int i = 0; i < steps; ++i) {
        try {
          step(self, pick(15));
        } catch (const fern::Timeout&) {
        } catch (const fern::ConcurrentObjectUseError&) {  // a second waiter on a socket's direction
        }
      }
    }).core());
  }
};

void World::write_op(int ci, int side) {
  Conn& c = conns[ci];
  if (c.kind == kPipe) side = 1;
  Direction& d = c.dir[side];
  if (d.writing) return;  // one writer per direction: two would interleave their parts
  int fd = fd_of(c, side);
  bool shut_before = c.write_shut[side];
  std::size_t size = pick(4) == 0 ? 1 + pick(300000) : 1 + pick(3000);
  d.writes.push_back(Write{payload(d.writes.size(), size)});
  std::size_t index = d.writes.size() - 1;
  struct Busy {
    bool& flag;
    ~Busy() { flag = false; }
  } busy{d.writing};
  d.writing = true;
  const std::string& data = d.writes[index].data;
  int how = c.kind == kPipe ? 0 : pick(3);
  errno = 0;
  long r;
  if (how == 0) {
    r = ::write(fd, data.data(), data.size());
  } else if (how == 1) {
    std::size_t cut = pick(int(size) + 1);
    iovec iov[2] = {{const_cast<char*>(data.data()), cut}, {const_cast<char*>(data.data()) + cut, size - cut}};
    r = ::writev(fd, iov, 2);
  } else {
    r = ::send(fd, data.data(), data.size(), pick(8) == 0 ? MSG_DONTWAIT : 0);
  }
  int err = errno;
  d.writes[index].n = r < 0 ? 0 : r;
  if (r > 0 && shut_before) fail("a write after SHUT_WR succeeded", 0);
  if (c.kind == kPipe) expect_errno("pipe write", r, err, {EAGAIN, EPIPE, EBADF});
  else expect_errno("socket write", r, err, {EBADF, EPIPE, ECONNRESET, EAGAIN});
}

void World::read_op(int ci, int side) {
  Conn& c = conns[ci];
  if (c.kind == kPipe) side = 0;
  Direction& d = c.dir[1 - side];
  int fd = fd_of(c, side);
  std::string buf(1 + (pick(4) == 0 ? pick(300000) : pick(5000)), '\0');
  int how = c.kind == kPipe ? 0 : pick(3);
  errno = 0;
  long r;
  if (how == 0) {
    r = ::read(fd, buf.data(), buf.size());
  } else if (how == 1) {
    std::size_t cut = pick(int(buf.size()) + 1);
    iovec iov[2] = {{buf.data(), cut}, {buf.data() + cut, buf.size() - cut}};
    r = ::readv(fd, iov, 2);
  } else {
    r = ::recv(fd, buf.data(), buf.size(), pick(8) == 0 ? MSG_DONTWAIT : 0);
  }
  int err = errno;
  if (c.kind == kPipe) expect_errno("pipe read", r, err, {EAGAIN, EBADF});
  else expect_errno("socket read", r, err, {EBADF, ECONNRESET, EAGAIN});
  if (r < 0) return;
  if (r == 0) d.eof = true;
  else if (d.eof) fail("bytes after the end of the stream", 0);
  d.received.append(buf, 0, static_cast<std::size_t>(r));
}

// poll or select on a random set of the open fds, with a random timeout.
void World::poll_op() {
  std::vector<pollfd> fds;
  for (std::size_t i = 0, n = 1 + pick(4); i < n; ++i) {
    Conn& c = conns[pick(int(conns.size()))];
    int side = pick(2);
    short events = pick(3) == 0 ? POLLOUT : pick(2) ? POLLIN : POLLIN | POLLOUT;
    fds.push_back(pollfd{pick(6) == 0 ? listener.fd : fd_of(c, side), events, 0});
  }
  int timeout_ms = pick(10) == 0 ? -1 : pick(3);
  if (pick(2)) {
    errno = 0;
    int r = ::poll(fds.data(), fds.size(), timeout_ms);
    int err = errno;
    if (r < 0) return fail("poll", err);
    int ready = 0;
    for (const pollfd& p : fds) {
      ready += p.revents != 0;
      if (p.revents & ~(p.events | POLLERR | POLLHUP | POLLNVAL)) fail("poll: revents not asked for", 0);
    }
    if (ready != r) fail("poll: count differs from revents", 0);
    return;
  }
  fd_set rs, ws;
  FD_ZERO(&rs);
  FD_ZERO(&ws);
  int nfds = 0;
  for (const pollfd& p : fds) {
    if (p.fd < 0) continue;
    if (p.events & POLLIN) FD_SET(p.fd, &rs);
    if (p.events & POLLOUT) FD_SET(p.fd, &ws);
    nfds = std::max(nfds, p.fd + 1);
  }
  fd_set asked_r = rs, asked_w = ws;
  timeval tv{0, timeout_ms * 1000};
  errno = 0;
  int r = ::select(nfds, &rs, &ws, nullptr, timeout_ms < 0 ? nullptr : &tv);
  int err = errno;
  expect_errno("select", r, err, {EBADF});  // an fd closed under the call
  if (r < 0) return;
  int ready = 0;
  for (int fd = 0; fd < nfds; ++fd) {
    ready += FD_ISSET(fd, &rs) + FD_ISSET(fd, &ws);
    if ((FD_ISSET(fd, &rs) && !FD_ISSET(fd, &asked_r)) || (FD_ISSET(fd, &ws) && !FD_ISSET(fd, &asked_w)))
      fail("select: an fd not asked for", 0);
  }
  if (ready != r) fail("select: count differs from the sets", 0);
}

// A TCP connect to the listener; the connection's pair is made by whichever
// of connect and accept returns second.
void World::connect_op() {
  if (queued >= 8 || connects >= 20 || conns.size() >= 20) return;
  ++queued, ++connects;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return fail("socket", errno);
  // Closes the socket unless it joined a connection; one that may have
  // reached the listener's queue (killed, timed out) is remembered, so that
  // its accepted end is paired with a closed one.
  struct Guard {
    World& w;
    int fd;
    bool maybe_queued = true;
    ~Guard() {
      if (fd < 0) return;
      if (int port = local_port(fd); maybe_queued && port) w.abandoned_ports.insert(port);
      ::close(fd);
    }
  } guard{*this, fd};
  if (pick(4) == 0) {
    timeval tv{0, pick(500)};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  sockaddr_in addr = listener.addr;
  errno = 0;
  int r = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  expect_errno("connect", r, err, {ECONNREFUSED, ECONNRESET, EINPROGRESS});
  if (r < 0) {
    guard.maybe_queued = err == EINPROGRESS;
    return;
  }
  int port = local_port(fd);
  for (Conn& c : conns) {
    if (c.kind == kTcp && c.port == port && c.state[0] == kPending) {
      c.fd[0] = fd, c.state[0] = kOpen;
      guard.fd = -1;
      return;
    }
  }
  add(kTcp, fd, -1).port = port;
  guard.fd = -1;
}

void World::accept_op() {
  if (conns.size() >= 22) return;
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  errno = 0;
  int fd = ::accept(listener.fd, reinterpret_cast<sockaddr*>(&peer), &len);
  int err = errno;
  expect_errno("accept", fd, err, {EBADF, EAGAIN, ECONNABORTED});
  if (fd < 0) return;
  --queued;
  int port = ntohs(peer.sin_port);
  for (Conn& c : conns) {
    if (c.kind == kTcp && c.port == port && c.state[1] == kPending) {
      c.fd[1] = fd, c.state[1] = kOpen;
      return;
    }
  }
  Conn& c = add(kTcp, -1, fd);
  c.port = port;
  if (abandoned_ports.erase(port)) c.state[0] = kClosed;
}

void World::close_op() {
  if (pick(8) == 0) {
    if (pick(4) == 0) listener.close();  // an accept parked on it ends with EBADF
    return;
  }
  Conn& c = conns[pick(int(conns.size()))];
  int side = pick(2);
  if (c.state[side] != kOpen) return;
  c.state[side] = kClosed;
  ::close(c.fd[side]);  // a call parked on it ends with EBADF
}

void World::step(const fern::AnyTask& self, int op) {
  int ci = pick(int(conns.size())), side = pick(2);
  Conn& c = conns[ci];
  switch (op) {
    case 0:
    case 1:
    case 2:
      return write_op(ci, side);
    case 3:
    case 4:
    case 5:
      return read_op(ci, side);
    case 6:
      return poll_op();
    case 7:
      if (pick(2)) {
        timespec ts{0, pick(300000)};
        if (::nanosleep(&ts, nullptr) != 0) fail("nanosleep", errno);
      } else if (::usleep(static_cast<useconds_t>(pick(300))) != 0) {
        fail("usleep", errno);
      }
      return;
    case 8:
      if (auto& t = tasks[pick(int(tasks.size()))]; t != self) t->kill_async();
      return;
    case 9: {
      fern::TimeoutScope scope(fern::Duration(microseconds(pick(500))));
      return step(self, pick(8));
    }
    case 10:
      if (c.kind != kPipe && c.state[side] == kOpen) {
        if (pick(6) == 0) {
          ::shutdown(c.fd[side], SHUT_WR);
          c.write_shut[side] = true;
        } else {
          timeval tv{0, pick(3) == 0 ? 0 : pick(500)};
          ::setsockopt(c.fd[side], SOL_SOCKET, pick(2) ? SO_RCVTIMEO : SO_SNDTIMEO, &tv, sizeof tv);
        }
      }
      return;
    case 11:
      if (pick(4) == 0) close_op();
      return;
    case 12:
      return connect_op();
    case 13:
      return accept_op();
    case 14:
      if (tasks.size() < 60) spawn_worker(pick(20));
      return;
  }
}

// What is still in flight, read now: the writer's side is shut (when still
// open) and the reader reads to the end of the stream, under a guard against
// a hang.
void drain(Conn& c, int writer) {
  int reader = c.kind == kPipe ? 0 : 1 - writer;
  if (c.state[reader] != kOpen) return;
  if (c.kind != kPipe) {
    if (c.state[writer] == kOpen) ::shutdown(c.fd[writer], SHUT_WR);
    timeval none{0, 0};
    ::setsockopt(c.fd[reader], SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  }
  Direction& d = c.dir[writer];
  fern::TimeoutScope guard(5.0);
  std::string buf(1 << 20, '\0');
  for (long r; (r = ::read(c.fd[reader], buf.data(), buf.size())) > 0;) d.received.append(buf, 0, r);
}

class RandomHooksSeeds : public RandomHooks, public ::testing::WithParamInterface<std::uint32_t> {};

TEST_P(RandomHooksSeeds, EveryCallEndsAsLibcsCouldAndEveryDirectionDeliversWhatItsWritesReported) {
  struct sigaction ignore{}, old{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  {
    World w(GetParam());
    for (int i = 0; i < 10; ++i) w.spawn_worker(20 + w.pick(40));
    fern::testing::run_until_all_ended(w.tasks, microseconds(300));
    for (const auto& t : w.tasks) {
      ASSERT_TRUE(t->dead());
      if (auto e = t->exception(); e && !fern::is_greenlet_exit(e)) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          ADD_FAILURE() << "a task failed with an untyped error: " << x.what();
        } catch (...) {
          ADD_FAILURE() << "a task failed with an untyped error";
        }
      }
    }
    w.tasks.clear();
    EXPECT_EQ(w.unexpected, 0) << w.first_unexpected;
    w.listener.close();  // connections it never accepted are reset: their reads end
    for (std::size_t ci = 0; ci < w.conns.size(); ++ci) {
      Conn& c = w.conns[ci];
      for (int writer = c.kind == kPipe ? 1 : 0; writer < 2; ++writer) {
        bool writer_open = c.state[writer] == kOpen, reader_open = c.state[c.kind == kPipe ? 0 : 1 - writer] == kOpen;
        drain(c, writer);
        bool all = false;
        std::string wrong = check(c.dir[writer], all);
        EXPECT_EQ(wrong, "") << "conn " << ci << " writer " << writer;
        if (writer_open && reader_open) EXPECT_TRUE(all) << "conn " << ci << " writer " << writer << " lost bytes";
      }
    }
  }
  ::sigaction(SIGPIPE, &old, nullptr);
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomHooksSeeds, ::testing::Range<std::uint32_t>(1, 31));

}  // namespace
