// Twin of the tutorial program 16_generator_coroutine.py, a plain Python
// generator used as a coroutine (no gevent). Here the generator is built
// from a raw fern::Greenlet: next() switches into the body, and the body's
// yield_value() switches back to whoever called next().
// No deliberate differences.
#include <cstdio>
#include <functional>
#include <optional>
#include <utility>

#include "fern/core/greenlet.h"

namespace {

// Hands v to the greenlet that called next() and suspends the body until
// the next call. Only inside a Generator's body.
void yield_value(int v) { fern::Greenlet::current().parent().switch_to(v); }

// Python's generator protocol on a greenlet.
class Generator {
 public:
  explicit Generator(std::function<void()> body) : greenlet_(std::move(body)) {}

  // Runs the body until its next yield_value and returns that value;
  // std::nullopt once the body has returned (Python's StopIteration).
  std::optional<int> next() {
    if (greenlet_.dead()) return std::nullopt;
    greenlet_.set_parent(fern::Greenlet::current());
    fern::Value v = greenlet_.switch_to();
    if (greenlet_.dead()) return std::nullopt;
    return fern::value_cast<int>(v);
  }

 private:
  fern::Greenlet greenlet_;
};

void foo() {
  for (int i = 0; i < 10; ++i) {
    // 暂时返回一个值，并将控制权交出去
    yield_value(i);
    std::puts("foo: 控制权又回到我手上了，叫我大笨蛋");
  }
}

}  // namespace

int main() {
  Generator bar(foo);
  // 执行coroutine
  std::printf("%d\n", *bar.next());
  std::puts("main: 现在控制权在我手上，啦啦啦");
  std::puts("main:hello baby!");
  // 回到刚刚foo这个coroutine中断的地方继续执行
  std::printf("%d\n", *bar.next());
  std::puts("main: 老大我又来了");
  std::printf("%d\n", *bar.next());
}
