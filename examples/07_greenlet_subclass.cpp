// Twin of gevent's tutorial program 07_greenlet_subclass.py: a Greenlet
// subclass overriding _run is a fern::TaskBase overriding run().
// Deliberate difference: sleep scaled 3 s -> 0.3 s.
#include <cstdio>
#include <string>
#include <utility>

#include "fern/core/task.h"

class MyGreenlet : public fern::TaskBase {
 public:
  MyGreenlet(std::string message, double n) : message_(std::move(message)), n_(n) {}

 protected:
  void run() override {
    std::puts(message_.c_str());
    fern::sleep(n_);
  }

 private:
  std::string message_;
  double n_;
};

int main() {
  auto g = fern::make_task<MyGreenlet>("Hi there!", 0.3);
  g.start();
  g.join();
}
