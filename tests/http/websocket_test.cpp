// The WebSocket server (issue 10, RFC 6455): the handshake, messages in
// fragments with a ping between them, the close handshake both ways, the
// close codes of protocol errors, and a real client (websocket-client).
#include <malloc.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

#include "fern/core/task.h"
#include "fern/io/http/server.h"
#include "fern/io/http/websocket.h"
#include "fern/io/subprocess.h"
#include "fern/sync/event.h"
#include "http_client.h"
#include "io/io_fixture.h"

namespace {

using fern::Address;
using fern::http::HttpServer;
using fern::http::Request;
using fern::http::Response;
using fern::http::WebSocket;
using fern::testing::HttpClient;
using WebSocketIo = fern::testing::IoTest;

const Address kAny = Address::ip("127.0.0.1", 0);
const char kUpgrade[] =
    "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

// A masked client frame.
std::string frame(int first_byte, const std::string& payload) {
  const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  return fern::testing::masked_frame(first_byte, payload, mask);
}

// The next server frame from the client's buffer: (first byte, payload).
std::pair<int, std::string> server_frame(HttpClient& c) {
  std::string& b = c.buffered();
  auto need = [&](std::size_t n) {
    while (b.size() < n) {
      char tmp[65536];
      std::size_t k = c.socket().recv_into(tmp, sizeof tmp);
      if (k == 0) return false;
      b.append(tmp, k);
    }
    return true;
  };
  if (!need(2)) return {-1, ""};
  std::size_t len = b[1] & 0x7f, pos = 2;
  if (len >= 126) {
    std::size_t bytes = len == 126 ? 2 : 8;
    if (!need(2 + bytes)) return {-1, ""};
    len = 0;
    for (std::size_t i = 0; i < bytes; ++i) len = len << 8 | static_cast<unsigned char>(b[2 + i]);
    pos += bytes;
  }
  if (!need(pos + len)) return {-1, ""};
  std::pair<int, std::string> f{static_cast<unsigned char>(b[0]), b.substr(pos, len)};
  b.erase(0, pos + len);
  return f;
}

std::string code_bytes(int code) { return {static_cast<char>(code >> 8), static_cast<char>(code & 0xff)}; }

struct Echo {
  std::vector<std::string> got;
  int close_code = 0;
  fern::Event done;
  void operator()(Request& q, Response& r) {
    WebSocket ws = WebSocket::accept(q, r);
    while (auto m = ws.receive()) {
      got.push_back(m->data);
      if (m->text) ws.send_text(m->data);
      else ws.send_binary(m->data);
    }
    close_code = ws.close_code();
    done.set();
  }
};

// Starts `server` and opens a WebSocket to it: the handshake sent and
// answered 101 (checked). receive_buffer as HttpClient's.
HttpClient open_websocket(HttpServer& server, int receive_buffer = 0) {
  server.start();
  HttpClient c(server.server_port(), receive_buffer);
  c.send(kUpgrade);
  EXPECT_EQ(c.read().status, 101);
  return c;
}

TEST_F(WebSocketIo, HandshakeAnswers101WithTheRfcAcceptKey) {
  Echo echo;
  HttpServer server(kAny, std::ref(echo));
  server.start();
  HttpClient c(server.server_port());
  c.send(kUpgrade);
  fern::testing::HttpReply r = c.read();
  EXPECT_EQ(r.status, 101);
  EXPECT_TRUE(r.has("Upgrade: websocket"));
  EXPECT_TRUE(r.has("Connection: Upgrade"));
  EXPECT_TRUE(r.has("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
  c.send(frame(0x88, code_bytes(1000)));
  EXPECT_EQ(server_frame(c), std::make_pair(0x88, code_bytes(1000)));
  echo.done.wait();
  EXPECT_EQ(echo.close_code, 1000);
  server.stop();
}

// RFC 6455 4.1, 4.4: the 426 names the version the server speaks; an
// HTTP/1.0 request is no handshake.
TEST_F(WebSocketIo, BadHandshakesGet400Or426) {
  Echo echo;
  HttpServer server(kAny, std::ref(echo));
  server.start();
  std::string no_key = kUpgrade, old_version = kUpgrade, short_key = kUpgrade, http10 = kUpgrade;
  no_key.replace(no_key.find("Sec-WebSocket-Key"), 3, "X-Y");
  old_version.replace(old_version.find("Version: 13"), 11, "Version: 8");
  short_key.replace(short_key.find("dGhl"), 4, "");
  http10.replace(http10.find("HTTP/1.1"), 8, "HTTP/1.0");
  for (auto [req, status] : {std::pair{no_key, 400}, {old_version, 426}, {short_key, 400}, {http10, 400}}) {
    HttpClient c(server.server_port());
    c.send(req);
    fern::testing::HttpReply r = c.read();
    EXPECT_EQ(r.status, status) << req;
    EXPECT_EQ(r.has("Sec-WebSocket-Version: 13"), status == 426) << r.head;
  }
  EXPECT_TRUE(echo.got.empty());
  server.stop();
}

// Fragments are joined; a ping between them is answered first (RFC 6455 5.4).
TEST_F(WebSocketIo, FragmentsAreJoinedAndAPingInBetweenIsAnswered) {
  Echo echo;
  HttpServer server(kAny, std::ref(echo));
  HttpClient c = open_websocket(server);
  c.send(frame(0x01, "Hel") + frame(0x89, "ping!") + frame(0x00, "l") + frame(0x80, "o"));
  EXPECT_EQ(server_frame(c), std::make_pair(0x8A, std::string("ping!")));
  EXPECT_EQ(server_frame(c), std::make_pair(0x81, std::string("Hello")));
  c.send(frame(0x82, std::string("\0\xff", 2)));
  EXPECT_EQ(server_frame(c), std::make_pair(0x82, std::string("\0\xff", 2)));
  c.send(frame(0x88, ""));  // a close without a code: answered with 1000
  EXPECT_EQ(server_frame(c), std::make_pair(0x88, code_bytes(1000)));
  echo.done.wait();
  EXPECT_EQ(echo.close_code, 1005);
  EXPECT_EQ(echo.got, (std::vector<std::string>{"Hello", std::string("\0\xff", 2)}));
  server.stop();
}

// A big message grows the connection's buffer; once it is consumed the
// buffer goes back to its first size: a connection that once received a
// 16 MiB message does not keep 32 MiB for the rest of its life.
TEST_F(WebSocketIo, BufferGrownForABigMessageIsGivenBackAfterIt) {
  // Heap bytes in use: small chunks and mmapped big ones.
  auto heap = [] {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
  };
  if (heap() == 0) GTEST_SKIP() << "no malloc statistics here";
  std::vector<std::size_t> in_use;  // after each message, in the handler
  HttpServer server(kAny, [&](Request& q, Response& r) {
    WebSocket ws = WebSocket::accept(q, r);
    while (auto m = ws.receive()) {
      std::size_t size = m->data.size();
      m.reset();
      in_use.push_back(heap());
      ws.send_text(std::to_string(size));
    }
  });
  HttpClient c = open_websocket(server);
  c.send(frame(0x81, "before"));
  EXPECT_EQ(server_frame(c), std::make_pair(0x81, std::string("6")));
  c.send(frame(0x82, std::string(4u << 20, 'x')));
  EXPECT_EQ(server_frame(c), std::make_pair(0x81, std::to_string(4u << 20)));
  c.send(frame(0x81, "after"));
  EXPECT_EQ(server_frame(c), std::make_pair(0x81, std::string("5")));
  c.send(frame(0x88, code_bytes(1000)));
  EXPECT_EQ(server_frame(c).first, 0x88);
  server.stop();
  ASSERT_EQ(in_use.size(), 3u);
  EXPECT_LT(in_use[2], in_use[0] + (256u << 10)) << "before " << in_use[0] << ", after " << in_use[2];
}

TEST_F(WebSocketIo, ProtocolErrorsCloseWithTheirCodes) {
  std::string unmasked = "\x81\x02hi";
  struct Case {
    std::string frames;
    int code;
  } cases[] = {
      {unmasked, 1002},
      {frame(0x81, "\xc3\x28"), 1007},              // not UTF-8
      {frame(0x01, "ok") + frame(0x80, "\xce"), 1007},  // cut short at the message's end
      {frame(0x80, "x"), 1002},                     // a continuation without a message
      {frame(0x01, "a") + frame(0x81, "b"), 1002},  // a new message inside a fragmented one
      {frame(0x88, "\x03"), 1002},                  // a one-byte close payload
      {frame(0x88, code_bytes(1005)), 1002},        // a code nobody may send
      {frame(0x82, std::string(200, 'x')), 1009},
  };
  for (const Case& k : cases) {
    Echo one;
    HttpServer s(kAny, [&one](Request& q, Response& r) {
      WebSocket ws = WebSocket::accept(q, r, WebSocket::Options{100});
      while (ws.receive()) {
      }
      one.close_code = ws.close_code();
      one.done.set();
    });
    s.start();
    HttpClient c(s.server_port());
    c.send(kUpgrade);
    ASSERT_EQ(c.read().status, 101);
    c.send(k.frames);
    auto [op, payload] = server_frame(c);
    EXPECT_EQ(op, 0x88);
    EXPECT_EQ(payload.substr(0, 2), code_bytes(k.code)) << k.code;
    one.done.wait();
    EXPECT_EQ(one.close_code, k.code);
    s.stop();
  }
}

// RFC 6455 8.1 (Autobahn 6.4.x, "fail fast"): a text message fails with
// 1007 at the first fragment that can never be UTF-8; the server does not
// wait for the rest (the client sends none). A code point split across
// fragments is fine.
TEST_F(WebSocketIo, TextFragmentThatCanNeverBeUtf8FailsAtOnce) {
  const std::string kosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";  // "κόσμε"
  const std::string sent_before_the_close[] = {
      frame(0x01, "\xc0\xaf"),                                  // overlong '/'
      frame(0x01, "ok \xed\xa0\x80"),                           // a surrogate
      frame(0x01, "\xfe"),
      frame(0x01, kosme + "\xf4\x90\x80\x80"),                  // above U+10FFFF
      frame(0x01, kosme) + frame(0x00, "\xf4\x90\x80\x80"),     // Autobahn 6.4.1 without "edited"
      frame(0x01, kosme + "\xf4") + frame(0x00, "\x90"),        // 6.4.2 without "\x80\x80edited"
  };
  for (const std::string& frames : sent_before_the_close) {
    Echo echo;
    HttpServer server(kAny, std::ref(echo));
    HttpClient c = open_websocket(server);
    c.send(frames);  // no final fragment follows
    auto [op, payload] = server_frame(c);
    EXPECT_EQ(op, 0x88);
    EXPECT_EQ(payload.substr(0, 2), code_bytes(1007));
    echo.done.wait();
    EXPECT_EQ(echo.close_code, 1007);
    EXPECT_TRUE(echo.got.empty());
    server.stop();
  }
  Echo echo;
  HttpServer server(kAny, std::ref(echo));
  HttpClient c = open_websocket(server);
  c.send(frame(0x01, "caf\xc3") + frame(0x00, "\xa9 \xf0\x9f") + frame(0x80, "\x98\x80"));
  EXPECT_EQ(server_frame(c), std::make_pair(0x81, std::string("caf\xc3\xa9 \xf0\x9f\x98\x80")));
  c.send(frame(0x88, code_bytes(1000)));
  EXPECT_EQ(server_frame(c).first, 0x88);
  echo.done.wait();
  EXPECT_EQ(echo.close_code, 1000);
  server.stop();
}

TEST_F(WebSocketIo, ServerCloseWaitsForTheClientsCloseFrame) {
  fern::Event closed;
  bool was_closed = false;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    WebSocket ws = WebSocket::accept(q, r);
    ws.send_text("bye soon");
    ws.close(1001, "going away");
    was_closed = ws.closed();
    EXPECT_THROW(ws.send_text("late"), fern::http::WebSocketError);
    closed.set();
  });
  HttpClient c = open_websocket(server);
  EXPECT_EQ(server_frame(c), std::make_pair(0x81, std::string("bye soon")));
  EXPECT_EQ(server_frame(c), std::make_pair(0x88, code_bytes(1001) + "going away"));
  c.send(frame(0x88, code_bytes(1001)));
  closed.wait();
  EXPECT_TRUE(was_closed);
  server.stop();
}

// A client that resets its socket right after its close frame (as many
// do) ends the handshake all the same: receive() returns nullopt with the
// client's code, as gevent-websocket's receive() returns None, instead of
// throwing the reset that answering the close runs into.
TEST_F(WebSocketIo, ClientGoneRightAfterItsCloseFrameStillEndsReceiveWithItsCode) {
  fern::Event done;
  bool returned = false;
  std::string error;
  int code = 0;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    WebSocket ws = WebSocket::accept(q, r);
    try {
      while (ws.receive()) {
      }
      returned = true;
    } catch (const std::exception& e) {
      error = e.what();
    }
    code = ws.close_code();
    done.set();
  });
  HttpClient c = open_websocket(server);
  c.send(frame(0x88, code_bytes(1001)));
  linger reset{1, 0};  // close() sends RST: answering the close fails
  ASSERT_EQ(::setsockopt(c.socket().fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
  c.close();
  done.wait();
  EXPECT_TRUE(returned) << error;
  EXPECT_EQ(code, 1001);
  server.stop();
}

// What RFC 6455 forbids a server to send is refused before anything is
// written (std::invalid_argument); the largest allowed control frames go.
TEST_F(WebSocketIo, FramesTheRfcForbidsAreRefusedBeforeAnythingIsSent) {
  std::vector<std::string> refused;
  fern::Event done;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    WebSocket ws = WebSocket::accept(q, r);
    auto refuse = [&](const char* what, auto call) {
      try {
        call();
      } catch (const std::invalid_argument&) {
        refused.push_back(what);
      }
    };
    std::string two_byte_chars;  // 124 bytes: the 123-byte cut would split a character
    for (int i = 0; i < 62; ++i) two_byte_chars += "\xc3\xa9";
    refuse("ping 126", [&] { ws.ping(std::string(126, 'p')); });
    refuse("text", [&] { ws.send_text("caf\xc3"); });
    for (int code : {1005, 1006, 1015, 1004, 999, 5000})
      refuse("code", [&] { ws.close(static_cast<std::uint16_t>(code)); });
    refuse("long reason", [&] { ws.close(1000, two_byte_chars); });
    refuse("reason", [&] { ws.close(1000, "\xff"); });
    ws.ping(std::string(125, 'p'));
    ws.close(1000, std::string(123, 'r'));
    done.set();
  });
  HttpClient c = open_websocket(server);
  EXPECT_EQ(server_frame(c), std::make_pair(0x89, std::string(125, 'p')));
  EXPECT_EQ(server_frame(c), std::make_pair(0x88, code_bytes(1000) + std::string(123, 'r')));
  c.send(frame(0x88, code_bytes(1000)));
  done.wait();
  EXPECT_EQ(refused, (std::vector<std::string>{"ping 126", "text", "code", "code", "code", "code", "code", "code",
                                               "long reason", "reason"}));
  server.stop();
}

