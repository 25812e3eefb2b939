// Seeded random programs over primitives used across threads (EV-9, LK-7,
// sync/remote.h), as a hostile user writes them: 2-4 OS threads, each with
// its own hub and tasks, put on each other's Queues, set Events and
// AsyncResults and release Semaphores through Remote handles, from tasks and
// from plain threads, in bursts, copying and dropping the handles; a thread
// destroys some of its primitives while operations for them are in flight,
// some threads leave (their hub goes) while the others still post, and
// local tasks wait with timeouts and kill each other. Whatever the
// interleaving: an item whose put returned true is received exactly once,
// after the earlier items of its sender, unless its queue was destroyed
// first (then at most once); a post after the hub is gone returns false,
// one to a hub that stays returns true; a semaphore ends at its start plus
// the releases posted; every thread ends, and leaves nothing behind.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "fern/core/task.h"
#include "fern/sync/event.h"
#include "fern/sync/queue.h"
#include "fern/sync/semaphore.h"
#include "hub_fixture.h"
#include "random_program.h"

namespace {

using std::chrono::microseconds;
using Item = std::uint64_t;  // sender << 32 | the sender's sequence number
using ItemQueue = fern::Queue<Item>;

constexpr int kMaxThreads = 4;
constexpr long kPermits = 2;

// One thread's primitives as the others reach them.
struct Board {
  fern::Remote<ItemQueue> queue[2];  // [1]: a spare, destroyed at some point
  fern::Remote<fern::Event> event[2];
  fern::Remote<fern::Semaphore> sem[2];
  fern::Remote<fern::AsyncResult<int>> result;
  fern::Remote<fern::Event> finish;  // set once every sender is done
};

// Shared by all the threads of one seed.
struct Shared {
  std::uint32_t seed = 0;
  int threads = 0;
  bool stays[kMaxThreads] = {};  // keeps its hub until every sender is done
  Board board[kMaxThreads];
  std::atomic<bool> gone[kMaxThreads] = {};
  std::atomic<long> releases[kMaxThreads] = {}, sets[kMaxThreads] = {}, results[kMaxThreads] = {};
  std::atomic<std::uint32_t> next_sender{1};
  std::atomic<int> busy{0};  // threads whose senders are not all done

  std::mutex mutex;  // guards what follows
  std::condition_variable cv;
  int published = 0;
  std::map<Item, int> sent[2 * kMaxThreads], got[2 * kMaxThreads];  // by queue: item -> times
  std::map<std::uint32_t, std::uint32_t> last[2 * kMaxThreads];     // by queue: sender -> seq

  void publish() {
    std::unique_lock<std::mutex> lock(mutex);
    if (++published == threads) cv.notify_all();
    cv.wait(lock, [&] { return published == threads; });
  }
  void record_sent(int queue, Item item) {
    std::lock_guard<std::mutex> lock(mutex);
    ++sent[queue][item];
  }
  void record_got(int queue, Item item) {
    std::lock_guard<std::mutex> lock(mutex);
    auto sender = std::uint32_t(item >> 32), seq = std::uint32_t(item);
    std::uint32_t& before = last[queue][sender];
    EXPECT_LT(before, seq) << "queue " << queue << ": sender " << sender << "'s item " << seq
                           << " after its item " << before;
    before = seq;
    ++got[queue][item];
  }
  // A thread's senders are done: the last one lets the staying threads end.
  void done_sending() {
    if (busy.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    for (int t = 0; t < threads; ++t)
      if (stays[t]) {
        EXPECT_TRUE(board[t].finish.set());
      }
  }
};

// Posts through copies of the board's handles, from a task or a plain thread.
class Sender {
 public:
  Sender(Shared& run, std::uint32_t seed) : run_(run), id_(run.next_sender++), rng_(seed) {}

  void burst(int n) {
    for (int i = 0; i < n; ++i) post_one();
  }

