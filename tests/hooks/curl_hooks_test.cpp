// libcurl's easy API, unmodified, against a local HTTP server that answers
// after a delay: with the hooks, each transfer parks one greenlet.
#include <curl/curl.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../examples/hooks/local_http.h"
#include "fern/core/task.h"
#include "hooks/hooks_fixture.h"

namespace {

using fern::spawn;
using fern::testing::seconds_since;

std::size_t append(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One GET: the body, or "error: ..." with curl's message.
std::string fetch(const std::string& url) {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  std::string body;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) return std::string("error: ") + curl_easy_strerror(rc);
  return body;
}

// The stand-in server is per test and gone (its thread joined, its
// connections closed) before the fixture counts fds: a server kept for the
// whole suite closes its side of a finished transfer whenever its thread
// gets to it, which raced with the count.
class CurlHooks : public fern::testing::HooksTest {
 protected:
  static void SetUpTestSuite() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  static void TearDownTestSuite() { curl_global_cleanup(); }
  void SetUp() override {
    HooksTest::SetUp();
    server_ = std::make_unique<fern_examples::LocalHttp>();
  }
  void TearDown() override {
    server_.reset();
    HooksTest::TearDown();
  }
  std::unique_ptr<fern_examples::LocalHttp> server_;
};

TEST_F(CurlHooks, TwentyTransfersFinishInAboutOneDelay) {
  std::vector<fern::Task<void>> fetches;
  int intact = 0;
  fern::Nanos start = fern::monotonic_now();
  for (int i = 0; i < 20; ++i) {
    fetches.push_back(spawn([&] {
      std::string body = fetch(server_->base() + "/delay/200");
      EXPECT_EQ(body, fern_examples::LocalHttp::page());
      if (body == fern_examples::LocalHttp::page()) ++intact;
    }));
  }
  fern::joinall(fetches);
  double took = seconds_since(start);
  EXPECT_EQ(intact, 20);
  EXPECT_GE(took, 0.2);
  EXPECT_LT(took, 2.0) << "one after another would take 4 s";
}

TEST_F(CurlHooks, LargeBodiesArriveIntact) {
  std::vector<fern::Task<void>> fetches;
  for (int aid : {100, 300, 1000}) {
    fetches.push_back(spawn([this, aid] {
      std::string body = fetch(server_->base() + "/forum.php?mod=image&aid=" + std::to_string(aid));
      ASSERT_EQ(body.size(), static_cast<std::size_t>(1000 * aid + 6));
      EXPECT_EQ(body.substr(0, 4), "\xff\xd8\xff\xe0");
      EXPECT_EQ(body.find_first_not_of('J', 4), body.size() - 2);
    }));
  }
  fern::joinall(fetches);
}

TEST_F(CurlHooks, TheLibraryStillWorksFromAThreadWithoutHub) {
  std::string from_thread;
  std::thread plain([&] { from_thread = fetch(server_->base() + "/time.json"); });
  auto greenlet = spawn([&] { EXPECT_EQ(fetch(server_->base() + "/x"), fern_examples::LocalHttp::page()); });
  greenlet.join();
  plain.join();
  EXPECT_EQ(from_thread.find("datetime"), 2u);
}

}  // namespace