// Two greenlets sending large frames at once through a small window (their
// writes are partial and wait): each frame arrives whole.
TEST_F(WebSocketIo, FramesFromTwoSendersNeverInterleave) {
  HttpServer server(kAny, [](Request& q, Response& r) {
    WebSocket ws = WebSocket::accept(q, r);
    auto sender = [&ws](char c) {
      return fern::spawn([&ws, c] {
        for (int i = 0; i < 2; ++i) ws.send_binary(std::string(3'000'000, c));
      });
    };
    auto a = sender('a'), b = sender('b');
    fern::joinall(a, b);
    ws.close();
  });
  HttpClient c = open_websocket(server, 4096);
  int frames = 0;
  for (auto f = server_frame(c); f.first == 0x82; f = server_frame(c), ++frames) {
    ASSERT_EQ(f.second.size(), 3'000'000u);
    ASSERT_EQ(f.second.find_first_not_of(f.second[0]), std::string::npos) << "frame " << frames << " interleaved";
  }
  EXPECT_EQ(frames, 4);
  c.send(frame(0x88, code_bytes(1000)));
  server.stop();
}

// A WebSocket kept after its handler returned is closed: sending throws
// WebSocketError, receiving says nullopt; nothing of the gone connection is
// touched.
TEST_F(WebSocketIo, WebSocketKeptPastItsHandlerIsClosed) {
  std::optional<WebSocket> kept;
  fern::Event returned;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    kept.emplace(WebSocket::accept(q, r));
    returned.set();
  });
  HttpClient c = open_websocket(server);
  returned.wait();
  EXPECT_TRUE(c.at_eof());  // the handler's end closed the connection
  EXPECT_THROW(kept->send_text("late"), fern::http::WebSocketError);
  EXPECT_THROW(kept->ping(), fern::http::WebSocketError);
  EXPECT_EQ(kept->receive(), std::nullopt);
  EXPECT_TRUE(kept->closed());
  EXPECT_EQ(kept->close_code(), 1006);
  kept.reset();
  server.stop();
}

