// Twin of gevent's tutorial program 45_requests_get_url_local.py: three
// concurrent GETs print url, status and length as they finish. requests
// becomes libcurl, unmodified, made cooperative by fern::hooks::patch_all();
// the three sites are paths on the local stand-in (examples/hooks/).
#include <cstdio>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/hooks/hooks.h"
#include "hooks/http_client.h"
#include "hooks/local_http.h"

namespace {

void get_url(const std::string& url) {
  fern_examples::HttpResponse res = fern_examples::http_get(url);
  std::printf("%s %ld %zu\n", url.c_str(), res.status, res.body.size());
}

}  // namespace

int main() {
  fern_examples::CurlGlobal curl;
  fern_examples::LocalHttp server;
  fern::hooks::patch_all();

  std::vector<std::string> url_l = {server.base() + "/www.baidu.com", server.base() + "/www.python.org",
                                    server.base() + "/www.cnblogs.com"};
  std::vector<fern::Task<void>> g_l;
  for (const std::string& i : url_l) g_l.push_back(fern::spawn(get_url, i));
  fern::joinall(g_l);
}
