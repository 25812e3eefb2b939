#pragma once
// Boost.Fiber has no event: the usual flag behind a mutex and condition
// variable, the baseline of the Event rows (sync_bench, op_count).
#include <mutex>

#include <boost/fiber/all.hpp>

namespace fern::bench {

struct BoostEvent {
  boost::fibers::mutex m;
  boost::fibers::condition_variable cv;
  bool flag = false;
  void set() {
    {
      std::lock_guard<boost::fibers::mutex> lk(m);
      flag = true;
    }
    cv.notify_one();
  }
  void wait_and_clear() {
    std::unique_lock<boost::fibers::mutex> lk(m);
    cv.wait(lk, [this] { return flag; });
    flag = false;
  }
};

}  // namespace fern::bench
