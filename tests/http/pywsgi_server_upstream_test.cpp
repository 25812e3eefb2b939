// gevent's pywsgi server tests that http_server_test.cpp does not port
// already: the rest of src/gevent/tests/test__pywsgi.py that maps to a C++
// handler, test__server_pywsgi.py (test__server.py's cases run against
// WSGIServer), test__example_wsgiserver.py and test__example_webproxy.py
// (with a test-local proxy to a loopback backend instead of google.com);
// then the server attacked as a hostile client would (half-closed
// connections, a client that never reads, one that trickles bytes, 10k
// headers, garbage pipelined after a good request, a handler that throws
// mid-response or never returns while the server stops). SEMANTICS SRV-9
// (framing), SRV-2..SRV-6 (the server under it).
//
// Not ported, with why:
//   TestHttps, TestHttpsWithContext, TestSSLSocketNotAllowed,
//   TestSSLGetCertificate: no TLS in fern.
//   TestNegativeReadline, TestInputReadline/Iter/Readlines,
//   ChunkedInputTests::test_chunked_readline: no line reader on the body
//   (read()/read_all() only; TestNegativeRead is ported with read_all).
//   TestHandlerSubclass: no hook to read the request line (a Flash policy
//   request); TestLogging's adapter and TestEnviron's secure repr: Python
//   objects. TestRawSpawn, TestNoneSpawn: fern spawns tasks only.
//   test__server.py's test_error_in_spawn on WSGIServer: HttpServer spawns
//   through StreamServer (io server_upstream_test's ErrorInSpawn).
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "fern/core/clock.h"
#include "fern/core/task.h"
#include "fern/io/http/server.h"
#include "fern/io/socket_error.h"
#include "fern/sync/event.h"
#include "fern/sync/group.h"
#include "http_client.h"
#include "io/io_fixture.h"

