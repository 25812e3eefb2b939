// The HTTP server (issue 10, SEMANTICS SRV-9: pywsgi's framing): sized and
// streamed bodies on 1.1 and 1.0, keep-alive and pipelining split at every
// byte boundary, request bodies (Content-Length, chunked, 100-continue),
// every limit and error, a throwing handler, and clients that go away in
// the middle of a request or of a response.
#include <sys/socket.h>

#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/io/http/server.h"
#include "fern/sync/event.h"
#include "http_client.h"
#include "io/io_fixture.h"

namespace {

using fern::Address;
using fern::http::HttpServer;
using fern::http::Request;
using fern::http::Response;
using fern::http::ServerOptions;
using fern::testing::HttpClient;
using fern::testing::HttpReply;
using Http = fern::testing::IoTest;

const Address kAny = Address::ip("127.0.0.1", 0);

// Answers "<method> <target> <body>" sized.
void echo(Request& request, Response& response) {
  std::string body = request.read_all();
  response.add_header("Content-Type", "text/plain");
  response.send(std::string(request.method) + " " + std::string(request.target) + " " + body);
}

// echo, counting its calls in `calls`.
HttpServer::Handler counting_echo(int& calls) {
  return [&calls](Request& q, Response& r) {
    ++calls;
    echo(q, r);
  };
}

HttpReply request(HttpServer& server, const std::string& bytes) {
  HttpClient c(server.server_port());
  c.send(bytes);
  return c.read();
}

// SRV-9: a sized body, in pywsgi's header order.
TEST_F(Http, SizedResponseHasPywsgiHeadersInOrder) {
  HttpServer server(kAny, [](Request&, Response& r) {
    r.add_header("Content-Type", "text/html");
    r.send("<p>Hello World</p>");
  });
  server.start();
  HttpReply r = request(server, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  ASSERT_EQ(r.head.substr(0, 42), "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n");
  EXPECT_EQ(r.head.substr(r.head.size() - 20), "\r\nContent-Length: 18");
  EXPECT_EQ(r.head.find("Connection"), std::string::npos);
  EXPECT_EQ(r.body, "<p>Hello World</p>");
  HttpClient c(server.server_port());
  c.send("GET / HTTP/1.0\r\n\r\n");
  r = c.read();
  EXPECT_TRUE(r.has("Connection: close"));
  EXPECT_EQ(r.body, "<p>Hello World</p>");
  EXPECT_TRUE(c.at_eof());
  server.stop();
}

// A Date the handler sets is the response's only one (a singleton field,
// RFC 9110 5.3; pywsgi adds its own only when the application set none).
TEST_F(Http, HandlersDateReplacesTheServersOne) {
  HttpServer server(kAny, [](Request&, Response& r) {
    r.add_header("date", "Sun, 06 Nov 1994 08:49:37 GMT");
    r.send("dated");
  });
  server.start();
  HttpReply r = request(server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(r.has("date: Sun, 06 Nov 1994 08:49:37 GMT")) << r.head;
  EXPECT_EQ(r.head.find("Date:"), std::string::npos) << r.head;
  EXPECT_EQ(r.body, "dated");
  server.stop();
}

// Connection header fields in a response head, whatever their case.
int connection_fields(const std::string& head) {
  static const std::regex field("\r\nconnection:", std::regex::icase);
  return static_cast<int>(std::distance(std::sregex_iterator(head.begin(), head.end(), field), std::sregex_iterator()));
}

// A Connection header the handler sets is the response's only one (pywsgi
// adds its own only when the application gave none), and "close" in it
// ends the connection after the response, on 1.1 and on 1.0.
TEST_F(Http, HandlersConnectionHeaderIsTheOnlyOneAndCloseIsHonoured) {
  HttpServer server(kAny, [](Request& q, Response& r) {
    if (q.target == "/close") r.add_header("Connection", "close");
    else r.add_header("connection", "keep-alive");
    r.send("x");
  });
  server.start();
  HttpClient c(server.server_port());
  c.send("GET /keep HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  HttpReply r = c.read();
  EXPECT_EQ(connection_fields(r.head), 1) << r.head;
  EXPECT_TRUE(r.has("connection: keep-alive")) << r.head;
  EXPECT_FALSE(r.closed);
  c.send("GET /close HTTP/1.1\r\nHost: x\r\n\r\n");
  r = c.read();
  EXPECT_EQ(connection_fields(r.head), 1) << r.head;
  EXPECT_TRUE(r.has("Connection: close")) << r.head;
  EXPECT_TRUE(c.at_eof());
  for (const char* ask : {"GET /close HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                          "GET /close HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                          "GET /keep HTTP/1.0\r\n\r\n"}) {
    HttpClient d(server.server_port());
    d.send(ask);
    r = d.read();
    EXPECT_EQ(connection_fields(r.head), 1) << ask << r.head;
    EXPECT_TRUE(d.at_eof()) << ask;
  }
  server.stop();
}

// SRV-9: a streamed body is chunked on 1.1 with gevent's exact framing, raw
// with Connection: close on 1.0.
TEST_F(Http, StreamedResponseIsChunkedOn11AndRawOn10) {
  HttpServer server(kAny, [](Request&, Response& r) {
    r.add_header("Content-Type", "text/html");
    r.write("<p>Hello");
    r.write("");
    r.write("World</p>");
  });
  server.start();
  HttpClient c(server.server_port());
  c.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(c.at_eof());
  std::string raw = c.buffered();
  EXPECT_NE(raw.find("\r\nTransfer-Encoding: chunked\r\n\r\n"), std::string::npos);
  EXPECT_EQ(raw.substr(raw.find("\r\n\r\n") + 4), "8\r\n<p>Hello\r\n9\r\nWorld</p>\r\n0\r\n\r\n");
  HttpReply r = request(server, "GET / HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(r.has("Connection: close"));
  EXPECT_EQ(r.head.find("Transfer-Encoding"), std::string::npos);
  EXPECT_EQ(r.body, "<p>HelloWorld</p>");
  server.stop();
}

TEST_F(Http, KeepAliveServesRequestsOneAfterAnotherOnOneConnection) {
  int calls = 0;
  HttpServer server(kAny, counting_echo(calls));
  server.start();
  HttpClient c(server.server_port());
  for (int i = 0; i < 5; ++i) {
    c.send("GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n");
    HttpReply r = c.read();
    EXPECT_EQ(r.body, "GET /" + std::to_string(i) + " ");
    EXPECT_FALSE(r.closed);
  }
  EXPECT_EQ(calls, 5);
  c.send("GET /1.0 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  HttpReply r = c.read();
  EXPECT_TRUE(r.has("Connection: keep-alive"));
  c.send("GET /end HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(c.read().body, "GET /end ");
  EXPECT_TRUE(c.at_eof());
  server.stop();
}

// Three pipelined requests (a GET, a sized POST, a chunked POST) sent in two
// writes, split at every byte boundary; the second part goes only once the
// responses to the complete requests of the first have come back, so the
// server really sees each split.
TEST_F(Http, PipelinedRequestsSplitAtEveryByteBoundaryAreAllAnswered) {
  HttpServer server(kAny, echo);
  server.start();
  const std::string reqs[] = {"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
                              "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
                              "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"};
  const std::string all = reqs[0] + reqs[1] + reqs[2];
  const std::string want[] = {"GET /a ", "POST /b hello", "POST /c abcde"};
  for (std::size_t split = 1; split < all.size(); ++split) {
    HttpClient c(server.server_port());
    c.send(all.substr(0, split));
    std::size_t complete = 0, ends = 0;
    for (const std::string& r : reqs)
      if ((ends += r.size()) <= split) ++complete;
    for (std::size_t i = 0; i < complete; ++i) ASSERT_EQ(c.read().body, want[i]) << "split " << split;
    c.send(all.substr(split));
    for (std::size_t i = complete; i < 3; ++i) ASSERT_EQ(c.read().body, want[i]) << "split " << split;
  }
  server.stop();
}

TEST_F(Http, ChunkedRequestBodyIsDecoded) {
  HttpServer server(kAny, echo);
  server.start();
  HttpReply r = request(server, "PUT /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "5\r\nhello\r\n1;ext\r\n \r\n5\r\nworld\r\n0\r\nTrailer: t\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "PUT /x hello world");
  server.stop();
}

TEST_F(Http, ExpectContinueGets100BeforeTheBodyIsSent) {
  HttpServer server(kAny, echo);
  server.start();
  HttpClient c(server.server_port());
  c.send("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  HttpReply interim = c.read();
  EXPECT_EQ(interim.status, 100);
  EXPECT_EQ(interim.head, "HTTP/1.1 100 Continue");
  c.send("body");
  EXPECT_EQ(c.read().body, "POST /e body");
  server.stop();
}

// A handler that answers without reading the body: no 100 Continue is
// sent, and since the client may never send the body, the connection ends.
TEST_F(Http, ExpectContinueWithTheBodyUnreadGetsTheAnswerAndAClose) {
  HttpServer server(kAny, [](Request&, Response& r) {
    r.set_status(403);
    r.send("no");
  });
  server.start();
  HttpClient c(server.server_port());
  c.send("PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n");
  HttpReply r = c.read();
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, "no");
  EXPECT_TRUE(c.at_eof());
  server.stop();
}

// A handler that starts its response before reading the body: no 100
// Continue goes out inside the response.
TEST_F(Http, ExpectContinueAfterTheResponseStartedSendsNo100) {
  HttpServer server(kAny, [](Request& q, Response& r) {
    r.write("part");
    r.write(q.read_all());
  });
  server.start();
  HttpClient c(server.server_port());
  c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n");
  std::string got;
  while (got.find("part\r\n") == std::string::npos) {
    char b[4096];
    std::size_t n = c.socket().recv_into(b, sizeof b);
    ASSERT_GT(n, 0u);
    got.append(b, n);
  }
  c.send("hello");
  ASSERT_TRUE(c.at_eof());
  got += c.buffered();
  EXPECT_EQ(got.find("100 Continue"), std::string::npos) << got;
  EXPECT_EQ(got.substr(got.find("\r\n\r\n") + 4), "4\r\npart\r\n5\r\nhello\r\n0\r\n\r\n");
  server.stop();
}

TEST_F(Http, UnreadBodyIsDroppedAndTheConnectionKept) {
  HttpServer server(kAny, [](Request&, Response& r) { r.send("ok"); });
  server.start();
  HttpClient c(server.server_port());
  c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c.read().body, "ok");
  HttpReply r = c.read();
  EXPECT_EQ(r.body, "ok");
  EXPECT_FALSE(r.closed);
  server.stop();
}

TEST_F(Http, HeadRequestGetsTheLengthButNoBody) {
  HttpServer server(kAny, [](Request&, Response& r) { r.send("12345"); });
  server.start();
  HttpClient c(server.server_port());
  c.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  c.socket().shutdown(SHUT_WR);
  ASSERT_TRUE(c.at_eof());
  std::string raw = c.buffered();
  std::size_t first_end = raw.find("\r\n\r\n") + 4;
  EXPECT_NE(raw.find("Content-Length: 5"), std::string::npos);
  EXPECT_EQ(raw.compare(first_end, 8, "HTTP/1.1"), 0);  // no body bytes after the first head
  EXPECT_EQ(raw.substr(raw.size() - 5), "12345");
  server.stop();
}

// RFC 9110 9.3.2 with a streamed answer (pywsgi's generator app answering
// HEAD, CommonTestMixin run with HEAD): the head says chunked, but neither
// chunks nor the last chunk follow, and a request pipelined behind it is
// answered in order.
TEST_F(Http, StreamedAnswerToHeadHasNoBodyAndTheConnectionIsKept) {
  HttpServer server(kAny, [](Request&, Response& r) {
    r.write("abc");
    r.write("def");
  });
  server.start();
  HttpClient c(server.server_port());
  c.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n");
  c.socket().shutdown(SHUT_WR);
  ASSERT_TRUE(c.at_eof());
  const std::string& raw = c.buffered();
  std::size_t first_end = raw.find("\r\n\r\n") + 4;
  EXPECT_NE(raw.substr(0, first_end).find("Transfer-Encoding: chunked"), std::string::npos) << raw;
  EXPECT_EQ(raw.compare(first_end, 8, "HTTP/1.1"), 0) << raw;  // no body bytes after the first head
  EXPECT_EQ(raw.substr(raw.find("\r\n\r\n", first_end) + 4), "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n");
  server.stop();
}

// An error answer to a HEAD request has no body either (RFC 9110 9.3.2):
// a client that pipelined a request behind it reads no error text as the
// start of the next response. A bad request after a HEAD gets its body.
TEST_F(Http, ErrorAnswerToHeadHasNoBody) {
  ServerOptions o;
  o.on_error = [](const std::exception&) {};
  HttpServer server(kAny, [](Request& q, Response& r) {
    if (q.target == "/teapot") throw fern::http::HttpError(418, "short and stout");
    if (q.target == "/boom") throw std::runtime_error("boom");
    r.send("fine");
  }, o);
  server.start();
  for (const char* target : {"/boom", "/teapot"}) {
    HttpClient c(server.server_port());
    c.send(std::string("HEAD ") + target + " HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(c.at_eof());
    std::string raw = c.buffered();
    std::size_t end = raw.find("\r\n\r\n");
    ASSERT_NE(end, std::string::npos) << raw;
    EXPECT_EQ(raw.compare(0, 12, target == std::string("/boom") ? "HTTP/1.1 500" : "HTTP/1.1 418"), 0) << raw;
    EXPECT_EQ(raw.substr(end + 4), "") << target;
  }
  HttpClient c(server.server_port());  // a HEAD served, then a bad request on its connection
  c.send("HEAD /fine HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(c.at_eof());
  std::string raw = c.buffered();
  EXPECT_EQ(raw.substr(raw.size() - 32), "an HTTP/1.1 request without Host") << raw;
  server.stop();
}

// Each limit and error answers its status with Connection: close and
// closes; the server goes on serving.
TEST_F(Http, LimitsAndErrorsGetTheirStatusAndClose) {
  ServerOptions o;
  o.limits.max_request_line = 64;
  o.limits.max_head_bytes = 256;
  o.max_body = 10;
  int calls = 0;
  HttpServer server(kAny, counting_echo(calls), o);
  server.start();
  struct Case {
    std::string bytes;
    int status;
  } cases[] = {
      {"GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
      {"GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(300, 'a') + "\r\n\r\n", 431},
      {"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n01234567890", 413},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n6\r\n678901\r\n0\r\n\r\n", 413},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: br, chunked\r\n\r\n", 501},
      {"GET / HTTP/3.0\r\n\r\n", 505},
      {"GET / HTTP/1.1\r\n\r\n", 400},  // no Host
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3 garbage\r\nabc\r\n0\r\n\r\n", 400},
  };
  for (const Case& k : cases) {
    HttpClient c(server.server_port());
    c.send(k.bytes);
    HttpReply r = c.read();
    EXPECT_EQ(r.status, k.status) << k.bytes.substr(0, 60);
    EXPECT_TRUE(r.has("Connection: close")) << r.head;
    EXPECT_TRUE(c.at_eof());
  }
  EXPECT_EQ(calls, 3);  // only the chunked bodies reach the handler
  EXPECT_EQ(request(server, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").body, "GET /ok ");
  server.stop();
}

// pywsgi's error log for invalid client input: a request too bad to reach
// the handler gets one line on stderr naming the peer and why (fern's own
// text, never the client's bytes); log_bad_requests = false silences it.
TEST_F(Http, BadRequestIsLoggedWithItsPeerAndReason) {
  for (bool logged : {true, false}) {
    ServerOptions o;
    o.log_bad_requests = logged;
    HttpServer server(kAny, echo, o);
    server.start();
    ::testing::internal::CaptureStderr();
    HttpClient c(server.server_port());
    c.send("GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n");
    HttpReply r = c.read();
    EXPECT_TRUE(c.at_eof());  // the log line comes before the close
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(r.status, 400);
    if (logged) {
      EXPECT_NE(err.find("Invalid request (from 127.0.0.1:"), std::string::npos) << err;
      EXPECT_NE(err.find("): malformed request target (400)"), std::string::npos) << err;
      EXPECT_EQ(err.find('\x01'), std::string::npos) << err;
    } else {
      EXPECT_EQ(err, "");
    }
    server.stop();
  }
}

// Empty lines before a request line count towards max_head_bytes however
// they are cut into writes: a flood of them gets 431 and a close, and the
// request after them is never served.
TEST_F(Http, EmptyLinesFloodBeforeTheRequestGets431) {
  ServerOptions o;
  o.limits.max_head_bytes = 1024;
  o.header_timeout = 5.0;  // without the limit, the flood would end only here
  int calls = 0;
  HttpServer server(kAny, counting_echo(calls), o);
  server.start();
  HttpClient c(server.server_port());
  std::string lines;
  for (int i = 0; i < 50; ++i) lines += "\r\n\n";
  for (int i = 0; i < 8; ++i) c.send(lines);  // 1200 bytes in 8 writes
  c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  HttpReply r = c.read();
  EXPECT_EQ(r.status, 431);
  EXPECT_TRUE(c.at_eof());
  EXPECT_EQ(calls, 0);
  server.stop();
}

// Empty lines are dropped as each read brings them (the 2 KiB first buffer
// takes 32 KiB in several reads), so each counts once: 32 KiB of them and a
// request fit a head limit of 32 KiB + 64.
TEST_F(Http, EmptyLinesAreDroppedAsTheyComeAndCountedOnce) {
  ServerOptions o;
  o.limits.max_head_bytes = 32768 + 64;
  HttpServer server(kAny, echo, o);
  server.start();
  std::string lines;
  for (int i = 0; i < 16384; ++i) lines += "\r\n";
  HttpClient c(server.server_port());
  c.send(lines + "GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
  HttpReply r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "GET /after ");
  server.stop();
}

// A handler that stops its own server: its response says Connection: close,
// the request pipelined behind it is not served, and the connection ends.
TEST_F(Http, HandlerStoppingItsServerEndsItsConnectionAfterTheResponse) {
  int calls = 0;
  HttpServer* self = nullptr;
  HttpServer server(kAny, [&](Request&, Response& r) {
    ++calls;
    self->stop();
    r.send("bye");
  });
  self = &server;
  server.start();
  HttpClient c(server.server_port());
  c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /again HTTP/1.1\r\nHost: x\r\n\r\n");
  HttpReply r = c.read();
  EXPECT_EQ(r.body, "bye");
  EXPECT_TRUE(r.has("Connection: close")) << r.head;
  EXPECT_TRUE(c.at_eof());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(server.connection_count(), 0u);
}

// A server destroyed while the handler that stopped it still runs kills
// that handler first: it unwinds, its client sees the close, nothing is
// left to run after the server is gone.
TEST_F(Http, ServerDestroyedWhileItsStoppingHandlerRunsKillsTheHandler) {
  bool unwound = false;
  fern::Event never;
  auto client = [](std::uint16_t port) {  // on a task's small stack: no HttpClient
    fern::Socket s(AF_INET, SOCK_STREAM);
    s.connect(Address::ip("127.0.0.1", port));
    s.sendall("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    char b[64];
    return s.recv_into(b, sizeof b) == 0;
  };
  fern::Task<bool> closed;
  {
    HttpServer* self = nullptr;
    HttpServer server(kAny, [&](Request&, Response&) {
      struct Unwound {
        bool& flag;
        ~Unwound() { flag = true; }
      } guard{unwound};
      self->stop();
      never.wait();
    });
    self = &server;
    server.start();
    closed = fern::spawn(client, server.server_port());
    server.serve_forever();  // returns once the handler has stopped the server
    EXPECT_FALSE(unwound);
  }
  EXPECT_TRUE(unwound);
  EXPECT_TRUE(closed.get());
}

// A request whose head does not end within header_timeout is closed
// without an answer (slowloris); a lower bound on the time only.
TEST_F(Http, SlowHeadIsClosedAtTheHeaderDeadline) {
  ServerOptions o;
  o.header_timeout = 0.05;
  HttpServer server(kAny, echo, o);
  server.start();
  HttpClient c(server.server_port());
  fern::Deadline t0 = fern::Deadline::now();
  c.send("GET / HTTP/1.1\r\nHost: x\r\n");
  EXPECT_TRUE(c.at_eof());
  EXPECT_GE(fern::Deadline::now().nanos() - t0.nanos(), 50'000'000);
  EXPECT_TRUE(c.buffered().empty());
  server.stop();
}

TEST_F(Http, ThrowingHandlerGets500AndTheServerKeepsServing) {
  std::vector<std::string> errors;
  ServerOptions o;
  o.on_error = [&](const std::exception& e) { errors.push_back(e.what()); };
  HttpServer server(kAny, [](Request& q, Response& r) {
    if (q.target == "/boom") throw std::runtime_error("boom");
    if (q.target == "/teapot") throw fern::http::HttpError(418, "short and stout");
    if (q.target == "/ok-error") throw fern::http::HttpError(200, "not an error");
    r.send("fine");
  }, o);
  server.start();
  HttpClient c(server.server_port());
  c.send("GET /boom HTTP/1.1\r\nHost: x\r\n\r\n");
  HttpReply r = c.read();
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "Internal Server Error");
  EXPECT_TRUE(c.at_eof());
  EXPECT_EQ(errors, std::vector<std::string>{"boom"});
  EXPECT_EQ(request(server, "GET /teapot HTTP/1.1\r\nHost: x\r\n\r\n").status, 418);
  EXPECT_EQ(request(server, "GET /ok-error HTTP/1.1\r\nHost: x\r\n\r\n").status, 500);  // HttpError(200) is misuse
  EXPECT_EQ(errors.size(), 2u);
  EXPECT_EQ(request(server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").body, "fine");
  server.stop();
}

// A socket error from a handler's own socket (a dead backend) is the
// handler's failure: 500 and a report, not "the client went away".
TEST_F(Http, HandlersOwnSocketErrorGets500AndAReport) {
  fern::Socket dead(AF_INET, SOCK_STREAM);  // bound, not listening: connecting is refused
  dead.bind(kAny);
  Address backend = dead.local_address();
  std::vector<std::string> errors;
  ServerOptions o;
  o.on_error = [&](const std::exception& e) { errors.push_back(e.what()); };
  HttpServer server(kAny, [&](Request&, Response& r) {
    fern::Socket s(AF_INET, SOCK_STREAM);
    s.connect(backend);
    r.send("unreachable");
  }, o);
  server.start();
  HttpReply r = request(server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.status, 500);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("connect"), std::string::npos) << errors[0];
  server.stop();
}

// Two pipelined requests: `target`, then /next; what the client reads.
std::string pipelined(HttpServer& server, const std::string& target) {
  HttpClient c(server.server_port());
  c.send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  c.at_eof();
  return c.buffered();
}

// A Content-Length the handler sets frames the body: a body longer than it
// is refused before the excess goes out, a shorter one closes the
// connection (the client waits for the rest), so the next request on the
// connection is never read as the end of this body (RFC 9112 6.3).
TEST_F(Http, HandlersContentLengthBoundsTheBodyItSends) {
  std::vector<std::string> errors;
  ServerOptions o;
  o.on_error = [&](const std::exception& e) { errors.push_back(e.what()); };
  HttpServer server(kAny, [](Request& q, Response& r) {
    if (q.target == "/next") return r.send("next");
    r.add_header("Content-Length", "3");
    if (q.target == "/long") r.send("hello");
    if (q.target == "/short") r.send("h");
    if (q.target == "/long-stream") {
      r.write("ab");
      r.write("cd");
    }
    if (q.target == "/short-stream") r.write("ab");
    if (q.target == "/exact-stream") {
      r.write("ab");
      r.write("c");
    }
  }, o);
  server.start();
  auto body_of = [](const std::string& raw) { return raw.substr(raw.find("\r\n\r\n") + 4); };
  std::string raw = pipelined(server, "/long");
  EXPECT_EQ(raw.substr(0, 12), "HTTP/1.1 500");
  EXPECT_EQ(raw.find("hello"), std::string::npos);
  raw = pipelined(server, "/short");
  EXPECT_NE(raw.find("\r\nContent-Length: 3\r\n"), std::string::npos);
  EXPECT_NE(raw.find("\r\nConnection: close\r\n"), std::string::npos);
  EXPECT_EQ(body_of(raw), "h");
  EXPECT_EQ(body_of(pipelined(server, "/long-stream")), "ab");
  EXPECT_EQ(body_of(pipelined(server, "/short-stream")), "ab");
  raw = pipelined(server, "/exact-stream");
  EXPECT_EQ(raw.substr(raw.find("\r\n\r\n") + 4, 3), "abc");
  EXPECT_NE(raw.find("\r\n\r\nnext"), std::string::npos);  // the connection was kept
  EXPECT_EQ(errors.size(), 2u);  // /long and /long-stream
  server.stop();
}

// The server frames the body itself: a handler's Transfer-Encoding (which
// would go out next to Content-Length) is refused.
TEST_F(Http, HandlersTransferEncodingIsRefused) {
  HttpServer server(kAny, [](Request&, Response& r) {
    EXPECT_THROW(r.add_header("Transfer-Encoding", "chunked"), std::invalid_argument);
    EXPECT_THROW(r.add_header("Content-Length", "1x"), std::invalid_argument);
    r.send("hello");
  });
  server.start();
  HttpReply r = request(server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.head.find("Transfer-Encoding"), std::string::npos);
  EXPECT_TRUE(r.has("Content-Length: 5"));
  EXPECT_EQ(r.body, "hello");
  server.stop();
}

// RFC 9110 6.4.1, 8.6: 204 and 304 have neither a body nor framing
// headers (a 304 keeps the Content-Length of the 200 it stands for); the
// connection goes on with the next request.
TEST_F(Http, NoBodyStatusesGetNeitherBodyNorFraming) {
  HttpServer server(kAny, [](Request& q, Response& r) {
    if (q.target == "/next") return r.send("next");
    if (q.target == "/204") r.set_status(204);
    if (q.target == "/304") {
      r.set_status(304);
      r.add_header("Content-Length", "5");
    }
    EXPECT_THROW(r.send("body"), std::logic_error);
    EXPECT_THROW(r.write("body"), std::logic_error);
    r.send("");
  });
  server.start();
  for (const char* target : {"/204", "/304"}) {
    std::string raw = pipelined(server, target);
    std::string head = raw.substr(0, raw.find("\r\n\r\n"));
    EXPECT_EQ(head.find("Transfer-Encoding"), std::string::npos) << head;
    EXPECT_EQ(head.find("Content-Length: 0"), std::string::npos) << head;
    EXPECT_EQ(head.find("Content-Length") == std::string::npos, target == std::string("/204")) << head;
    EXPECT_EQ(raw.compare(head.size() + 4, 12, "HTTP/1.1 200"), 0) << raw;  // no body before the next response
    EXPECT_EQ(raw.substr(raw.size() - 4), "next");
  }
  server.stop();
}

// SRV-9: pywsgi's access log line, one per request.
TEST_F(Http, AccessLogLineHasPywsgisShape) {
  ServerOptions o;
  o.access_log = true;
  HttpServer server(kAny, [](Request&, Response& r) { r.send("hello"); }, o);
  server.start();
  ::testing::internal::CaptureStderr();
  HttpReply r = request(server, "GET /x?y=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  server.stop();
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(std::regex_match(log, std::regex(R"(127\.0\.0\.1 - - \[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] )"
                                               R"("GET /x\?y=1 HTTP/1\.1" 200 \d+ \d+\.\d{6}\n)")))
      << log;
  EXPECT_NE(log.find(" 200 " + std::to_string(r.head.size() + 4 + 5) + " "), std::string::npos) << log;
}

TEST_F(Http, HeaderInjectionIsRefused) {
  // test__pywsgi.py::TestHTTPResponseSplitting: CR or LF in a header value,
  // a header name or the status line's reason.
  const std::function<void(Response&)> injections[] = {
      [](Response& r) { r.add_header("X", "a\r\nSet-Cookie: evil"); },
      [](Response& r) { r.add_header("Set-Cookie: evil\r\nX", "a"); },
      [](Response& r) { r.set_status(200, "OK\r\nSet-Cookie: evil\r\nContent-Length: 0\r\n\r\n"); },
      [](Response& r) { r.set_status(200, "OK\nSet-Cookie: evil"); },
  };
  std::vector<std::string> whats;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    try {
      injections[q.target[1] - '0'](r);
    } catch (const std::invalid_argument& e) {
      whats.emplace_back(e.what());
    }
    r.send("");
  });
  server.start();
  for (std::size_t i = 0; i < std::size(injections); ++i) {
    HttpReply r = request(server, "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.has("Content-Length: 0")) << r.head;
    EXPECT_EQ(r.head.find("evil"), std::string::npos) << r.head;
  }
  ASSERT_EQ(whats.size(), std::size(injections));
  EXPECT_NE(whats[0].find("CR, LF"), std::string::npos);
  EXPECT_NE(whats[2].find("CR, LF"), std::string::npos);
  server.stop();
}

// A handler that catches the 400 of a broken chunked body and reads on gets
// the error again, never the end of the body: the bytes after the break
// never pass for a request of their own (no smuggling past the handler).
TEST_F(Http, ChunkedFramingErrorStaysAnErrorForAHandlerThatReadsOn) {
  std::vector<std::string> targets;
  int errors = 0;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    targets.emplace_back(q.target);
    for (int attempt = 0; attempt < 3; ++attempt) {
      try {
        q.read_all();
        break;
      } catch (const fern::http::HttpError&) {
        ++errors;
      }
    }
    r.send("done");
  });
  server.start();
  HttpClient c(server.server_port());
  // The trailer limit is crossed on the LF that ends a trailer line; the
  // request after it would end the connection (never leaves the test waiting).
  c.send("POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + std::string(8189, 'a') +
         "\nGET /smuggled HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(c.read().body, "done");
  EXPECT_TRUE(c.at_eof());
  EXPECT_EQ(targets, std::vector<std::string>{"/body"});
  EXPECT_EQ(errors, 3);
  server.stop();
}

TEST_F(Http, ClientLeavingMidRequestEndsTheConnectionQuietly) {
  fern::Event ended;
  std::string seen;
  int calls = 0;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    ++calls;
    try {
      q.read_all();
    } catch (const fern::http::HttpError& e) {
      seen = e.what();
      ended.set();
      throw;
    }
    r.send("");
  });
  server.start();
  {
    HttpClient c(server.server_port());
    c.send("GET / HTTP/1.1\r\nHost: x\r\nHost");  // half a head: no handler call
  }
  for (const char* half : {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345",  // half a body
                           // half a chunk: test__pywsgi.py::ChunkedInputTests::test_close_before_finished
                           "POST / HTTP/1.1\r\nHost: x\r\ntransfer-encoding: Chunked\r\n\r\n4\r\nthi"}) {
    ended.clear();
    seen.clear();
    {
      HttpClient c(server.server_port());
      c.send(half);
    }
    ended.wait();
    EXPECT_EQ(seen, "the request body ended early") << half;
  }
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(request(server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
  server.stop();
}

TEST_F(Http, ClientLeavingMidResponseEndsTheHandlerWithASocketError) {
  fern::Event ended;
  bool got_socket_error = false;
  HttpServer server(kAny, [&](Request&, Response& r) {
    std::string piece(64 * 1024, 'x');
    try {
      for (int i = 0; i < 10'000; ++i) r.write(piece);  // ~640 MB: far more than the socket buffers
    } catch (const fern::SocketError&) {
      got_socket_error = true;
      ended.set();
      throw;
    }
    ended.set();
  });
  server.start();
  {
    HttpClient c(server.server_port());
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    char buf[1024];
    ASSERT_GT(c.socket().recv_into(buf, sizeof buf), 0u);
  }  // closed with unread data: the server's writes fail
  ended.wait();
  EXPECT_TRUE(got_socket_error);
  server.stop();
}

// ---- Ported from gevent's src/gevent/tests/test__pywsgi.py ----

// A handler that reads at most `n` body bytes (pywsgi's env['wsgi.input'].read(n)),
// answers them and counts its calls: the rest of the body is the server's.
HttpServer::Handler read_up_to(std::size_t n, int& calls) {
  return [n, &calls](Request& q, Response& r) {
    ++calls;
    std::string got(n, '\0');
    std::size_t have = 0, k;
    while (have < n && (k = q.read(got.data() + have, n - have)) > 0) have += k;
    got.resize(have);
    r.send(got);
  };
}

const std::string kChunkedPost =
    "POST /a HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
    "2\r\noh\r\n4\r\n hai\r\n";

// test__pywsgi.py::TestChunkedPost::test_trailers_keepalive_ignored: trailers
// are skipped and the connection serves the next request; a last chunk
// without its CRLF on a Connection: close request is answered too.
// ::test_trailers_close_ignored: a trailer whose name looks like a method is
// still a field line. ::test_trailers_request_smuggling_request_terminates_then_header:
// the bytes after the body's end are the next request (here: 400).
TEST_F(Http, TrailersAreSkippedAndWhatFollowsThemIsTheNextRequest) {
  int calls = 0;
  HttpServer server(kAny, read_up_to(6, calls));
  server.start();
  {
    HttpClient c(server.server_port());
    c.send(kChunkedPost + "0\r\ntrailer1: value1\r\ntrailer2: value2\r\n\r\n");
    HttpReply r = c.read();
    EXPECT_EQ(r.body, "oh hai");
    EXPECT_FALSE(r.has("Connection: close")) << r.head;
    c.send("POST /a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
           "2\r\noh\r\n4\r\n bye\r\n0\r\n");
    EXPECT_EQ(c.read().body, "oh bye");
    EXPECT_TRUE(c.at_eof());
  }
  {
    HttpClient c(server.server_port());
    c.send("POST /a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
           "2\r\noh\r\n4\r\n hai\r\n0\r\nGETpath2a:123 HTTP/1.1\r\nHost: a.com\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(c.read().body, "oh hai");
    EXPECT_TRUE(c.at_eof());
  }
  {
    HttpClient c(server.server_port());
    c.send(kChunkedPost + "0\r\n\r\nHeader: valueGET /path2?a=:123 HTTP/1.1\r\nHost: a.com\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(c.read().body, "oh hai");
    EXPECT_EQ(c.read().status, 400);
    EXPECT_TRUE(c.at_eof());
  }
  EXPECT_EQ(calls, 4);
  server.stop();
}

// test__pywsgi.py::TestChunkedPost::test_trailers_request_smuggling_header_first,
// ::test_trailers_request_smuggling_missing_last_chunk_keep_alive and
// ::test_trailers_too_long (RFC 9112 7.1.2: a trailer line is a field line):
// a request line among the trailers, a last chunk run into a request line,
// or an unending trailer break the framing. The handler (it read its 6
// bytes) is answered, then the connection ends; nothing after the break is
// ever served, not even a request sent once the answer came.
TEST_F(Http, MalformedTrailersEndTheConnectionAfterTheAnswer) {
  const std::string smuggled = "GET /path2?a=:123 HTTP/1.1\r\nHost: a.com\r\nConnection: close\r\n\r\n";
  const std::string tails[] = {
      "0\r\nHeader: value\r\n" + smuggled,        // a request line as a trailer
      "0\r\n trailer: folded\r\n\r\n",            // obs-fold
      "0\r\n: empty name\r\n\r\n",                // an empty field name
      "0\r\nX: a\x01" "b\r\n\r\n",                // a control character
      "0" + smuggled,                             // the last chunk's CRLF missing
      "0\r\ntrailer2: value2" + std::string(8192, 't'),  // never ends
  };
  int calls = 0;
  HttpServer server(kAny, read_up_to(6, calls));
  server.start();
  for (const std::string& tail : tails) {
    calls = 0;
    HttpClient c(server.server_port());
    c.send(kChunkedPost + tail);
    HttpReply r = c.read();
    EXPECT_EQ(r.body, "oh hai");
    c.send("GET /probe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");  // never left waiting
    EXPECT_EQ(c.read().status, 0) << tail.substr(0, 30);
    EXPECT_EQ(calls, 1) << tail.substr(0, 30);
  }
  server.stop();
}

// test__pywsgi.py::ChunkedInputTests::test_short_read: a handler that reads
// 10 bytes of a chunked body; the rest is dropped and the connection serves
// the next request (pywsgi's ping).
TEST_F(Http, ChunkedBodyPartlyReadIsDroppedAndTheConnectionKept) {
  int calls = 0;
  HttpServer server(kAny, read_up_to(10, calls));
  server.start();
  HttpClient c(server.server_port());
  c.send("POST /short-read HTTP/1.1\r\nHost: x\r\ntransfer-encoding: Chunked\r\n\r\n"
         "4\r\nthis\r\n4\r\n is \r\n7\r\nchunked\r\n5\r\n\nline\r\n2\r\n 2\r\n1\r\n\n\r\n5\r\nline3\r\n0\r\n\r\n");
  HttpReply r = c.read();
  EXPECT_EQ(r.body, "this is ch");
  EXPECT_FALSE(r.closed);
  c.send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c.read().body, "");
  EXPECT_EQ(calls, 2);
  server.stop();
}

// test__pywsgi.py::TestChunkedPost::test_229_correct_chunk_quoted_ext,
// ::test_229_correct_chunk_token_ext (extensions skipped) and
// ::test_229_incorrect_chunk_token_ext_too_long (400). ChunkedInputTests::
// test_dirt sends "; here is dirt\0bla" and pywsgi skips it; a NUL is in
// neither a token nor a quoted-string (RFC 9112 7.1.1) and fern keeps
// control characters out of framing lines: 400.
TEST_F(Http, ChunkExtensionsAreSkippedUnlessTooLongOrHoldingAControl) {
  HttpServer server(kAny, echo);
  server.start();
  const std::string head = "POST /a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(request(server, head + "2;token=\"oh hi\"\r\noh\r\n4\r\n hai\r\n0\r\n\r\n").body, "POST /a oh hai");
  EXPECT_EQ(request(server, head + "2;token=oh_hi\r\noh\r\n4\r\n hai\r\n0\r\n\r\n").body, "POST /a oh hai");
  std::string too_long = "2;token=";
  for (int i = 0; i < 4000; ++i) too_long += "_oh_hi";
  EXPECT_EQ(request(server, head + too_long + "\r\noh\r\n4\r\n hai\r\n0\r\n\r\n").status, 400);
  EXPECT_EQ(request(server, head + "4; here is dirt" + std::string(1, '\0') + "bla\r\nthis\r\n0\r\n\r\n").status, 400);
  server.stop();
}

// test__pywsgi.py::Expect100ContinueTests::test_continue: a handler that
// refuses a body it did not read (417). pywsgi then waits for the body the
// client may never send; fern closes instead, and the 417 says so
// (RFC 9110 10.1.1), so the client knows to reconnect. Either way a request
// inside that body is never served. Then a client that sends its body
// without waiting gets it read (a 100 first, or none if the body was already
// there: RFC 9110 10.1.1 allows both).
TEST_F(Http, ExpectContinueRefusedUnreadSaysCloseAndItsBodyIsNeverARequest) {
  int calls = 0;
  HttpServer server(kAny, [&calls](Request& q, Response& r) {
    ++calls;
    if (*q.content_length > 1024) {
      r.set_status(417);
      r.send("failure");
      return;
    }
    r.send(q.read_all());
  });
  server.start();
  std::string inner = "PUT / HTTP/1.1\r\nHost: localhost\r\nContent-length: 947\r\nExpect: 100-continue\r\n\r\n" +
                      std::string(947, 'a');
  ASSERT_GT(inner.size(), 1024u);
  {
    HttpClient c(server.server_port());
    c.send("PUT / HTTP/1.1\r\nHost: localhost\r\nContent-length: " + std::to_string(inner.size()) +
           "\r\nExpect: 100-continue\r\n\r\n" + inner);
    HttpReply r = c.read();
    EXPECT_EQ(r.status, 417);
    EXPECT_EQ(r.body, "failure");
    EXPECT_TRUE(r.has("Connection: close")) << r.head;
    EXPECT_TRUE(c.at_eof());
  }
  EXPECT_EQ(calls, 1);
  HttpClient c(server.server_port());
  c.send("PUT / HTTP/1.1\r\nHost: localhost\r\nContent-length: 7\r\nExpect: 100-continue\r\n\r\ntesting");
  HttpReply r = c.read();
  if (r.status == 100) r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "testing");
  EXPECT_FALSE(r.closed);
  server.stop();
}

// test__pywsgi.py::BadRequestTests (a negative or non-numeric Content-Length,
// a request line with '%'; pywsgi accepts 200 or 400, fern answers 400) and
// ::Test414 (20000 bytes of target on HTTP/1.0 over the default limit):
// never the handler.
TEST_F(Http, BadContentLengthOrRequestLineNeverReachesTheHandler) {
  int calls = 0;
  HttpServer server(kAny, counting_echo(calls));
  server.start();
  struct Case {
    std::string bytes;
    int status;
  } cases[] = {
      {"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: -100\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 18446744073709551616\r\n\r\n", 400},
      {"GET / HTTP %\r\n", 400},
      {"GET /" + std::string(20000, 'x') + " HTTP/1.0\r\nHello: world\r\n\r\n", 414},
      // ChunkedInputTests::test_short_read_with_content_length, TestChunkedPost::
      // test_229_incorrect_chunk_no_newline: pywsgi lets Transfer-Encoding win over
      // Content-Length; fern refuses both framings at once (RFC 9112 6.3 allows it).
      {"POST /short-read HTTP/1.1\r\nHost: x\r\ntransfer-encoding: Chunked\r\nContent-Length:1000\r\n\r\n0\r\n\r\n", 400},
  };
  for (const Case& k : cases) {
    HttpClient c(server.server_port());
    c.send(k.bytes);
    HttpReply r = c.read();
    EXPECT_EQ(r.status, k.status) << k.bytes.substr(0, 60);
    EXPECT_TRUE(c.at_eof());
  }
  EXPECT_EQ(calls, 0);
  server.stop();
}

// test__pywsgi.py::MultipleCookieHeadersTest: repeated fields reach the
// handler, each once and in order (pywsgi joins them into one environ
// value; request.header() is the first, request.headers has them all).
TEST_F(Http, RepeatedHeaderFieldsAreAllKeptInOrder) {
  std::vector<std::string> cookies, cookies2;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    for (const auto& [name, value] : q.headers) {
      if (fern::http::iequals(name, "cookie")) cookies.emplace_back(value);
      if (fern::http::iequals(name, "cookie2")) cookies2.emplace_back(value);
    }
    r.send("");
  });
  server.start();
  EXPECT_EQ(request(server, "GET / HTTP/1.1\r\nHost: localhost\r\nCookie: name1=\"value1\"\r\n"
                            "Cookie2: nameA=\"valueA\"\r\nCookie2: nameB=\"valueB\"\r\nCookie: name2=\"value2\"\r\n\r\n")
                .status,
            200);
  EXPECT_EQ(cookies, (std::vector<std::string>{"name1=\"value1\"", "name2=\"value2\""}));
  EXPECT_EQ(cookies2, (std::vector<std::string>{"nameA=\"valueA\"", "nameB=\"valueB\""}));
  server.stop();
}

// test__pywsgi.py::TestInvalidEnviron and ::TestInvalidHeadersDropped: the
// handler sees only the fields the client sent (no Content-Length made up
// for a request without one), under their own names: pywsgi drops
// "x-auth_user", whose environ key would pass for X-Auth-User's; fern's
// lookup matches names, never folds '_' into '-'.
TEST_F(Http, HandlerSeesOnlyTheFieldsSentUnderTheirOwnNames) {
  int checked = 0;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    EXPECT_FALSE(q.content_length.has_value());
    EXPECT_FALSE(q.chunked);
    EXPECT_FALSE(q.header("Content-Length").has_value());
    EXPECT_FALSE(q.header("Content-Type").has_value());
    EXPECT_FALSE(q.header("X-Auth-User").has_value());
    EXPECT_EQ(q.header("x-auth_user").value_or(""), q.version_minor == 0 ? "bob" : "");
    EXPECT_EQ(q.headers.size(), q.version_minor == 0 ? 2u : 1u);
    ++checked;
    r.send("");
  });
  server.start();
  EXPECT_EQ(request(server, "GET / HTTP/1.0\r\nHost: localhost\r\nx-auth_user: bob\r\n\r\n").status, 200);
  EXPECT_EQ(request(server, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").status, 200);
  EXPECT_EQ(checked, 2);
  server.stop();
}

// RFC 9112 2.2 (a bare LF ends a line) with pywsgi's one-byte client writes
// (ChunkedInputTests::test_short_read_with_content_length's bufsize=1): a
// head, a chunked body and trailers, all LF-ended and written a byte at a
// time, then a pipelined request behind them.
TEST_F(Http, BareLfRequestWrittenAByteAtATimeIsServed) {
  HttpServer server(kAny, echo);
  server.start();
  HttpClient c(server.server_port());
  const std::string bytes = "POST /lf HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n3\nabc\n2;e=f\nde\n0\nT: v\n\n"
                            "GET /next HTTP/1.1\nHost: x\nConnection: close\n\n";
  for (char b : bytes) c.send(std::string(1, b));
  EXPECT_EQ(c.read().body, "POST /lf abcde");
  EXPECT_EQ(c.read().body, "GET /next ");
  EXPECT_TRUE(c.at_eof());
  server.stop();
}


// What follows the head of a response to a Connection: close request.
std::string raw_body(HttpServer& server, const std::string& target) {
  HttpClient c(server.server_port());
  c.send("GET " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(c.at_eof());
  const std::string& raw = c.buffered();
  std::size_t end = raw.find("\r\n\r\n");
  return end == std::string::npos ? "NO HEAD: " + raw : raw.substr(0, 12) + "|" + raw.substr(end + 4);
}

// test__pywsgi.py::TestEmptyYield, ::TestFirstEmptyYield, ::TestEmptyYield304:
// empty writes send nothing (no empty chunk, which would end the body), and
// no garbage follows the response.
TEST_F(Http, EmptyWritesSendNothing) {
  HttpServer server(kAny, [](Request& q, Response& r) {
    if (q.target == "/304") r.set_status(304);
    r.write("");
    r.write(q.target == "/first-empty" ? "hello" : "");
  });
  server.start();
  EXPECT_EQ(raw_body(server, "/empty"), "HTTP/1.1 200|");
  EXPECT_EQ(raw_body(server, "/first-empty"), "HTTP/1.1 200|5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(raw_body(server, "/304"), "HTTP/1.1 304|");
  server.stop();
}

// test__pywsgi.py::TestErrorAfterChunk: a handler that throws after its first
// chunk is reported, and its body is left without the last chunk, so the
// client cannot take the cut response for a whole one; the connection
// closes though the client asked for keep-alive.
TEST_F(Http, ErrorAfterTheFirstChunkLeavesTheBodyUnterminated) {
  std::vector<std::string> errors;
  ServerOptions o;
  o.on_error = [&](const std::exception& e) { errors.push_back(e.what()); };
  HttpServer server(kAny, [](Request&, Response& r) {
    r.write("hello");
    throw std::runtime_error("after a chunk");
  }, o);
  server.start();
  EXPECT_EQ(raw_body(server, "/"), "HTTP/1.1 200|5\r\nhello\r\n");
  HttpClient c(server.server_port());
  c.send("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_TRUE(c.at_eof());
  EXPECT_EQ(errors, (std::vector<std::string>{"after a chunk", "after a chunk"}));
  server.stop();
}

}  // namespace