// A handler that returns with its WebSocket open closes it as
// gevent-websocket does: the client gets a close frame (1000) before the
// end of the stream, not an abnormal closure (1006).
TEST_F(WebSocketIo, HandlerReturningWithItsWebSocketOpenSendsAClose) {
  HttpServer server(kAny, [](Request& q, Response& r) {
    WebSocket ws = WebSocket::accept(q, r);
    if (auto m = ws.receive()) ws.send_text(m->data);
  });
  HttpClient c = open_websocket(server);
  c.send(frame(0x81, "last"));
  EXPECT_EQ(server_frame(c), std::make_pair(0x81, std::string("last")));
  EXPECT_EQ(server_frame(c), std::make_pair(0x88, code_bytes(1000)));
  EXPECT_TRUE(c.at_eof());
  EXPECT_TRUE(c.buffered().empty());
  server.stop();
}

// A handler that sends its last message and returns while the client's
// input is unread: the connection closes politely (the input is drained),
// so the client gets all of the message and the close frame, instead of a
// reset that drops what was still queued for it.
TEST_F(WebSocketIo, LastMessageOfAHandlerLeavingInputUnreadIsDelivered) {
  const std::string last(64 * 1024, 'x');
  HttpServer server(kAny, [&](Request& q, Response& r) {
    WebSocket ws = WebSocket::accept(q, r);
    ws.send_binary(last);
  });
  HttpClient c = open_websocket(server, 4096);  // a small window: most of it stays queued at the server
  c.send(frame(0x81, "never read"));
  EXPECT_EQ(server_frame(c), std::make_pair(0x82, last));
  EXPECT_EQ(server_frame(c), std::make_pair(0x88, code_bytes(1000)));
  EXPECT_TRUE(c.at_eof());
  server.stop();
}