 private:
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  // A post to a hub that is gone is refused; one to a staying hub is not.
  void check(int t, bool was_gone, bool ok) {
    if (was_gone) {
      EXPECT_FALSE(ok) << "a post to thread " << t << " after its hub was gone";
    }
    if (run_.stays[t]) {
      EXPECT_TRUE(ok) << "a post to thread " << t << ", which stays, refused";
    }
  }
  void post_one() {
    int t = pick(run_.threads), spare = pick(4) == 0;
    bool was_gone = run_.gone[t].load(std::memory_order_acquire);
    const Board& b = run_.board[t];
    switch (pick(8)) {
      case 0:
      case 1:
      case 2: {
        int queue = 2 * t + spare;
        fern::Remote<ItemQueue> h = b.queue[spare];
        if (!kept_.empty() && pick(2)) {
          auto& k = kept_[std::size_t(pick(int(kept_.size())))];
          queue = k.first;
          h = k.second;
          t = queue / 2;
          was_gone = run_.gone[t].load(std::memory_order_acquire);
        }
        Item item = Item(id_) << 32 | ++seq_;
        bool ok = h.put(item);
        check(t, was_gone, ok);
        if (ok) run_.record_sent(queue, item);
        if (pick(3) == 0) kept_.emplace_back(queue, h);
        break;
      }
      case 3: {
        bool ok = b.event[spare].set();
        check(t, was_gone, ok);
        if (ok && !spare) ++run_.sets[t];
        break;
      }
      case 4: {
        bool ok = b.sem[spare].release();
        check(t, was_gone, ok);
        if (ok && !spare) ++run_.releases[t];
        break;
      }
      case 5: {
        bool ok = pick(4) ? b.result.set(int(id_))
                          : b.result.set_exception(std::make_exception_ptr(std::runtime_error("posted")));
        check(t, was_gone, ok);
        if (ok) ++run_.results[t];
        break;
      }
      default:
        if (!kept_.empty()) kept_.erase(kept_.begin() + pick(int(kept_.size())));  // the handle drops
        break;
    }
  }

  Shared& run_;
  std::uint32_t id_;
  std::uint32_t seq_ = 0;
  std::mt19937 rng_;
  std::vector<std::pair<int, fern::Remote<ItemQueue>>> kept_;
};

// One thread's hub, primitives and tasks (on that thread).
struct Home {
  Home(Shared& run, int me) : run(run), me(me), rng(run.seed * 7919u + std::uint32_t(me)) {}

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }
  microseconds short_wait() { return microseconds(pick(4) == 0 ? 0 : pick(300)); }

  Shared& run;
  int me;
  std::mt19937 rng;
  ItemQueue queue{std::size_t(pick(3))};  // 0: unbounded
  std::optional<ItemQueue> spare_queue{std::in_place, std::size_t(1 + pick(2))};
  fern::Event event;
  std::optional<fern::Event> spare_event{std::in_place};
  fern::Semaphore sem{kPermits};
  std::optional<fern::Semaphore> spare_sem{std::in_place, 0};
  fern::AsyncResult<int> result;
  fern::Event finish;
  std::vector<fern::AnyTask> tasks;
  std::vector<std::thread> plain;
  int spawned = 0;

