// Twin of gevent's tutorial program 48_json_time_fetch_local.py: fetch a
// JSON time nine times one after another, then nine times concurrently.
// urllib.request becomes libcurl, unmodified, made cooperative by
// fern::hooks::patch_socket(); simplejson becomes nlohmann::json; the
// service is /time.json on the local stand-in (examples/hooks/).
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/hooks/hooks.h"
#include "hooks/http_client.h"
#include "hooks/local_http.h"

namespace {

std::string fetch(const std::string& base, int pid) {
  std::string result = fern_examples::http_get(base + "/time.json").body;
  nlohmann::json json_result = nlohmann::json::parse(result);
  std::string datetime = json_result["datetime"];

  std::printf("Process %d: %s\n", pid, datetime.c_str());
  return json_result["datetime"];
}

void synchronous(const std::string& base) {
  for (int i = 1; i < 10; ++i) fetch(base, i);
}

void asynchronous(const std::string& base) {
  std::vector<fern::Task<std::string>> threads;
  for (int i = 1; i < 10; ++i) threads.push_back(fern::spawn(fetch, base, i));
  fern::joinall(threads);
}

}  // namespace

int main() {
  fern_examples::CurlGlobal curl;
  fern_examples::LocalHttp server;
  fern::hooks::patch_socket();

  std::puts("Synchronous:");
  synchronous(server.base());

  std::puts("Asynchronous:");
  asynchronous(server.base());
}
