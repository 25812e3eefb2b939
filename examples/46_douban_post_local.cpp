// Twin of gevent's tutorial program 46_douban_post_local.py: six concurrent
// POSTs of a form with browser-like headers, each printing the JSON reply.
// requests.post becomes libcurl, unmodified, made cooperative by
// fern::hooks::patch_all(); the site is the local stand-in (examples/hooks/).
// (The Python re-wraps stdout for UTF-8; C++ writes the bytes as they come.)
#include <cstdio>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/hooks/hooks.h"
#include "hooks/http_client.h"
#include "hooks/local_http.h"

namespace {

// A class containing interface test method of Douban object
class Douban {
 public:
  explicit Douban(const std::string& base) : host_(base.substr(base.find("://") + 3)) {}

  std::string get_response(const std::string& url, const std::string& data) const {
    return fern_examples::http_request(url, &data, headers_).body;
  }

  std::string test_search_tags_movie() const {
    std::string method = "search_tags";
    std::string url = "http://" + host_ + "/j/" + method;
    std::string post_data = "type=movie&source=index";
    std::string resp = get_response(url, post_data);
    std::printf("%s\n", resp.c_str());
    return resp;
  }

 private:
  std::string host_;
  std::vector<std::string> headers_ = {
      "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:61.0) Gecko/20100101 Firefox/61.0",
      "Referer: https://movie.douban.com/",
  };
};

}  // namespace

int main() {
  fern_examples::CurlGlobal curl;
  fern_examples::LocalHttp server;
  fern::hooks::patch_all();

  Douban douban(server.base());
  std::vector<fern::Task<std::string>> threads;
  for (int i = 0; i < 6; ++i) threads.push_back(fern::spawn([&douban] { return douban.test_search_tags_movie(); }));
  fern::joinall(threads);
  std::fflush(stdout);
}