namespace {

using fern::Address;
using fern::Socket;
using fern::http::HttpError;
using fern::http::HttpServer;
using fern::http::Request;
using fern::http::Response;
using fern::http::ServerOptions;
using fern::testing::HttpClient;
using fern::testing::HttpReply;
using Pywsgi = fern::testing::IoTest;

const Address kAny = Address::ip("127.0.0.1", 0);

// Everything the server sends on one connection, to its end.
std::string exchange(std::uint16_t port, const std::string& bytes) {
  HttpClient c(port);
  c.send(bytes);
  c.at_eof();
  return c.buffered();
}

// A chunked body's chunks as sent (read_http's iread_chunks); the body is
// what follows the head in `raw`, which must end with the last chunk.
std::vector<std::string> chunks_of(const std::string& raw) {
  std::vector<std::string> out;
  std::size_t at = raw.find("\r\n\r\n") + 4;
  for (;;) {
    std::size_t eol = raw.find("\r\n", at);
    if (eol == std::string::npos) return {"<cut>"};
    std::size_t n = std::stoul(raw.substr(at, eol - at), nullptr, 16);
    if (n == 0) {
      if (raw.compare(eol, 4, "\r\n\r\n") != 0 || eol + 4 != raw.size()) out.emplace_back("<bad end>");
      return out;
    }
    out.push_back(raw.substr(eol + 2, n));
    at = eol + 2 + n + 2;
  }
}

// A handler that counts its calls and answers `body`, sized.
HttpServer::Handler counting(int& calls, std::string body = "") {
  return [&calls, body](Request&, Response& r) {
    ++calls;
    r.send(body);
  };
}

// Options whose on_error keeps each handler error's what().
ServerOptions keeping_errors(std::vector<std::string>& errors) {
  ServerOptions o;
  o.on_error = [&errors](const std::exception& e) { errors.emplace_back(e.what()); };
  return o;
}

// A request too bad to serve: its status, Connection: close, then the end.
void expect_refused(std::uint16_t port, const std::string& bytes, int status) {
  HttpClient c(port);
  c.send(bytes);
  HttpReply r = c.read();
  EXPECT_EQ(r.status, status) << bytes.substr(0, 80);
  EXPECT_TRUE(r.has("Connection: close")) << r.head;
  EXPECT_TRUE(c.at_eof()) << bytes.substr(0, 80);
}

// Sets its flag when destroyed: a handler's stack was unwound.
struct SetOnUnwind {
  bool& flag;
  ~SetOnUnwind() { flag = true; }
};

// ---- test__pywsgi.py::CommonTestMixin over its server/client variants ----

// TestNoChunks (and TestBytearray: the same for a C++ handler), its HTTP/1.0
// variants, TestExplicitContentLength and TestYield: "/" is "hello world",
// anything else 404 "not found".
enum class App { kSized, kExplicitLength, kStreamed };
struct Variant {
  const char* name;
  App app;
  const char* version;  // HTTP_CLIENT_VERSION
  const char* extra;    // DEFAULT_EXTRA_CLIENT_HEADERS
  bool expect_close;
  bool expect_keepalive;
};

HttpServer::Handler variant_app(App app) {
  return [app](Request& q, Response& r) {
    bool found = q.path() == "/";
    if (!found) r.set_status(404);
    r.add_header("Content-Type", "text/plain");
    if (app == App::kSized) return r.send(found ? "hello world" : "not found");
    if (app == App::kExplicitLength) {
      r.add_header("Content-Length", found ? "11" : "9");
      r.write(found ? "hello " : "not ");
      return r.write(found ? "world" : "found");
    }
    r.write(found ? "hello world" : "not found");
  };
}

class CommonTestMixin : public fern::testing::IoTest, public ::testing::WithParamInterface<Variant> {
 protected:
  void SetUp() override {
    IoTest::SetUp();
    server_ = std::make_unique<HttpServer>(kAny, variant_app(GetParam().app));
    server_->start();
  }
  void TearDown() override {
    server_->stop();
    server_.reset();
    IoTest::TearDown();
  }
  std::string format_request(const std::string& path = "/", const std::string& headers = "") const {
    return "GET " + path + " HTTP/" + GetParam().version + "\r\nHost: localhost\r\n" + GetParam().extra + headers +
           "\r\n";
  }
  // read_http(fd, body=...) with the checks each variant makes on framing.
  void check_hello(const HttpReply& r, bool found = true) const {
    EXPECT_EQ(r.status, found ? 200 : 404) << r.head;
    EXPECT_EQ(r.head.substr(0, 9), "HTTP/1.1 ");
    EXPECT_TRUE(r.has(found ? "HTTP/1.1 200 OK" : "HTTP/1.1 404 Not Found")) << r.head;
    EXPECT_EQ(r.body, found ? "hello world" : "not found");
    bool streamed = GetParam().app == App::kStreamed;
    if (!streamed) EXPECT_TRUE(r.has(found ? "Content-Length: 11" : "Content-Length: 9")) << r.head;
    if (streamed && std::string(GetParam().version) == "1.1") EXPECT_TRUE(r.has("Transfer-Encoding: chunked"));
    else EXPECT_EQ(r.head.find("Transfer-Encoding"), std::string::npos) << r.head;
    if (GetParam().expect_keepalive) EXPECT_TRUE(r.has("Connection: keep-alive")) << r.head;
  }
  std::unique_ptr<HttpServer> server_;
};

// test__pywsgi.py::CommonTestMixin::test_basic (TestNoChunks::test_basic,
// ::test_dne); SRV-9: sized, or chunked on 1.1, keep-alive as asked
TEST_P(CommonTestMixin, Basic) {
  HttpClient c(server_->server_port());
  c.send(format_request());
  HttpReply r = c.read();
  check_hello(r);
  if (r.has("Connection: close")) {
    EXPECT_TRUE(GetParam().expect_close) << "closed, not expecting that";
    EXPECT_TRUE(c.at_eof());
    return;
  }
  EXPECT_FALSE(GetParam().expect_close) << r.head;
  c.send(format_request("/notexist"));
  check_hello(c.read(), false);
  c.send(format_request());
  check_hello(c.read());
}

// test__pywsgi.py::CommonTestMixin::test_pipeline (SRV-9): both requests in one write; the second is
// answered, or (HTTP/1.0 without keep-alive) the connection ends after the
// first: never a hang.
TEST_P(CommonTestMixin, Pipeline) {
  HttpClient c(server_->server_port());
  c.send(format_request() + format_request("/notexist"));
  check_hello(c.read());
  HttpReply second = c.read();
  if (GetParam().expect_close) {
    EXPECT_EQ(second.status, 0);  // ConnectionClosed
  } else {
    check_hello(second, false);
  }
}

// test__pywsgi.py::CommonTestMixin::test_connection_close (SRV-9): after a request with
// "Connection: close" the server closes, whatever comes next.
TEST_P(CommonTestMixin, ConnectionClose) {
  HttpClient c(server_->server_port());
  c.send(format_request());
  HttpReply r = c.read();
  if (r.has("Connection: close")) {
    EXPECT_TRUE(GetParam().expect_close);
    return;
  }
  EXPECT_FALSE(GetParam().expect_close);
  c.send(format_request("/", "Connection: close\r\n"));
  EXPECT_EQ(c.read().body, "hello world");
  try {
    c.send(format_request());
  } catch (const fern::SocketError&) {  // CONN_ABORTED_ERRORS
  }
  EXPECT_TRUE(c.at_eof());
  EXPECT_EQ(c.buffered(), "") << "the remote side is expected to close the connection";
}

// test__pywsgi.py::CommonTestMixin::test_006_reject_long_urls (skipped upstream, "Not
// sure"): a 15 kB path is over pywsgi's MAX_REQUEST_LINE: 414, as Test414.
TEST_P(CommonTestMixin, RejectLongUrls) {
  std::string path;
  for (int i = 0; i < 3000; ++i) path += "/path";
  HttpClient c(server_->server_port());
  c.send("GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ(c.read().status, 414);
}

INSTANTIATE_TEST_SUITE_P(
    Pywsgi, CommonTestMixin,
    ::testing::Values(Variant{"TestNoChunks", App::kSized, "1.1", "", false, false},
                      Variant{"TestNoChunks10", App::kSized, "1.0", "", true, false},
                      Variant{"TestNoChunks10KeepAlive", App::kSized, "1.0", "Connection: keep-alive\r\n", false, true},
                      Variant{"TestExplicitContentLength", App::kExplicitLength, "1.1", "", false, false},
                      Variant{"TestYield", App::kStreamed, "1.1", "", false, false}),
    [](const ::testing::TestParamInfo<Variant>& p) { return std::string(p.param.name); });

// ---- test__pywsgi.py, one class at a time ----

// test__pywsgi.py::TestConnectionUpgrades::test_connection_upgrade and ::test_upgrade_websocket:
// a handler answering 101 itself. pywsgi sends the body it returns after the
// 101; fern refuses a body on a 1xx (RFC 9110 15.2: none), so the handler
// sends the head only. The client reads the 101, then the end of the
// connection (the handler asked for Connection: close).
TEST_F(Pywsgi, TestConnectionUpgrades) {
  HttpServer server(kAny, [](Request&, Response& r) {
    r.set_status(101);
    r.add_header("Content-Type", "text/plain");
    r.add_header("Connection", "close");
    EXPECT_THROW(r.send("upgrading to websocket"), std::logic_error);
    r.send("");
  });
  server.start();
  for (const char* header : {"Connection: upgrade", "Upgrade: websocket"}) {
    HttpClient c(server.server_port());
    c.send(std::string("GET /websocket HTTP/1.1\r\nHost: localhost\r\n") + header + "\r\n\r\n");
    HttpReply r = c.read();
    EXPECT_EQ(r.status, 101);
    EXPECT_TRUE(r.has("HTTP/1.1 101 Switching Protocols")) << r.head;
    EXPECT_EQ(r.head.find("Content-Length"), std::string::npos);
    EXPECT_TRUE(c.at_eof());
    EXPECT_EQ(c.buffered(), "");
  }
  server.stop();
}

// A 101 is the last HTTP/1.1 on its connection (RFC 9110 15.2.2: the
// protocol changes right after its empty line). A handler that answers 101
// by itself and returns cannot speak that protocol: the connection ends;
// the bytes the client sent after its request are never read as a request.
TEST_F(Pywsgi, HandlersOwn101EndsTheConnection) {
  int calls = 0;
  HttpServer server(kAny, [&](Request&, Response& r) {
    ++calls;
    r.set_status(101);
    r.add_header("Upgrade", "x-private");
    r.add_header("Connection", "Upgrade");
  });
  server.start();
  std::string raw = exchange(server.server_port(),
                             "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: x-private\r\nConnection: Upgrade\r\n\r\n"
                             "GET /not-http-any-more HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(raw.substr(0, 32), "HTTP/1.1 101 Switching Protocols");
  EXPECT_EQ(raw.find("HTTP/1.1", 8), std::string::npos) << raw;
  EXPECT_EQ(calls, 1);
  server.stop();
}

// test__pywsgi.py::TestMultiLineHeader::test_multiline_116: pywsgi unfolds the obs-fold of
// a Content-Type; fern answers 400 as RFC 9112 5.2 allows (README: obs-fold
// -> 400), and the handler never runs.
TEST_F(Pywsgi, TestMultiLineHeader) {
  int calls = 0;
  HttpServer server(kAny, counting(calls, "ok"));
  server.start();
  expect_refused(server.server_port(),
                 "POST / HTTP/1.0\r\nHost: localhost\r\nContent-Type: multipart/related; boundary=\"====XXXX====\";\r\n"
                 " type=\"text/xml\";start=\"test.submit\"\r\nContent-Length: 0\r\n\r\n",
                 400);
  EXPECT_EQ(calls, 0);
  server.stop();
}

// test__pywsgi.py::TestGetArg::test_007_get_arg: a handler reads its 3-byte body; the junk
// the HTTP/1.0 client sends after it is no request.
TEST_F(Pywsgi, TestGetArg) {
  int calls = 0;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    ++calls;
    char body[3];
    std::size_t n = 0;
    while (n < 3) {
      std::size_t k = q.read(body + n, 3 - n);
      if (k == 0) break;
      n += k;
    }
    std::string got(body, n);
    std::string a = got.rfind("a=", 0) == 0 ? got.substr(2) : "1";
    r.add_header("Content-Type", "text/plain");
    r.send("a is " + a + ", body is " + got);
  });
  server.start();
  HttpClient c(server.server_port());
  c.send("POST / HTTP/1.0\r\nHost: localhost\r\nContent-Length: 3\r\n\r\na=a");
  c.send("01234567890123456789");
  HttpReply r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "a is a, body is a=a");
  EXPECT_TRUE(c.at_eof());
  EXPECT_EQ(calls, 1);
  server.stop();
}

