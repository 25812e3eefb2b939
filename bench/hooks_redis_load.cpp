// hiredis's synchronous GET loop against a local redis-server (started and
// stopped here): C greenlets on one thread with fern::hooks, against C OS
// threads with the plain library (libc's blocking calls: the hooks hand a
// thread without a hub straight to libc). Each greenlet or thread has its
// own connection and does GETs for SECONDS; prints GETs per second of both
// and their ratio.
//
//   hooks_redis_load C SECONDS [both|threads|greenlets]
#include <hiredis/hiredis.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "../tests/hooks/redis_server.h"
#include "fern/core/task.h"
#include "fern/hooks/hooks.h"

namespace {

redisContext* connect_checked(int port) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (c == nullptr || c->err) {
    std::fprintf(stderr, "redisConnect failed\n");
    std::exit(1);
  }
  return c;
}

// GETs until `stop`; every reply checked.
long get_loop(int port, const std::atomic<bool>& stop) {
  redisContext* c = connect_checked(port);
  long n = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    auto* r = static_cast<redisReply*>(redisCommand(c, "GET fern:bench"));
    if (r == nullptr || r->type != REDIS_REPLY_STRING || r->len != 5) std::abort();
    freeReplyObject(r);
    ++n;
  }
  redisFree(c);
  return n;
}

double greenlets(int port, int count, double seconds) {
  std::atomic<bool> stop{false};
  std::vector<long> done(static_cast<std::size_t>(count));
  std::vector<fern::Task<void>> tasks;
  for (int i = 0; i < count; ++i)
    tasks.push_back(fern::spawn([&, i] { done[static_cast<std::size_t>(i)] = get_loop(port, stop); }));
  fern::sleep(seconds);
  stop = true;
  fern::joinall(tasks);
  long total = 0;
  for (long d : done) total += d;
  return static_cast<double>(total) / seconds;
}

double threads(int port, int count, double seconds) {
  std::atomic<bool> stop{false};
  std::vector<long> done(static_cast<std::size_t>(count));
  std::vector<std::thread> pool;
  for (int i = 0; i < count; ++i)
    pool.emplace_back([&, i] { done[static_cast<std::size_t>(i)] = get_loop(port, stop); });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (std::thread& t : pool) t.join();
  long total = 0;
  for (long d : done) total += d;
  return static_cast<double>(total) / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s CONNECTIONS SECONDS [both|threads|greenlets]\n", argv[0]);
    return 2;
  }
  int count = std::atoi(argv[1]);
  double seconds = std::atof(argv[2]);
  std::string mode = argc > 3 ? argv[3] : "both";
  fern::testing::RedisServer server(FERN_REDIS_SERVER);
  {
    redisContext* c = connect_checked(server.port());
    freeReplyObject(redisCommand(c, "SET fern:bench hello"));
    redisFree(c);
  }
  double plain = mode != "greenlets" ? threads(server.port(), count, seconds) : 0;
  fern::hooks::patch_all();
  double hooked = mode != "threads" ? greenlets(server.port(), count, seconds) : 0;
  std::printf("hiredis GET, C=%d, %.1f s each: %d OS threads (plain) %.0f/s, 1 thread %d greenlets (hooks) %.0f/s, "
              "ratio hooks/threads %.2f\n",
              count, seconds, count, plain, count, hooked, hooked / plain);
}
