// Twin of gevent's tutorial program 41_gethostbyname_jobs.py (its local
// variant): gethostbyname in spawned jobs, which resolve in the thread pool
// and block only themselves (IO-9); joinall with a 2 s timeout, then each
// job's value printed as a Python list. No deliberate differences.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/io/resolver.h"

int main() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::vector<std::string> urls = {"localhost", host, "127.0.0.1"};
  std::vector<fern::Task<std::string>> jobs;
  std::vector<fern::AnyTask> any;
  for (const std::string& url : urls) {
    jobs.push_back(fern::spawn([url] { return fern::gethostbyname(url); }));
    any.push_back(fern::any_task(jobs.back()));
  }
  fern::joinall(any, fern::JoinAll().within(2.0));
  std::string result = "[";
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    auto v = jobs[i].value();
    result += (i ? ", " : "") + (v ? "'" + *v + "'" : std::string("None"));
  }
  std::printf("%s]\n", result.c_str());
  return 0;
}