// test__pywsgi.py::TestCloseIter::test_close_is_called (SRV-9): the pieces go out as the chunks
// they were written as, and the handler runs once (its close, once).
TEST_F(Pywsgi, TestCloseIter) {
  int calls = 0;
  HttpServer server(kAny, [&](Request&, Response& r) {
    ++calls;
    r.add_header("Content-Type", "text/plain");
    r.write("Hello World");
    r.write("!");
  });
  server.start();
  std::string raw = exchange(server.server_port(), "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(chunks_of(raw), (std::vector<std::string>{"Hello World", "!"}));
  EXPECT_EQ(calls, 1);
  server.stop();
}

// test__pywsgi.py::TestChunkedApp and ::TestBigChunks (SRV-9): ::test_chunked_response (each piece one
// chunk, Transfer-Encoding: chunked) and ::test_no_chunked_http_1_0 (the
// body raw, no Transfer-Encoding, and no wrong Content-Length).
TEST_F(Pywsgi, TestChunkedAppAndTestBigChunks) {
  for (const std::vector<std::string>& pieces :
       {std::vector<std::string>{"this", "is", "chunked"}, std::vector<std::string>(3, std::string(8192, 'a'))}) {
    HttpServer server(kAny, [&](Request&, Response& r) {
      r.add_header("Content-Type", "text/plain");
      for (const std::string& p : pieces) r.write(p);
    });
    server.start();
    std::string body;
    for (const std::string& p : pieces) body += p;
    std::string raw = exchange(server.server_port(), "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    std::string head = raw.substr(0, raw.find("\r\n\r\n"));
    EXPECT_NE(head.find("\r\nTransfer-Encoding: chunked"), std::string::npos) << head;
    EXPECT_EQ(chunks_of(raw), pieces);
    HttpClient c(server.server_port());
    c.send("GET / HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    HttpReply r = c.read();
    EXPECT_EQ(r.body, body);
    EXPECT_EQ(r.head.find("Transfer-Encoding"), std::string::npos) << r.head;
    EXPECT_EQ(r.head.find("Content-Length"), std::string::npos) << r.head;
    EXPECT_TRUE(r.closed);
    server.stop();
  }
}

const std::string kOhHaiChunked = "Transfer-Encoding: chunked\r\n\r\n2\r\noh\r\n4\r\n hai\r\n0\r\n\r\n";
const std::string kOhHaiSized = "Content-Length: 6\r\n\r\noh hai";

// test__pywsgi.py::TestNegativeRead::test_negative_chunked_read and
// ::test_negative_nonchunked_read: read(-1) is read_all().
TEST_F(Pywsgi, TestNegativeRead) {
  HttpServer server(kAny, [](Request& q, Response& r) {
    r.add_header("Content-Type", "text/plain");
    r.send(q.path() == "/read" ? q.read_all() : "");
  });
  server.start();
  for (const std::string& framing : {kOhHaiChunked, kOhHaiSized}) {
    HttpClient c(server.server_port());
    c.send("POST /read HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" + framing);
    EXPECT_EQ(c.read().body, "oh hai");
  }
  server.stop();
}

// test__pywsgi.py::TestChunkedPost::test_014_chunked_post: /a reads 6 bytes once, /b in
// reads of 6 until the end, /c a byte at a time: "oh hai" each time.
TEST_F(Pywsgi, TestChunkedPost014) {
  int calls = 0;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    ++calls;
    std::size_t step = q.path() == "/c" ? 1 : 6;
    std::string got;
    char buf[6];
    while (std::size_t n = q.read(buf, step)) {
      got.append(buf, n);
      if (q.path() == "/a" && got.size() >= 6) break;
    }
    r.send(got);
  });
  server.start();
  for (const char* path : {"/a", "/b", "/c"}) {
    HttpClient c(server.server_port());
    c.send(std::string("POST ") + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" + kOhHaiChunked);
    EXPECT_EQ(c.read().body, "oh hai") << path;
  }
  EXPECT_EQ(calls, 3);
  server.stop();
}

// test__pywsgi.py::TestChunkedPost::test_229_incorrect_chunk_non_hex: both framings (pywsgi
// lets chunked win and then fails on the non-hex size): 400, no hang.
TEST_F(Pywsgi, TestChunkedPost229IncorrectChunkNonHex) {
  HttpServer server(kAny, [](Request& q, Response& r) { r.send(q.read_all()); });
  server.start();
  expect_refused(server.server_port(),
                 "POST /a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 12\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n{\"hi\": \"ho\"}\r\n",
                 400);
  server.stop();
}

// test__pywsgi.py::TestUseWrite (SRV-9): ::test_explicit_content_length (the handler's length
// frames what it writes: no Transfer-Encoding), ::test_no_content_length
// and ::test_no_content_length_twice (chunked, a chunk per write).
TEST_F(Pywsgi, TestUseWrite) {
  HttpServer server(kAny, [](Request& q, Response& r) {
    r.add_header("Content-Type", "text/plain");
    if (q.path() == "/explicit-content-length") r.add_header("Content-Length", "8");
    else if (q.path() != "/no-content-length" && q.path() != "/no-content-length-twice")
      throw std::runtime_error("Invalid url");
    r.write("abcde");
    if (q.path() == "/no-content-length-twice") r.write("abcde");
    r.write("end");
  });
  server.start();
  auto get = [&](const std::string& path) {
    HttpClient c(server.server_port());
    c.send("GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    return c.read();
  };
  HttpReply r = get("/explicit-content-length");
  EXPECT_EQ(r.body, "abcdeend");
  EXPECT_TRUE(r.has("Content-Length: 8")) << r.head;
  EXPECT_EQ(r.head.find("Transfer-Encoding"), std::string::npos);
  r = get("/no-content-length");
  EXPECT_EQ(r.body, "abcdeend");
  EXPECT_EQ(r.head.find("Content-Length"), std::string::npos);
  EXPECT_TRUE(r.has("Transfer-Encoding: chunked"));
  std::string raw = exchange(server.server_port(),
                             "GET /no-content-length-twice HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(raw.find("Content-Length"), std::string::npos);
  EXPECT_EQ(chunks_of(raw), (std::vector<std::string>{"abcde", "abcde", "end"}));
  server.stop();
}

// test__pywsgi.py::TestInternational: pywsgi's PATH_INFO is percent-decoded; fern's
// request.path() is the target's path as sent (README: not decoded), and
// the query is as sent in both. The handler's own reason phrase goes out,
// with an empty sized body.
TEST_F(Pywsgi, TestInternational) {
  std::string path, query;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    path = q.path();
    query = q.query();
    r.set_status(200, "PASSED");
    r.add_header("Content-Type", "text/plain");
  });
  server.start();
  HttpClient c(server.server_port());
  c.send("GET /%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82?%D0%B2%D0%BE%D0%BF%D1%80%D0%BE%D1%81=%D0%BE%D1%82%D0%B2%D0%B5%D1%82"
         " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  HttpReply r = c.read();
  EXPECT_TRUE(r.has("HTTP/1.1 200 PASSED")) << r.head;
  EXPECT_TRUE(r.has("Content-Length: 0")) << r.head;
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(path, "/%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82");
  EXPECT_EQ(query, "%D0%B2%D0%BE%D0%BF%D1%80%D0%BE%D1%81=%D0%BE%D1%82%D0%B2%D0%B5%D1%82");
  server.stop();
}

// test__pywsgi.py::TestNonLatin1HeaderFromApplication (and ::TestNonLatin1Unicode...): a Python str that latin-1 cannot
// encode is pywsgi's 500. fern's values are bytes; UTF-8 bytes are
// obs-text, which a field value may hold (RFC 9110 5.5): sent as they are.
TEST_F(Pywsgi, TestNonLatin1HeaderFromApplication) {
  HttpServer server(kAny, [](Request&, Response& r) {
    r.set_status(200, "PASSED");
    r.add_header("Custom-Header", "\xe1\xbd\x8a" "3");
  });
  server.start();
  HttpClient c(server.server_port());
  c.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
  HttpReply r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.has("Custom-Header: \xe1\xbd\x8a" "3")) << r.head;
  server.stop();
}

// test__pywsgi.py::TestInputN: reading 5 bytes of a request without a body gets none.
TEST_F(Pywsgi, TestInputN) {
  std::size_t got = 99;
  HttpServer server(kAny, [&](Request& q, Response&) {
    char buf[5];
    got = q.read(buf, 5);
  });
  server.start();
  HttpClient c(server.server_port());
  c.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
  HttpReply r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.has("Content-Length: 0"));
  EXPECT_EQ(got, 0u);
  server.stop();
}

// test__pywsgi.py::TestError_after_start_response (and ::TestErrorInApplication): headers set,
// nothing sent, then a throw: 500, and the error reported once.
TEST_F(Pywsgi, TestErrorAfterStartResponse) {
  std::vector<std::string> errors;
  ServerOptions o = keeping_errors(errors);
  HttpServer server(kAny, [](Request&, Response& r) {
    r.add_header("Content-Type", "text/plain");
    throw std::runtime_error("TestError_after_start_response.application");
  }, o);
  server.start();
  HttpClient c(server.server_port());
  c.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
  HttpReply r = c.read();
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.head.find("text/plain\r\nContent-Type"), std::string::npos);  // the handler's headers are not sent
  EXPECT_EQ(errors, std::vector<std::string>{"TestError_after_start_response.application"});
  server.stop();
}