  void publish() {
    Board& b = run.board[me];
    b.queue[0] = queue.remote();
    b.queue[1] = spare_queue->remote();
    b.event[0] = event.remote();
    b.event[1] = spare_event->remote();
    b.sem[0] = sem.remote();
    b.sem[1] = spare_sem->remote();
    b.result = result.remote();
    if (run.stays[me]) b.finish = finish.remote();
    run.publish();
  }
  void spawn_worker(int steps) {
    ++spawned;
    std::uint32_t seed = rng();
    tasks.push_back(fern::spawn([this, steps, seed] {
                      Sender sender(run, seed);
                      for (int i = 0; i < steps; ++i) step(sender);
                    }).core());
  }
  void step(Sender& sender);
  // Receives what is left once every sender is done: the items posted are
  // in the queue, or with the tasks the handle spawned to wait for room.
  void drain() {
    for (;;) {
      while (auto item = queue.try_get()) run.record_got(2 * me, *item);
      if (queue.putter_count() == 0) break;
      fern::sleep(0);
    }
  }
};

void Home::step(Sender& sender) {
  switch (pick(12)) {
    case 0:  // a yield, or a short sleep
      fern::sleep(pick(2) ? short_wait() : microseconds(0));
      break;
    case 1:
    case 2:
      sender.burst(1 + pick(4));
      break;
    case 3:
      if (auto item = queue.get_for(short_wait())) run.record_got(2 * me, *item);
      break;
    case 4:
      if (spare_queue)
        if (auto item = spare_queue->try_get()) run.record_got(2 * me + 1, *item);
      break;
    case 5:
      event.wait_for(short_wait());
      break;
    case 6:
      result.wait_for(short_wait());
      break;
    case 7:
      if (sem.acquire_for(short_wait())) {
        struct Release {
          fern::Semaphore& sem;
          ~Release() { sem.release(); }
        } release{sem};
        if (pick(2)) fern::sleep(short_wait());  // killed here: the release still runs
      }
      break;
    case 8:
      if (!tasks.empty()) tasks[std::size_t(pick(int(tasks.size())))]->kill_async();
      break;
    case 9:
      if (spawned < 30) spawn_worker(pick(15));
      break;
    case 10:
      if (plain.size() < 2) {
        std::uint32_t seed = rng();
        int n = 10 + pick(40);
        plain.emplace_back([this, seed, n] { Sender(run, seed).burst(n); });
      }
      break;
    case 11:  // a spare goes while posts for it are in flight
      switch (pick(3)) {
        case 0:
          spare_queue.reset();
          break;
        case 1:
          spare_event.reset();
          break;
        default:
          spare_sem.reset();
          break;
      }
      break;
  }
}

// One thread's part: its program, then (when it stays) the end of every
// sender and the checks of what its primitives received.
void play(Home& home) {
  Shared& run = home.run;
  int me = home.me;
  home.publish();
  int workers = 2 + home.pick(4);
  for (int i = 0; i < workers; ++i) home.spawn_worker(8 + home.pick(16));
  fern::testing::run_until_all_ended(home.tasks, microseconds(200), 50);
  for (const auto& t : home.tasks) EXPECT_TRUE(t->dead());
  home.tasks.clear();
  for (auto& p : home.plain) p.join();
  run.done_sending();
  if (!run.stays[me]) return;
  home.finish.wait();
  home.drain();
  EXPECT_EQ(home.sem.counter(), kPermits + run.releases[me].load()) << "thread " << me;
  EXPECT_EQ(home.event.is_set(), run.sets[me].load() > 0) << "thread " << me;
  EXPECT_EQ(home.result.ready(), run.results[me].load() > 0) << "thread " << me;
}

// Plays one thread's part; once its primitives are gone, nothing of theirs
// is left parked in its hub.
void live(Shared& run, int me) {
  fern::sleep(0);  // the hub's loop has started
  std::size_t greenlets = fern::Greenlet::live_count();
  {
    Home home(run, me);
    play(home);
  }
  fern::Hub::current().run_until_idle();
  EXPECT_EQ(fern::Greenlet::live_count(), greenlets) << "thread " << me << ": greenlets left parked";
}

// A thread other than the test's: its own hub, checked as the fixture checks.
void live_on_own_thread(Shared& run, int me) {
  (void)fern::Greenlet::current();
  std::size_t greenlets = fern::Greenlet::live_count();
  fern::Hub& hub = fern::Hub::current();
  std::size_t fds = hub.watched_fds();
  live(run, me);
  hub.run_until_idle();
  EXPECT_EQ(hub.armed_timers(), 0u) << "thread " << me << ": timers leaked";
  EXPECT_EQ(hub.queued_callbacks(), 0u) << "thread " << me << ": callbacks left queued";
  EXPECT_EQ(hub.watched_fds(), fds) << "thread " << me << ": fd watchers leaked";
  fern::Hub::destroy_current();
  run.gone[me].store(true, std::memory_order_release);
  EXPECT_EQ(fern::Greenlet::live_count(), greenlets) << "thread " << me << ": greenlets leaked";
}

class RandomCrossThreadSeeds : public fern::testing::HubTest, public ::testing::WithParamInterface<std::uint32_t> {};

TEST_P(RandomCrossThreadSeeds, PromisesHoldAcrossThreads) {
  Shared run;
  run.seed = GetParam();
  std::mt19937 rng(run.seed);
  run.threads = 2 + std::uniform_int_distribution<int>(0, kMaxThreads - 2)(rng);
  run.stays[0] = true;  // the test's thread
  for (int t = 1; t < run.threads; ++t) run.stays[t] = rng() % 2;
  run.busy = run.threads;
  std::vector<std::thread> threads;
  for (int t = 1; t < run.threads; ++t) threads.emplace_back([&run, t] { live_on_own_thread(run, t); });
  live(run, 0);
  for (auto& t : threads) t.join();

  for (int q = 0; q < 2 * run.threads; ++q) {
    for (const auto& [item, n] : run.got[q]) {
      EXPECT_EQ(n, 1) << "queue " << q << ": item " << item << " received " << n << " times";
      EXPECT_EQ(run.sent[q].count(item), 1u) << "queue " << q << ": item " << item << " received, not sent";
    }
    for (const auto& [item, n] : run.sent[q]) EXPECT_EQ(n, 1) << "queue " << q << ": item " << item;
    // A staying thread's main queue lives until every sender is done.
    if (q % 2 == 0 && run.stays[q / 2]) {
      EXPECT_EQ(run.got[q].size(), run.sent[q].size()) << "queue " << q << ": items lost";
    }
  }
  for (Board& b : run.board) b = Board();  // posts nothing to the hubs gone
}

INSTANTIATE_TEST_SUITE_P(RandomCrossThread, RandomCrossThreadSeeds, ::testing::Range<std::uint32_t>(1, 21));

}  // namespace