// A greenlet blocked sending (the client reads nothing) when the handler
// returns gets an error and unwinds; the handler's end waits for it, so it
// never touches the freed connection (chat-server broadcast pattern).
TEST_F(WebSocketIo, SenderBlockedWhenItsHandlerReturnsGetsAnError) {
  std::shared_ptr<WebSocket> shared;
  fern::Event sending;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    shared = std::make_shared<WebSocket>(WebSocket::accept(q, r));
    sending.wait();
    while (shared->receive()) {
    }
  });
  HttpClient c = open_websocket(server, 4096);
  ASSERT_TRUE(shared);  // the handler ran up to sending.wait() before the 101 was read
  std::string outcome;
  std::size_t handlers_at_error = 0;  // the handler's end waits for the sender: still 1
  auto sender = fern::spawn([&, ws = shared] {
    sending.set();
    try {
      for (;;) ws->send_binary(std::string(1 << 20, 'x'));
    } catch (const fern::http::WebSocketError&) {
      outcome = "WebSocketError";
    } catch (const std::system_error&) {
      outcome = "socket error";
    }
    handlers_at_error = server.connection_count();
  });
  sending.wait();
  c.socket().shutdown(SHUT_WR);  // the handler's receive() sees the end and it returns
  sender.join();
  EXPECT_FALSE(outcome.empty());
  EXPECT_EQ(handlers_at_error, 1u);
  shared.reset();
  server.stop();
}