// test__pywsgi.py::TestContentLength304: pywsgi refuses a 304 with Content-Length 100;
// fern keeps it (RFC 9110 8.6: a 304's Content-Length is the one its 200
// would have) and sends no body. TestBody304 and TestWrite304: a body on a
// 304 is refused before anything is sent: 500.
TEST_F(Pywsgi, TestContentLength304AndBody304AndWrite304) {
  ServerOptions o;
  o.on_error = [](const std::exception&) {};
  HttpServer server(kAny, [](Request& q, Response& r) {
    r.set_status(304, "Not modified");
    if (q.path() == "/length") r.add_header("Content-Length", "100");
    if (q.path() == "/body") r.send("body");
    if (q.path() == "/write") r.write("body");
  }, o);
  server.start();
  std::string raw = exchange(server.server_port(), "GET /length HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(raw.substr(0, 27), "HTTP/1.1 304 Not modified\r\n");
  EXPECT_NE(raw.find("\r\nContent-Length: 100\r\n"), std::string::npos) << raw;
  EXPECT_EQ(raw.substr(raw.find("\r\n\r\n") + 4), "");  // no garbage after the head
  for (const char* path : {"/body", "/write"}) {
    HttpClient c(server.server_port());
    c.send(std::string("GET ") + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(c.read().status, 500) << path;
  }
  server.stop();
}

// test__pywsgi.py::TestLeakInput::test_connection_close_leak_simple (and
// _leak_frame; SRV-9): an HTTP/1.0 request
// with Connection: close; the client reads to the end.
TEST_F(Pywsgi, TestLeakInput) {
  HttpServer server(kAny, [](Request&, Response& r) {
    r.add_header("Content-Length", "6");
    r.add_header("Content-Type", "text/plain");
    r.write("foobar");
  });
  server.start();
  std::string raw = exchange(server.server_port(), "GET / HTTP/1.0\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(raw.substr(0, 15), "HTTP/1.1 200 OK");
  EXPECT_EQ(raw.substr(raw.size() - 10), "\r\n\r\nfoobar");
  server.stop();
}

// test__pywsgi.py::TestInputRaw, at the server (test_short_post, test_post,
// test_chunked, test_chunked_missing_chunk, test_chunked_short_chunk, each
// with and without a length): a body cut short (Content-Length 2 with one
// byte, a chunked body without its last chunk, a chunk shorter than its
// size) by a client that then half-closes gets 400 from read or read_all;
// whole ones read in one go or with a length ("12"). The client still
// reads the answer: its read side is open.
TEST_F(Pywsgi, TestInputRaw) {
  std::vector<std::string> seen;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    std::string got;
    try {
      if (q.path() == "/all") {
        got = q.read_all();
      } else {
        char buf[10];
        got.assign(buf, q.read(buf, 10));
        while (std::size_t n = q.read(buf, 10)) got.append(buf, n);
      }
    } catch (const HttpError& e) {
      seen.emplace_back(std::string(q.path()) + " " + e.what());
      throw;
    }
    r.send(got);
  });
  server.start();
  const std::string chunked = "Transfer-Encoding: chunked\r\n\r\n";
  struct Case {
    std::string name, framing_and_body;
    int status;
    std::string body;
  } cases[] = {
      {"test_short_post", "Content-Length: 2\r\n\r\n1", 400, ""},
      {"test_post", "Content-Length: 2\r\n\r\n12", 200, "12"},
      {"test_chunked", chunked + "1\r\n1\r\n1\r\n2\r\n0\r\n\r\n", 200, "12"},
      {"test_chunked_missing_chunk", chunked + "1\r\n1\r\n1\r\n2\r\n", 400, ""},
      {"test_chunked_short_chunk", chunked + "2\r\n1", 400, ""},
  };
  for (const Case& k : cases) {
    for (const char* path : {"/all", "/with-length"}) {
      HttpClient c(server.server_port());
      c.send(std::string("POST ") + path + " HTTP/1.1\r\nHost: localhost\r\n" + k.framing_and_body);
      c.socket().shutdown(SHUT_WR);
      HttpReply r = c.read();
      EXPECT_EQ(r.status, k.status) << k.name << path;
      EXPECT_EQ(r.body, k.status == 200 ? k.body : "the request body ended early") << k.name << path;
      EXPECT_TRUE(c.at_eof());
    }
  }
  EXPECT_EQ(seen.size(), 6u);
  server.stop();
}

// test__pywsgi.py::TestInputRaw::test_32bit_overflow (gevent issue 289): a Content-Length
// of 25e9 (35 bits) is read exactly, and a handler reads the start of the
// body; the rest, too much to drop, closes the connection.
TEST_F(Pywsgi, TestInputRaw32BitOverflow) {
  ServerOptions o;
  o.max_body = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t length = 0;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    length = q.content_length.value_or(0);
    char buf[10];
    std::size_t n = 0;
    while (n < sizeof buf) n += q.read(buf + n, sizeof buf - n);
    r.send(std::string(buf, n));
  }, o);
  server.start();
  HttpClient c(server.server_port());
  c.send("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 25000000000\r\n\r\nasdf\nghij\n" +
         std::string(8202, 'a') + "\n");
  HttpReply r = c.read();
  EXPECT_EQ(r.body, "asdf\nghij\n");
  EXPECT_TRUE(c.at_eof());
  EXPECT_EQ(length, 25'000'000'000u);
  server.stop();
}

// ---- test__server_pywsgi.py: test__server.py's cases on WSGIServer ----

// Its application: / and /ping "PONG", /short and /long held (upstream
// sleeps 0.5 s and 10 s; here until released), anything else 404.
struct PingApp {
  fern::Event short_done, long_done;
  int running = 0;
  void operator()(Request& q, Response& r) {
    ++running;
    if (q.path() == "/short") short_done.wait();
    if (q.path() == "/long") long_done.wait();
    --running;
    if (q.path() == "/" || q.path() == "/ping") return r.send("PONG");
    if (q.path() != "/short" && q.path() != "/long") r.set_status(404, "pywsgi WTF?");
    r.send("");
  }
};

HttpServer::Handler ping_app(PingApp& app) {
  return [&app](Request& q, Response& r) { app(q, r); };
}

// assertRequestSucceeded: a GET /ping over HTTP/1.0 ends in "\r\n\r\nPONG".
void ping_succeeds(std::uint16_t port) {
  std::string raw = exchange(port, "GET /ping HTTP/1.0\r\n\r\n");
  ASSERT_GE(raw.size(), 8u);
  EXPECT_EQ(raw.substr(raw.size() - 8), "\r\n\r\nPONG") << raw;
}

void refused(std::uint16_t port) {
  Socket c(AF_INET, SOCK_STREAM);
  EXPECT_EQ(c.connect_ex(Address::ip("127.0.0.1", port)), ECONNREFUSED);
}

