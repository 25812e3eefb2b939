// Twin of gevent's tutorial program 27_subprocess_cron.py: a cron task
// prints every 0.2 s while the main greenlet waits in communicate() for a
// shell child that sleeps 1 s and runs uname; only the main greenlet blocks
// (SP-1). Python prints the bytes object: b'Linux'.
// Deliberate difference: the child sleeps 1.05 s, not 1 s. The reference's
// sixth "cron" (at 1.0 s) wins a race of a few milliseconds against the
// child's exit; 50 ms more keeps the twin's count the same on a loaded machine,
// and the cron ticks on absolute times (sleep_until) so that a slow tick does
// not push the later ones back.
#include <cstdio>
#include <string>

#include "fern/core/task.h"
#include "fern/io/subprocess.h"

int main() {
  auto g = fern::spawn([] {
    fern::Deadline tick = fern::Deadline::now();
    for (;;) {
      std::puts("cron");
      std::fflush(stdout);
      tick = fern::Deadline::after(0.2, tick.nanos());
      fern::sleep_until(tick);
    }
  });
  fern::PopenOptions options;
  options.out = fern::Stdio::kPipe;
  options.shell = true;
  fern::Popen sub({"sleep 1.05; uname"}, options);
  fern::Output out = sub.communicate();
  g.kill();
  std::string text = out.out;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::printf("b'%s'\n", text.c_str());
  return 0;
}
