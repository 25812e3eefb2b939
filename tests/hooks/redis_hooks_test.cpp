// hiredis's synchronous API, unmodified, against a real redis-server: with
// the hooks, its blocking calls park one greenlet each, so many
// connections wait on one thread at once.
#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fern/core/task.h"
#include "hooks/hooks_fixture.h"
#include "hooks/redis_server.h"

namespace {

using fern::spawn;
using fern::testing::seconds_since;

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;
using Reply = std::unique_ptr<redisReply, ReplyFree>;

class RedisHooks : public fern::testing::HooksTest {
 protected:
  static void SetUpTestSuite() { server_ = new fern::testing::RedisServer(FERN_REDIS_SERVER); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static Context connect() {
    Context c(redisConnect("127.0.0.1", server_->port()));
    if (!c || c->err) throw std::runtime_error(std::string("redisConnect: ") + (c ? c->errstr : "no memory"));
    return c;
  }
  template <class... Args>
  static Reply command(redisContext* c, const char* format, Args... args) {
    return Reply(static_cast<redisReply*>(redisCommand(c, format, args...)));
  }
  static fern::testing::RedisServer* server_;
};
fern::testing::RedisServer* RedisHooks::server_ = nullptr;

TEST_F(RedisHooks, HundredBlpopsWithATimeoutOfTwoTenthsFinishTogether) {
  std::vector<fern::Task<void>> clients;
  int nils = 0;
  fern::Nanos start = fern::monotonic_now();
  for (int i = 0; i < 100; ++i) {
    clients.push_back(spawn([&, i] {
      Context c = connect();
      Reply r = command(c.get(), "BLPOP fern:empty:%d 0.2", i);
      ASSERT_TRUE(r) << c->errstr;
      if (r->type == REDIS_REPLY_NIL) ++nils;
    }));
  }
  fern::joinall(clients);
  double took = seconds_since(start);
  EXPECT_EQ(nils, 100);
  EXPECT_GE(took, 0.2);
  EXPECT_LT(took, 3.0) << "one after another would take 20 s";
}

TEST_F(RedisHooks, ABlpopIsWokenByAPushFromAnotherGreenlet) {
  std::string got;
  auto popper = spawn([&] {
    Context c = connect();
    Reply r = command(c.get(), "BLPOP fern:queue 5");
    ASSERT_TRUE(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    got = r->element[1]->str;
  });
  auto pusher = spawn([&] {
    Context c = connect();
    // Pushes once the popper is blocked in the server (it parked first).
    for (;;) {
      Reply clients = command(c.get(), "CLIENT LIST");
      if (std::string(clients->str).find("cmd=blpop") != std::string::npos) break;
      fern::sleep(0.001);
    }
    Reply r = command(c.get(), "RPUSH fern:queue hello");
    EXPECT_EQ(r->integer, 1);
  });
  fern::joinall(popper, pusher);
  EXPECT_EQ(got, "hello");
}

TEST_F(RedisHooks, SetGetFromManyGreenletsEveryReplyChecked) {
  constexpr int kGreenlets = 50, kOps = 200;
  std::vector<fern::Task<void>> clients;
  int checked = 0;
  for (int g = 0; g < kGreenlets; ++g) {
    clients.push_back(spawn([&, g] {
      Context c = connect();
      for (int i = 0; i < kOps; ++i) {
        std::string key = "fern:k:" + std::to_string(g) + ":" + std::to_string(i);
        std::string value = "v" + std::to_string(g * 100000 + i);
        Reply set = command(c.get(), "SET %s %s", key.c_str(), value.c_str());
        ASSERT_TRUE(set && set->type == REDIS_REPLY_STATUS) << c->errstr;
        Reply get = command(c.get(), "GET %s", key.c_str());
        ASSERT_TRUE(get && get->type == REDIS_REPLY_STRING);
        ASSERT_EQ(std::string(get->str, get->len), value);
        ++checked;
      }
    }));
  }
  fern::joinall(clients);
  EXPECT_EQ(checked, kGreenlets * kOps);
}

TEST_F(RedisHooks, TheLibraryStillWorksFromAThreadWithoutHub) {
  std::string got;
  auto greenlet = spawn([&] {
    Context c = connect();
    Reply r = command(c.get(), "SET fern:thread greenlet");
    EXPECT_EQ(r->type, REDIS_REPLY_STATUS);
  });
  std::thread plain([&] {
    Context c = connect();
    Reply set = command(c.get(), "SET fern:plain thread");
    Reply get = command(c.get(), "GET fern:plain");
    if (get && get->type == REDIS_REPLY_STRING) got = get->str;
  });
  greenlet.join();
  plain.join();
  EXPECT_EQ(got, "thread");
}

}  // namespace
