// Twin of gevent's tutorial program 28_actor_ping_pong_scaled.py: an Actor
// is a Greenlet subclass (here a fern::TaskBase overriding run()) with a
// Queue inbox; Pinger and Ponger bounce messages, each stopping after 5.
// Python's NotImplemented receive() is a pure virtual function. No other
// deliberate differences.
#include <cstdio>
#include <memory>
#include <string>

#include "fern/core/task.h"
#include "fern/sync/queue.h"

namespace {

class Actor : public fern::TaskBase {
 public:
  fern::Queue<std::string> inbox;

 protected:
  // Define in your subclass.
  virtual void receive(const std::string& message) = 0;

  void run() override {
    running_ = true;

    while (running_) {
      std::string message = inbox.get();
      receive(message);
      count_ += 1;
      if (count_ >= 5) running_ = false;
    }
  }

 private:
  bool running_ = false;
  int count_ = 0;
};

class Pinger;
class Ponger;
std::shared_ptr<Pinger> ping;
std::shared_ptr<Ponger> pong;

class Pinger : public Actor {
 protected:
  void receive(const std::string& message) override;
};

class Ponger : public Actor {
 protected:
  void receive(const std::string& message) override;
};

void Pinger::receive(const std::string& message) {
  std::puts(message.c_str());
  pong->inbox.put("ping");
  fern::sleep(0);
}

void Ponger::receive(const std::string& message) {
  std::puts(message.c_str());
  ping->inbox.put("pong");
  fern::sleep(0);
}

}  // namespace

int main() {
  ping = std::make_shared<Pinger>();
  pong = std::make_shared<Ponger>();
  auto ping_task = fern::Task<void>::adopt(ping);
  auto pong_task = fern::Task<void>::adopt(pong);

  ping_task.start();
  pong_task.start();

  ping->inbox.put("start");
  fern::joinall({fern::any_task(ping_task), fern::any_task(pong_task)});
}