// test__server_pywsgi.py::TestDefaultSpawn::test_backlog_is_accepted_for_address,
// ::test_subclass_with_address (restartable = False there: start, two
// requests, stop, refused), ::test_serve_forever and
// ::test_serve_forever_after_start (SRV-2, SRV-5).
TEST_F(Pywsgi, ServerPywsgiStartStopAndServeForever) {
  PingApp app;
  ServerOptions o;
  o.stream.backlog = 25;
  {
    HttpServer server(kAny, ping_app(app), o);
    EXPECT_EQ(server.server_port(), 0);
    server.start();
    std::uint16_t port = server.server_port();
    ping_succeeds(port);
    ping_succeeds(port);
    server.stop();
    refused(port);
  }
  for (bool started_first : {false, true}) {
    HttpServer server(kAny, ping_app(app));
    if (started_first) server.start();
    bool returned = false;
    auto serving = fern::spawn([&] {
      server.serve_forever();
      returned = true;
    });
    fern::sleep(0);  // serving starts the server (if needed) and parks
    std::uint16_t port = server.server_port();
    ping_succeeds(port);
    server.stop();
    refused(port);
    serving.join();
    EXPECT_TRUE(returned);
  }
}

// test__server_pywsgi.py::TestDefaultSpawn::test_subclass_just_create and
// ::test_subclass_with_socket (SRV-1, SRV-2; restartable = False there):
// a WSGIServer on a listening socket answers nothing before start() (the
// connection waits in the backlog: no answer within 50 ms, a lower bound),
// answers it once started, then two requests; after stop(), refused. A
// backlog given with the socket is refused (test_backlog_is_not_accepted_for_socket).
TEST_F(Pywsgi, ServerPywsgiWithSocket) {
  PingApp app;
  ServerOptions with_backlog;
  with_backlog.stream.backlog = 25;
  EXPECT_THROW(HttpServer(fern::testing::listen_on(), ping_app(app), with_backlog), std::invalid_argument);
  HttpServer server(fern::testing::listen_on("127.0.0.1", 5), ping_app(app));
  std::uint16_t port = server.server_port();
  HttpClient waiting(port);
  waiting.send("GET /ping HTTP/1.0\r\n\r\n");
  waiting.socket().set_timeout(0.05);
  char b;
  EXPECT_THROW(waiting.socket().recv_into(&b, 1), fern::SocketTimeout);  // assertNotAccepted
  waiting.socket().set_timeout(std::nullopt);
  server.start();
  EXPECT_EQ(waiting.read().body, "PONG");
  ping_succeeds(port);
  ping_succeeds(port);
  server.stop();
  refused(port);
}

