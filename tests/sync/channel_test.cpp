// Channel: SEMANTICS, TO-10 (probes Q2, Q3; test__queue TestChannel).
#include "fern/sync/channel.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "hub_fixture.h"

namespace {

using fern::sleep;
using fern::spawn;
using Vec = std::vector<std::string>;
using Channels = fern::testing::HubTest;

// Q-9 (TestChannel::test_send)
TEST_F(Channels, PutReturnsOnlyAfterAGetterTookTheItemAndRan) {
  fern::Channel<std::string> channel;
  auto other = spawn([&] {
    log.push_back(channel.get());
    log.push_back(channel.get());
  });
  log.push_back("sending");
  channel.put("hello");
  log.push_back("sent hello");
  channel.put("world");
  log.push_back("sent world");
  EXPECT_EQ(log, (Vec{"sending", "hello", "sent hello", "world", "sent world"}));
  other.join();
}

// Q-9 (probe Q3): the getter runs with the item before put returns.
TEST_F(Channels, ParkedGetterRunsBeforeThePutterResumes) {
  fern::Channel<std::string> ch;
  auto getter = spawn([&] { log.push_back("got " + ch.get()); });
  log.push_back("putting");
  ch.put("hello");
  log.push_back("put returned");
  EXPECT_EQ(log, (Vec{"putting", "got hello", "put returned"}));
  getter.join();
}

// Q-9 (probe Q2)
TEST_F(Channels, HasNoBufferAndReportsBalance) {
  fern::Channel<int> ch;
  EXPECT_TRUE(ch.empty());
  EXPECT_TRUE(ch.full());
  EXPECT_EQ(ch.qsize(), 0u);
  EXPECT_EQ(ch.balance(), 0);
  EXPECT_THROW(ch.put_nowait(1), fern::QueueFull);
  EXPECT_THROW(ch.get_nowait(), fern::QueueEmpty);
  auto a = spawn([&] { return ch.get(); });
  auto b = spawn([&] { return ch.get(); });
  sleep(0);
  EXPECT_EQ(ch.balance(), -2);
  ch.put_nowait(1);  // a getter is parked: it takes the item
  ch.put(2);
  EXPECT_EQ(a.get(), 1);
  EXPECT_EQ(b.get(), 2);
  auto putter = spawn([&] { ch.put(3); });
  sleep(0);
  EXPECT_EQ(ch.balance(), 1);
  EXPECT_EQ(ch.get_nowait(), 3);
  putter.join();
}

// Q-2 for channels, TO-10: a timed-out side is gone, nothing is lost.
TEST_F(Channels, TimeoutsThrowQueueEmptyAndQueueFullAndLoseNothing) {
  fern::Channel<int> ch;
  EXPECT_EQ(ch.get_for(0.01), std::nullopt);
  EXPECT_FALSE(ch.put_for(1, 0.01));
  EXPECT_EQ(ch.balance(), 0);
  EXPECT_EQ(ch.get_for(0.01), std::nullopt);
  auto putter = spawn([&] { ch.put(2); });
  EXPECT_EQ(ch.get_for(1.0), 2);
  putter.join();
}

// Q-7 for channels: in a loop callback, a blocking get() without a parked
// putter throws QueueEmpty and a put() without a parked getter QueueFull,
// instead of returning nothing or dropping the item.
TEST_F(Channels, BlockingGetAndPutInALoopCallbackWithoutAPartnerThrow) {
  fern::Channel<std::string> ch;
  fern::Hub::current().run_callback([&] {
    try {
      log.push_back("got " + ch.get());
    } catch (const fern::QueueEmpty&) {
      log.push_back("get empty");
    }
    try {
      ch.put("lost?");
      log.push_back("put returned");
    } catch (const fern::QueueFull&) {
      log.push_back("put full");
    }
  });
  sleep(0);
  EXPECT_EQ(log, (Vec{"get empty", "put full"}));
  EXPECT_EQ(ch.balance(), 0);
}

// Q-10 (TestChannel::test_iterable)
TEST_F(Channels, IterationStopsAtTheStopItem) {
  fern::Channel<std::optional<int>> ch;
  auto producer = spawn([&] {
    for (int i = 0; i < 3; ++i) ch.put(i);
    ch.put(std::nullopt);
  });
  std::vector<int> got;
  for (int x : ch) got.push_back(x);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
  producer.join();
}

// A getter that destroys the channel right after taking the item: the
// putter, paired and parked, still returns from put().
TEST_F(Channels, PutterReturnsWhenTheGetterDestroysTheChannel) {
  auto channel = std::make_unique<fern::Channel<int>>();
  auto getter = spawn([&] {
    int v = channel->get();
    channel.reset();
    return v;
  });
  auto putter = spawn([&] {
    fern::Channel<int>* ch = channel.get();
    ch->put(5);
    log.push_back("put returned");
  });
  EXPECT_EQ(getter.get(), 5);
  putter.join();
  EXPECT_EQ(log, Vec{"put returned"});
}

// A getter that kills its paired putter before the putter's wake: the
// pairing is dropped with the putter's frame, nothing dangles.
TEST_F(Channels, GetterKillingItsPairedPutterLeavesNothingBehind) {
  fern::Channel<int> channel;
  fern::Task<void> putter;
  auto getter = spawn([&] {
    int v = channel.get();
    putter.kill();
    return v;
  });
  putter = spawn([&] { channel.put(9); });
  EXPECT_EQ(getter.get(), 9);
  EXPECT_TRUE(putter.dead());
  EXPECT_EQ(channel.balance(), 0);
  auto again = spawn([&] { return channel.get(); });
  channel.put(10);
  EXPECT_EQ(again.get(), 10);
}

}  // namespace