// close() from a second greenlet while the handler is in receive(): the
// close frame goes out, the reader reads the client's answer and ends the
// handshake; neither throws.
TEST_F(WebSocketIo, CloseFromAnotherGreenletLetsTheReaderEndTheHandshake) {
  std::string closer_error = "none";
  bool got_message = true;
  int code = 0;
  fern::Event done;
  HttpServer server(kAny, [&](Request& q, Response& r) {
    WebSocket ws = WebSocket::accept(q, r);
    auto closer = fern::spawn([&] {
      try {
        ws.close(1000, "bye");
        closer_error = "";
      } catch (const std::exception& e) {
        closer_error = e.what();
      }
    });
    got_message = ws.receive().has_value();
    closer.join();
    code = ws.close_code();
    done.set();
  });
  HttpClient c = open_websocket(server);
  EXPECT_EQ(server_frame(c), std::make_pair(0x88, code_bytes(1000) + "bye"));
  c.send(frame(0x88, code_bytes(1000)));
  done.wait();
  EXPECT_EQ(closer_error, "");
  EXPECT_FALSE(got_message);
  EXPECT_EQ(code, 1000);
  server.stop();
}

// Debian's python3 sees python3-websocket; another python3 first on PATH may not.
const char* system_python() { return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3"; }

TEST_F(WebSocketIo, InteroperatesWithWebsocketClient) {
  Echo echo;
  HttpServer server(kAny, std::ref(echo));
  server.start();
  fern::Popen client({system_python(), FERN_WS_INTEROP_CLIENT, std::to_string(server.server_port())},
                     fern::PopenOptions{fern::Stdio::kDevNull, fern::Stdio::kPipe, fern::Stdio::kPipe});
  fern::Output out = client.communicate({}, 30.0);
  int rc = client.wait();
  if (rc == 77) {
    server.stop();
    GTEST_SKIP() << "python3 module websocket (Debian python3-websocket) not installed";
  }
  EXPECT_EQ(rc, 0) << out.err;
  EXPECT_EQ(out.out,
            "text h\xc3\xa9llo\n"
            "binary 2 0001ff\n"
            "big 70000\n"
            "pong 10 are you there\n"
            "fragmented Hello\n"
            "closed False\n");
  echo.done.wait();
  EXPECT_EQ(echo.close_code, 1001);
  server.stop();
}

}  // namespace
