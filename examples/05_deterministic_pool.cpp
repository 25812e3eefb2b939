// Twin of gevent's tutorial program 05_deterministic_pool.py, gevent part:
// a gevent Pool(10) running imap_unordered over a function that *blocks*
// (unpatched time.sleep) yields the same order on every run -> "True"
// (SEMANTICS PL-11: tasks that block the process run strictly in turn).
// Deliberate differences: the blocking time.sleep(0.001) is a blocking
// std::this_thread::sleep_for(1 ms). The first half of the reference (a
// multiprocessing Pool, whose imap_unordered order varies between runs) has
// no fern counterpart and its "False" line is probabilistic by nature (the
// INDEX says so), so the twin leaves it out: expected/05_deterministic_pool
// .stdout is the reference output without that first line.
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "fern/sync/group.h"

namespace {

int echo(int i) {
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return i;
}

std::vector<int> run(fern::Pool& p, const std::vector<int>& inputs) {
  std::vector<int> out;
  for (int a : p.imap_unordered(echo, inputs)) out.push_back(a);
  return out;
}

}  // namespace

int main() {
  // Deterministic Gevent Pool
  const std::vector<int> range10{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  fern::Pool p(10);
  std::vector<int> run1 = run(p, range10);
  std::vector<int> run2 = run(p, range10);
  std::vector<int> run3 = run(p, range10);
  std::vector<int> run4 = run(p, range10);

  std::puts(run1 == run2 && run2 == run3 && run3 == run4 ? "True" : "False");
}
