// Twin of gevent's tutorial program 17_print_head_urls_local.py: three
// fetches started at once print the start of each page as they finish.
// urllib.request becomes libcurl, unmodified, made cooperative by
// fern::hooks::patch_all() (monkey.patch_all()); the three sites are paths
// on the local stand-in (examples/hooks/).
#include <cstdio>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/hooks/hooks.h"
#include "hooks/http_client.h"
#include "hooks/local_http.h"

namespace {

// Python's repr of a bytes value (printable ASCII here, as the pages are).
std::string bytes_repr(const std::string& data) {
  std::string out = "b'";
  for (char c : data) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

void print_head(const std::string& url) {
  std::printf("Starting %s\n", url.c_str());
  std::string data = fern_examples::http_get(url).body;
  std::printf("%s: %zu bytes: %s\n", url.c_str(), data.size(), bytes_repr(data.substr(0, 50)).c_str());
}

}  // namespace

int main() {
  fern_examples::CurlGlobal curl;
  fern_examples::LocalHttp server;
  std::vector<std::string> urls = {server.base() + "/www.gevent.org/", server.base() + "/www.baidu.com",
                                   server.base() + "/www.python.org"};

  // patches libc's socket calls (and select, time, dns) to cooperate with other greenlets
  fern::hooks::patch_all();

  std::vector<fern::Task<void>> jobs;
  for (const std::string& url : urls) jobs.push_back(fern::spawn(print_head, url));
  fern::joinall(jobs);
}