// test__server_pywsgi.py::TestDefaultSpawn::test_invalid_callback: pywsgi
// calls an application it cannot call and answers each request 500
// (assert500: "HTTP/1.1 500 Internal Server Error" ... "Internal Server
// Error"). An empty handler is the C++ counterpart.
TEST_F(Pywsgi, ServerPywsgiInvalidCallback) {
  int errors = 0;
  ServerOptions o;
  o.on_error = [&](const std::exception&) { ++errors; };
  HttpServer server(kAny, HttpServer::Handler(), o);
  server.start();
  std::string raw = exchange(server.server_port(), "GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(raw.substr(0, 36), "HTTP/1.1 500 Internal Server Error\r\n") << raw;
  EXPECT_EQ(raw.substr(raw.size() - 25), "\r\n\r\nInternal Server Error") << raw;
  EXPECT_EQ(errors, 1);
  server.stop();
}

// test__server_pywsgi.py::TestDefaultSpawn::test_server_closes_client_sockets:
// an application that answers nothing. pywsgi fails it (start_response not
// called: 500, which upstream accepts); fern's handler that returns at
// once answers 200 with an empty body. Either way the connection ends.
TEST_F(Pywsgi, ServerPywsgiClosesClientSockets) {
  HttpServer server(kAny, [](Request&, Response&) {});
  server.start();
  std::string raw = exchange(server.server_port(), "GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(raw.substr(0, 17), "HTTP/1.1 200 OK\r\n");
  EXPECT_EQ(raw.substr(raw.size() - 21), "Content-Length: 0\r\n\r\n");
  server.stop();
}

// test__server_pywsgi.py::TestPoolSpawn::test_pool_full (SRV-6): with a
// pool of 2 held by /short and /long, a /ping is not answered
// (assertPoolFull, three times); once /short ends, it is.
TEST_F(Pywsgi, ServerPywsgiPoolFull) {
  PingApp app;
  fern::Pool pool(2);
  ServerOptions o;
  o.stream.pool = &pool;
  HttpServer server(kAny, ping_app(app), o);
  server.start();
  HttpClient long_request(server.server_port());
  HttpClient short_request(server.server_port());
  short_request.send("GET /short HTTP/1.0\r\n\r\n");
  long_request.send("GET /long HTTP/1.0\r\n\r\n");
  while (app.running < 2) fern::sleep(0);
  std::vector<std::unique_ptr<HttpClient>> waiting;
  for (int i = 0; i < 3; ++i) {
    waiting.push_back(std::make_unique<HttpClient>(server.server_port()));
    waiting.back()->send("GET /ping HTTP/1.0\r\n\r\n");
    waiting.back()->socket().set_timeout(0.05);
    char b;
    EXPECT_THROW(waiting.back()->socket().recv_into(&b, 1), fern::SocketTimeout);  // a lower bound only
    waiting.back()->socket().set_timeout(std::nullopt);
  }
  app.short_done.set();
  EXPECT_EQ(short_request.read().status, 200);
  short_request.close();  // else its connection lingers (up to 1 s) for the client's end, holding its place
  for (auto& c : waiting) {
    EXPECT_EQ(c->read().body, "PONG");
    c->close();
  }
  ping_succeeds(server.server_port());
  app.long_done.set();
  EXPECT_EQ(long_request.read().status, 200);
  server.stop();
}

// ---- test__example_wsgiserver.py: examples/wsgiserver.py's application ----

void wsgiserver_app(Request& q, Response& r) {
  if (q.path() == "/") {
    r.add_header("Content-Type", "text/html");
    return r.send("<b>hello world</b>");
  }
  r.set_status(404);
  r.add_header("Content-Type", "text/html");
  r.send("<h1>Not Found</h1>");
}

// test__example_wsgiserver.py::Test_wsgiserver::_test_hello and ::_test_not_found.
void wsgiserver_hello(std::uint16_t port) {
  HttpClient c(port);
  c.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  HttpReply r = c.read();
  EXPECT_TRUE(r.has("HTTP/1.1 200 OK"));
  EXPECT_EQ(r.body, "<b>hello world</b>");
}

// test__example_wsgiserver.py::Test_wsgiserver::test_a_blocking_client: a client that sends half a
// request and stops does not hold the server up: others are served
// meanwhile, and its own request is answered once it ends.
TEST_F(Pywsgi, ExampleWsgiserverABlockingClient) {
  HttpServer server(kAny, wsgiserver_app);
  server.start();
  wsgiserver_hello(server.server_port());
  HttpClient c(server.server_port());
  c.send("GET /xxx HTTP/1.0\r\n");
  wsgiserver_hello(server.server_port());
  HttpClient d(server.server_port());
  d.send("GET /xxx HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  HttpReply r = d.read();
  EXPECT_TRUE(r.has("HTTP/1.1 404 Not Found"));
  EXPECT_EQ(r.body, "<h1>Not Found</h1>");
  c.send("\r\n");
  r = c.read();
  EXPECT_EQ(r.head.substr(0, r.head.find("\r\n")), "HTTP/1.1 404 Not Found");
  server.stop();
}

// ---- test__example_webproxy.py: examples/webproxy.py, over loopback ----

// webproxy.py's application: GET / is the form; GET /<url> fetches
// http://<url> (here with a minimal HTTP/1.0 client on a fern Socket) and
// answers what it got; a backend that cannot be reached is 502 Bad Gateway;
// POST / redirects (302) to the proxy URL of the posted url=...; other
// methods 501.
void webproxy_app(Request& q, Response& r) {
  std::string path(q.target.substr(1));
  if (q.method == "GET" && path.empty()) {
    r.add_header("Content-Type", "text/html");
    return r.send("<html><head><title>gevent example</title></head><body><form method=post>"
                  "<input type=text name=url></form></body></html>");
  }
  if (q.method == "POST" && path.empty()) {
    std::string body = q.read_all();
    if (body.rfind("url=", 0) != 0) throw HttpError(400, "no url");
    r.set_status(302);
    r.add_header("Location", "http://" + std::string(q.header("Host").value_or("")) + "/" + body.substr(4));
    return r.send("");
  }
  if (q.method != "GET") {
    r.set_status(q.method == "POST" ? 404 : 501);
    return r.send("");
  }
  if (path.rfind("http://", 0) == 0) path = path.substr(7);
  std::size_t slash = path.find('/');
  std::string hostport = path.substr(0, slash), rest = slash == std::string::npos ? "/" : path.substr(slash);
  std::size_t colon = hostport.rfind(':');
  std::string answer;
  try {
    Socket backend(AF_INET, SOCK_STREAM);
    backend.connect(Address::ip(hostport.substr(0, colon), static_cast<std::uint16_t>(
                                                               std::stoi(hostport.substr(colon + 1)))));
    backend.sendall("GET " + rest + " HTTP/1.0\r\nHost: " + hostport + "\r\n\r\n");
    char buf[4096];
    while (std::size_t n = backend.recv_into(buf, sizeof buf)) answer.append(buf, n);
  } catch (const fern::SocketError& e) {
    r.set_status(502);
    r.add_header("Content-Type", "text/html");
    return r.send(std::string("<h1>") + e.what() + "</h1><h2>" + path + "</h2>");
  }
  std::size_t end = answer.find("\r\n\r\n");
  r.set_status(std::stoi(answer.substr(9, 3)));
  r.send(answer.substr(end + 4));
}

// test__example_webproxy.py::Test_webproxy::_run_all_tests: the form, then a page through the proxy
// (a loopback backend in place of www.google.com); also the 502 of a
// backend that is gone and the POST redirect. test_a_blocking_client is
// "Not applicable" upstream.
TEST_F(Pywsgi, ExampleWebproxy) {
  HttpServer backend(kAny, [](Request& q, Response& r) {
    r.add_header("Content-Type", "text/html");
    r.send("<title>Google</title> at " + std::string(q.target));
  });
  backend.start();
  HttpServer proxy(kAny, webproxy_app);
  proxy.start();
  std::uint16_t port = proxy.server_port();
  auto ask = [&](const std::string& req) {
    HttpClient c(port);
    c.send(req);
    return c.read();
  };
  HttpReply r = ask("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("gevent example"), std::string::npos);
  std::string backend_url = "http://127.0.0.1:" + std::to_string(backend.server_port());
  r = ask("GET /" + backend_url + "/search HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<title>Google</title> at /search");
  r = ask("POST / HTTP/1.1\r\nHost: proxy\r\nContent-Length: 17\r\n\r\nurl=example.com/a");
  EXPECT_EQ(r.status, 302);
  EXPECT_TRUE(r.has("Location: http://proxy/example.com/a")) << r.head;
  EXPECT_EQ(ask("PUT / HTTP/1.1\r\nHost: p\r\nContent-Length: 0\r\n\r\n").status, 501);
  backend.stop();
  r = ask("GET /" + backend_url + "/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(r.body.find("<h1>"), std::string::npos);
  proxy.stop();
}

// ---- A hostile client ----

// A client that half-closes after its requests (shutdown(SHUT_WR)) still
// gets every answer, then the end of the connection.
TEST_F(Pywsgi, HalfClosedClientGetsEveryAnswerThenTheEnd) {
  HttpServer server(kAny, [](Request& q, Response& r) { r.send(std::string(q.target) + q.read_all()); });
  server.start();
  HttpClient c(server.server_port());
  c.send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
         "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n");
  c.socket().shutdown(SHUT_WR);
  EXPECT_EQ(c.read().body, "/1");
  EXPECT_EQ(c.read().body, "/2abc");
  EXPECT_EQ(c.read().body, "/3");
  EXPECT_TRUE(c.at_eof());
  EXPECT_EQ(c.buffered(), "");
  server.stop();
}

// A client that never reads its (large) response: the server's write
// waits at most io_timeout, then the connection ends quietly (no report:
// the client's fault); stop() finds nothing left.
TEST_F(Pywsgi, ClientThatNeverReadsIsDroppedAtTheIoTimeout) {
  ServerOptions o;
  o.io_timeout = 0.1;
  int reports = 0;
  o.on_error = [&](const std::exception&) { ++reports; };
  fern::Event failed;
  std::string what;
  HttpServer server(kAny, [&](Request&, Response& r) {
    try {
      r.send(std::string(64 << 20, 'x'));  // far more than both socket buffers
    } catch (const fern::SocketError& e) {
      what = e.what();
      failed.set();
      throw;
    }
  }, o);
  server.start();
  HttpClient c(server.server_port(), 4096);
  fern::Deadline t0 = fern::Deadline::now();
  c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  failed.wait();
  EXPECT_GE(fern::Deadline::now().nanos() - t0.nanos(), 100'000'000);
  EXPECT_NE(what.find("timed out"), std::string::npos) << what;
  server.stop();
  EXPECT_EQ(server.connection_count(), 0u);
  EXPECT_EQ(reports, 0);
}

// The same client with no io_timeout: the handler waits in its write until
// the server stops, which kills it; the client sees the connection end.
TEST_F(Pywsgi, ClientThatNeverReadsIsEndedByStop) {
  fern::Event writing;
  bool unwound = false;
  HttpServer server(kAny, [&](Request&, Response& r) {
    SetOnUnwind u{unwound};
    writing.set();
    r.send(std::string(64 << 20, 'x'));
  });
  server.start();
  HttpClient c(server.server_port(), 4096);
  c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  writing.wait();
  server.stop(0.05);
  EXPECT_TRUE(unwound);
  EXPECT_EQ(server.connection_count(), 0u);
  EXPECT_TRUE(c.at_eof());
}

// A client that sends its head a byte at a time, slower than
// header_timeout allows in all: closed without an answer at the deadline
// (a lower bound only), the handler never called.
TEST_F(Pywsgi, HeadTrickledAByteAtATimeIsClosedAtTheHeaderDeadline) {
  ServerOptions o;
  o.header_timeout = 0.1;
  int calls = 0;
  HttpServer server(kAny, counting(calls), o);
  server.start();
  HttpClient c(server.server_port());
  const std::string head = "GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + std::string(200, 'a') + "\r\n\r\n";
  fern::Deadline t0 = fern::Deadline::now();
  std::size_t sent = 0;
  try {
    for (; sent < head.size(); ++sent) {
      c.send(head.substr(sent, 1));
      fern::sleep(0.01);  // the client's pace, not a wait for the server
      char b;
      if (::recv(c.socket().fd(), &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0) break;  // closed
    }
  } catch (const fern::SocketError&) {  // EPIPE or ECONNRESET once the server has closed
  }
  EXPECT_LT(sent, head.size());
  EXPECT_TRUE(c.at_eof());
  EXPECT_GE(fern::Deadline::now().nanos() - t0.nanos(), 100'000'000);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(c.buffered(), "");
  server.stop();
}

// A client that stalls inside a body the handler did not read: the server
// answered, and waits for the rest of the body (to reuse the connection)
// no longer than it would for the next head: header_timeout.
TEST_F(Pywsgi, ClientStallingInAnUnreadBodyIsClosedAtTheHeaderDeadline) {
  ServerOptions o;
  o.header_timeout = 0.1;
  HttpServer server(kAny, [](Request&, Response& r) { r.send("early"); }, o);
  server.start();
  HttpClient c(server.server_port());
  c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly this much");
  HttpReply r = c.read();
  fern::Deadline t0 = fern::Deadline::now();
  EXPECT_EQ(r.body, "early");
  EXPECT_TRUE(c.at_eof());
  EXPECT_GE(fern::Deadline::now().nanos() - t0.nanos(), 90'000'000);
  server.stop();
}

// A client that sends its body a byte at a time, each within io_timeout,
// is served (io_timeout bounds each wait, not the body); one that then
// stalls longer gets 408 Request Timeout and a close (RFC 9110 15.5.9; a
// lower bound on the time only), not a silent end.
TEST_F(Pywsgi, BodyStalledPastTheIoTimeoutGets408) {
  ServerOptions o;
  o.io_timeout = 0.2;
  HttpServer server(kAny, [](Request& q, Response& r) { r.send(q.read_all()); }, o);
  server.start();
  HttpClient c(server.server_port());
  c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
  for (char b : std::string("12345")) {
    fern::sleep(0.02);  // the client's pace
    c.send(std::string(1, b));
  }
  EXPECT_EQ(c.read().body, "12345");
  c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n123");
  fern::Deadline t0 = fern::Deadline::now();
  HttpReply r = c.read();
  EXPECT_GE(fern::Deadline::now().nanos() - t0.nanos(), 200'000'000);
  EXPECT_EQ(r.status, 408);
  EXPECT_TRUE(r.has("Connection: close")) << r.head;
  EXPECT_TRUE(c.at_eof());
  server.stop();
}

// The same stalled client when the server stops: the body would only be
// dropped to serve a next request, which a stopping server will not, so
// stop() ends the wait at once, as for an idle connection, instead of
// waiting its timeout (here longer than the test may run) for the handler.
TEST_F(Pywsgi, StopDoesNotWaitForAStalledUnreadBody) {
  ServerOptions o;
  o.header_timeout = 1000.0;
  fern::Event answered;
  HttpServer server(kAny, [&](Request&, Response& r) {
    r.send("early");
    answered.set();
  }, o);
  server.start();
  HttpClient c(server.server_port());
  c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly this much");
  EXPECT_EQ(c.read().body, "early");
  answered.wait();
  server.stop(1000.0);
  EXPECT_EQ(server.connection_count(), 0u);
  EXPECT_TRUE(c.at_eof());
}

// 5,000 requests pipelined in one stream (GETs, sized and chunked POSTs,
// a HEAD), written by one task while another reads: every answer comes
// back, in order, on the one connection (test_pipeline at scale).
TEST_F(Pywsgi, FiveThousandPipelinedRequestsAreAnsweredInOrder) {
  HttpServer server(kAny, [](Request& q, Response& r) { r.send(std::string(q.target) + ":" + q.read_all()); });
  server.start();
  constexpr int kRequests = 5000;
  std::string all;
  for (int i = 0; i < kRequests; ++i) {
    std::string n = std::to_string(i);
    switch (i % 4) {
      case 0: all += "GET /" + n + " HTTP/1.1\r\nHost: x\r\n\r\n"; break;
      case 1: all += "POST /" + n + " HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"; break;
      case 2: all += "POST /" + n + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n"; break;
      default: all += "HEAD /" + n + " HTTP/1.1\r\nHost: x\r\n\r\n"; break;
    }
  }
  HttpClient c(server.server_port());
  auto sender = fern::spawn([&] {
    c.send(all);
    c.socket().shutdown(SHUT_WR);
  });
  int in_order = 0;
  for (int i = 0; i < kRequests; ++i) {
    if (i % 4 == 3) {  // no body follows the head of a HEAD answer: read the head only
      while (c.buffered().find("\r\n\r\n") == std::string::npos) {
        char b[4096];
        std::size_t n = c.socket().recv_into(b, sizeof b);
        ASSERT_GT(n, 0u);
        c.buffered().append(b, n);
      }
      bool ok = c.buffered().compare(0, 17, "HTTP/1.1 200 OK\r\n") == 0;
      c.buffered().erase(0, c.buffered().find("\r\n\r\n") + 4);
      in_order += ok;
      continue;
    }
    HttpReply r = c.read();
    std::string want = "/" + std::to_string(i) + ":" + (i % 4 == 1 ? "abc" : i % 4 == 2 ? "z" : "");
    if (r.body == want) ++in_order;
    else ADD_FAILURE() << i << ": " << r.body;
    if (r.status != 200) break;
  }
  EXPECT_EQ(in_order, kRequests);
  sender.join();
  EXPECT_TRUE(c.at_eof());
  EXPECT_EQ(c.buffered(), "");
  server.stop();
}

// Clients that reset their connection (SO_LINGER 0) right after connecting,
// or right after sending half a request or a head without its body: each
// ends quietly (no report), and the server serves the next client.
TEST_F(Pywsgi, ClientsResettingEarlyEndQuietly) {
  int calls = 0;
  std::vector<std::string> errors;
  HttpServer server(kAny, counting(calls, "fine"), keeping_errors(errors));
  server.start();
  for (const char* sent : {"", "GET / HTTP/1.1\r\nHo", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nab"}) {
    for (int i = 0; i < 20; ++i) {
      Socket s(AF_INET, SOCK_STREAM);
      s.connect(Address::ip("127.0.0.1", server.server_port()));
      if (*sent) s.sendall(sent);
      linger reset{1, 0};
      ASSERT_EQ(::setsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
    }
  }
  HttpClient c(server.server_port());
  c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c.read().body, "fine");
  server.stop();
  EXPECT_EQ(errors, std::vector<std::string>{});
  // The 20 whole heads may reach the handler (which answers without reading
  // the body, into a reset connection) or be lost with the reset.
  EXPECT_GE(calls, 1);
  EXPECT_LE(calls, 21);
}

// 10,000 header lines: 431 once past max_headers (100), and a close; the
// lines still in flight are drained, so the client reads the answer.
TEST_F(Pywsgi, TenThousandHeadersGet431) {
  int calls = 0;
  HttpServer server(kAny, counting(calls));
  server.start();
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 10000; ++i) req += "X-" + std::to_string(i) + ": v\r\n";
  expect_refused(server.server_port(), req + "\r\n", 431);
  EXPECT_EQ(calls, 0);
  server.stop();
}

// Garbage pipelined behind a good request: the good one is answered, the
// garbage gets 400 and the close; the handler runs once.
TEST_F(Pywsgi, GarbagePipelinedAfterAGoodRequestGets400AfterItsAnswer) {
  int calls = 0;
  HttpServer server(kAny, counting(calls, "good"));
  server.start();
  for (const std::string& garbage : {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15),
                                     std::string("GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n"),
                                     std::string("BREW /pot HTCPCP/1.0\r\n\r\n")}) {
    calls = 0;
    HttpClient c(server.server_port());
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + garbage);
    HttpReply r = c.read();
    EXPECT_EQ(r.body, "good");
    EXPECT_FALSE(r.has("Connection: close"));
    EXPECT_EQ(c.read().status, 400);
    EXPECT_TRUE(c.at_eof());
    EXPECT_EQ(calls, 1);
  }
  server.stop();
}

// A handler that throws after writing part of a response it framed with
// its own Content-Length: what was written stays, nothing is appended (no
// 500 inside the body), and the connection ends short, so the client
// knows the body is cut (RFC 9112 8). Reported once.
TEST_F(Pywsgi, HandlerThrowingMidSizedResponseEndsTheConnectionShort) {
  std::vector<std::string> reports;
  ServerOptions o = keeping_errors(reports);
  HttpServer server(kAny, [](Request&, Response& r) {
    r.add_header("Content-Length", "10");
    r.write("12345");
    throw std::runtime_error("mid-response");
  }, o);
  server.start();
  std::string raw = exchange(server.server_port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(raw.substr(0, 15), "HTTP/1.1 200 OK");
  EXPECT_EQ(raw.substr(raw.find("\r\n\r\n") + 4), "12345");
  EXPECT_EQ(reports, std::vector<std::string>{"mid-response"});
  server.stop();
}

// A handler that misuses its response after finishing it (a write after
// send): the response already sent is whole; the misuse is reported and
// the connection ends rather than carry on in an unknown state.
TEST_F(Pywsgi, WriteAfterTheResponseEndedIsRefusedAndReported) {
  std::vector<std::string> errors;
  ServerOptions o = keeping_errors(errors);
  HttpServer server(kAny, [](Request&, Response& r) {
    r.send("whole");
    r.write("more");
  }, o);
  server.start();
  HttpClient c(server.server_port());
  c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c.read().body, "whole");
  EXPECT_TRUE(c.at_eof());
  EXPECT_EQ(c.buffered(), "");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("write() after the response ended"), std::string::npos) << errors[0];
  server.stop();
}

// A handler that never returns while the server stops: stop(timeout) kills
// it after the timeout (a lower bound), it unwinds, and its client sees
// the connection end with no answer.
TEST_F(Pywsgi, HandlerThatNeverReturnsIsKilledByStop) {
  fern::Event entered, never;
  bool unwound = false;
  HttpServer server(kAny, [&](Request&, Response&) {
    SetOnUnwind u{unwound};
    entered.set();
    never.wait();
  });
  server.start();
  HttpClient c(server.server_port());
  c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  entered.wait();
  fern::Deadline t0 = fern::Deadline::now();
  server.stop(0.05);
  EXPECT_GE(fern::Deadline::now().nanos() - t0.nanos(), 50'000'000);
  EXPECT_TRUE(unwound);
  EXPECT_EQ(server.connection_count(), 0u);
  EXPECT_TRUE(c.at_eof());
  EXPECT_EQ(c.buffered(), "");
}

// Large bodies both ways: 8 MiB up (Content-Length and chunked), echoed
// sized and streamed in 100 kB pieces, to a client with a small receive
// window (the server's writes are partial); every byte comes back in order.
TEST_F(Pywsgi, LargeBodiesBothWays) {
  ServerOptions o;
  o.max_body = 16 << 20;
  HttpServer server(kAny, [](Request& q, Response& r) {
    std::string body = q.read_all();
    if (q.path() == "/sized") return r.send(body);
    for (std::size_t at = 0; at < body.size(); at += 100'000) r.write(std::string_view(body).substr(at, 100'000));
  }, o);
  server.start();
  std::string big(8 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  std::string chunked;
  for (std::size_t at = 0; at < big.size(); at += 65536) {
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", std::min<std::size_t>(65536, big.size() - at));
    chunked += size + big.substr(at, 65536) + "\r\n";
  }
  chunked += "0\r\n\r\n";
  HttpClient c(server.server_port(), 8192);
  for (const char* path : {"/sized", "/streamed"}) {
    auto sender = fern::spawn([&] {
      c.send(std::string("POST ") + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(big.size()) +
             "\r\n\r\n" + big);
      c.send(std::string("POST ") + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked);
    });
    for (int i = 0; i < 2; ++i) {
      HttpReply r = c.read();
      EXPECT_EQ(r.status, 200) << path;
      EXPECT_TRUE(r.body == big) << path << " " << r.body.size();
    }
    sender.join();
  }
  server.stop();
}

// A handler that streams its answer as it reads a large body (an echo, a
// proxy's upload) reads all of it: its connection is kept for the next
// request, though most of the body was unread when the head went out.
TEST_F(Pywsgi, StreamingEchoOfALargeBodyKeepsTheConnection) {
  HttpServer server(kAny, [](Request& q, Response& r) {
    std::string buf(65536, '\0');  // on the heap: a task's stack is 64 KiB
    while (std::size_t n = q.read(buf.data(), buf.size())) r.write(std::string_view(buf.data(), n));
    if (!r.headers_sent()) r.send("empty");
  });
  server.start();
  const std::string big(1 << 20, 'e');
  HttpClient c(server.server_port());
  auto sender = fern::spawn([&] {
    c.send("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big);
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  });
  HttpReply r = c.read();
  EXPECT_TRUE(r.body == big) << r.body.size();
  EXPECT_FALSE(r.has("Connection: close")) << r.head;
  EXPECT_EQ(c.read().body, "empty");
  sender.join();
  server.stop();
}

// Header edge cases (RFC 9112 2.2, 5, 5.1): whitespace before a field's
// colon, a field line that starts with whitespace right after the request
// line, a name that is not a token, a NUL or bare CR in a value, a signed
// Content-Length, Transfer-Encoding on HTTP/1.0: each 400 and a close. An
// empty value, a tab inside one, obs-text, and names in any case are fine.
TEST_F(Pywsgi, HeaderEdgeCases) {
  std::string seen;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    seen = std::string(q.header("x-empty").value_or("<none>")) + "|" + std::string(q.header("X-TAB").value_or("")) +
           "|" + std::string(q.header("x-obs").value_or("")) + "|" + std::string(q.header("HOST").value_or(""));
    r.send("ok");
  });
  server.start();
  for (const std::string& bad : {std::string("GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
                                 std::string("GET / HTTP/1.1\r\n Host: x\r\n\r\n"),
                                 std::string("GET / HTTP/1.1\r\nHost: x\r\nX(y): z\r\n\r\n"),
                                 std::string("GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n", 35),
                                 std::string("GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n"),
                                 std::string("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc"),
                                 std::string("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")}) {
    expect_refused(server.server_port(), bad, 400);
  }
  HttpClient c(server.server_port());
  c.send("GET / HTTP/1.1\r\nhost: h\r\nX-Empty:\r\nX-Tab: a\tb\r\nX-Obs: \xe9t\xe9\r\n\r\n");
  EXPECT_EQ(c.read().body, "ok");
  EXPECT_EQ(seen, "|a\tb|\xe9t\xe9|h");
  server.stop();
}

// The environ-like fields pywsgi's applications read (REQUEST_METHOD,
// PATH_INFO, QUERY_STRING, SERVER_PROTOCOL, REMOTE_ADDR, CONTENT_LENGTH,
// CONTENT_TYPE, HTTP_*), over IPv4 and IPv6 loopback.
TEST_F(Pywsgi, EnvironLikeRequestFields) {
  std::vector<std::string> seen;
  auto handler = [&](Request& q, Response& r) {
    seen.push_back(std::string(q.method) + " " + std::string(q.path()) + " " + std::string(q.query()) + " 1." +
                   std::to_string(q.version_minor) + " " + q.peer.host() + " " +
                   std::to_string(q.content_length.value_or(0)) + " " +
                   std::string(q.header("content-type").value_or("")) + " " +
                   std::string(q.header("X-Forwarded-For").value_or("")) + " " + q.read_all());
    r.send("");
  };
  std::vector<const char*> hosts = {"127.0.0.1"};
  if (fern::testing::has_ipv6_loopback()) hosts.push_back("::1");
  for (const char* host : hosts) {
    HttpServer server(Address::ip(host, 0), handler);
    server.start();
    Socket s(server.address().family(), SOCK_STREAM);
    s.connect(Address::ip(host, server.server_port()));
    s.sendall("PUT /a/b%20c?x=1&y=%2F HTTP/1.0\r\nContent-Type: text/x\r\nx-forwarded-for: 10.0.0.1\r\n"
              "Content-Length: 4\r\n\r\nbody");
    char buf[512];
    while (s.recv_into(buf, sizeof buf) != 0) {
    }
    server.stop();
  }
  ASSERT_EQ(seen.size(), hosts.size());
  EXPECT_EQ(seen[0], "PUT /a/b%20c x=1&y=%2F 1.0 127.0.0.1 4 text/x 10.0.0.1 body");
  if (seen.size() > 1) EXPECT_EQ(seen[1], "PUT /a/b%20c x=1&y=%2F 1.0 ::1 4 text/x 10.0.0.1 body");
}

}  // namespace
