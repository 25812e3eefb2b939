// Twin of gevent's tutorial program 04_fetch_stock_local.py: fetch a stock
// quote nine times one after another, then nine times concurrently (the
// concurrent fetches finish in whatever order the server answers).
// requests becomes libcurl, unmodified: fern::hooks::patch_socket() makes
// its blocking calls cooperative, as monkey.patch_socket() does for
// requests. The quote service is the local stand-in (examples/hooks/).
#include <cstdio>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/hooks/hooks.h"
#include "hooks/http_client.h"
#include "hooks/local_http.h"

namespace {

std::string fetch(const std::string& base, int pid) {
  std::string result = fern_examples::http_get(base + "/list=sh601006").body;
  std::string first = result.substr(0, result.find(','));
  std::string stock = first.substr(first.find('=') + 1);
  std::printf("stock:%spid= %d\n", stock.c_str(), pid);
  return stock;
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
  fern::hooks::patch_socket();
  fern_examples::CurlGlobal curl;
  fern_examples::LocalHttp server;
  std::puts("Synchronous:");
  synchronous(server.base());
  std::puts("Asynchronous:");
  asynchronous(server.base());
}
