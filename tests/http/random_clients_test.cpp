// Seeded random programs of hostile HTTP and WebSocket clients against one
// HttpServer on loopback whose handler echoes "<method> <target> <body>"
// (sized; streamed for /stream; without reading the body for /skip) and
// turns /ws into a WebSocket echo. Each client greenlet opens
// connections one after another; on each, a writer greenlet sends a random
// plan (well-formed GET and POST requests, Content-Length or chunked bodies
// of 0..200 KiB, HTTP/1.0 and keep-alive variants, Expect: 100-continue)
// cut into random-sized writes that straddle the requests (pipelining),
// while the reader reads the responses in random, sometimes tiny, pieces.
// A plan ends in one of: nothing (the client closes), a request that closes
// (HTTP/1.0, Connection: close), a malformed request, a cut in the middle
// of a head or a body, a close before reading the responses, or a
// WebSocket session (masked text and binary messages, fragmented ones with
// pings between the fragments, then a close handshake or an abrupt close
// anywhere), or a half-close (SHUT_WR) after the last request.
// Invariants: every well-formed request sent whole on a connection still
// open gets exactly one response, in order, echoing its body byte for byte
// (a 100 Continue may precede it); a HEAD gets GET's Content-Length and no
// body, a close the server decides itself is announced (Connection: close;
// one case excepted: a chunked body left unread over 64 KiB, README) and
// one it does not announce does not happen; a malformed request gets its
// documented status (400, 413, 414, 431, 501, 505), then the end; every
// WebSocket message comes back intact and in order and a close gets a
// close; every client ends, stop() returns promptly, and the fixture finds
// no fd, timer or greenlet left.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "fern/core/clock.h"
#include "fern/core/task.h"
#include "fern/io/http/server.h"
#include "fern/io/http/websocket.h"
#include "fern/io/socket.h"
#include "http_client.h"
#include "io/io_fixture.h"
#include "random_program.h"

namespace {

using fern::Address;
using fern::http::HttpServer;
using fern::http::Request;
using fern::http::Response;
using fern::http::WebSocket;
using RandomClients = fern::testing::IoTest;

constexpr std::uint64_t kMaxBody = 1u << 20;

void echo_handler(Request& request, Response& response) {
  if (request.path() == "/ws" && WebSocket::is_upgrade(request)) {
    WebSocket ws = WebSocket::accept(request, response);
    while (auto m = ws.receive()) m->text ? ws.send_text(m->data) : ws.send_binary(m->data);
    return;
  }
  std::string echoed = std::string(request.method) + " " + std::string(request.target) + " ";
  if (request.path() == "/skip") return response.send(echoed);  // the body left unread
  echoed += request.read_all();
  if (request.path() != "/stream") return response.send(echoed);
  // Streamed (chunked on 1.1, raw then close on 1.0) in pieces of sizes the body decides.
  for (std::size_t at = 0, i = 0; at < echoed.size(); ++i) {
    std::size_t n = std::min<std::size_t>(echoed.size() - at, 1 + (i * 7919 + echoed.size()) % 20000);
    response.write(std::string_view(echoed).substr(at, n));
    at += n;
  }
}

// What the reader expects for one piece of the plan.
struct Expect {
  enum Kind { kEcho, kError } kind = kEcho;
  std::string body;  // kEcho: the echoed "<method> <target> <body>"
  int status = 200;
  bool closes = false;  // the server closes after this response
  bool head_only = false;  // a HEAD: Content-Length as GET's, no body
  bool announced = false;  // the server's own close: its response says Connection: close
  // A chunked body left unread and over the 64 KiB the server drops to keep
  // the connection: it may close after this response, unannounced (it cannot
  // know when the response begins; README).
  bool may_close = false;
  std::string why;  // the request line and what makes it close
};

// One random connection: the bytes to send, the cut (if any) and what comes back.
struct Plan {
  std::string bytes;
  std::vector<Expect> expect;
  // The bytes of `bytes` to send (less: cut); responses expected only for
  // the first `whole` entries of `expect`.
  std::size_t send_bytes = 0;
  std::size_t whole = 0;
  bool read_then_close = true;  // false: close after reading only `read_only` responses
  std::size_t read_only = 0;
  bool websocket = false;
  bool half_close = false;  // shutdown(SHUT_WR) after the last byte: every response, then the end
  std::string ending;  // for a failure's message
  std::string describe() const {
    std::string out = "plan (" + ending + ", " + std::to_string(send_bytes) + " of " + std::to_string(bytes.size()) + " bytes sent):";
    for (const Expect& e : expect) out += "\n  " + e.why + (e.closes ? " [closes]" : "") + (e.may_close ? " [may close]" : "");
    return out;
  }
};

struct World {
  explicit World(std::uint32_t seed) : rng(seed) {}
  std::mt19937 rng;
  std::uint16_t port = 0;
  std::vector<std::string> failures;
  std::vector<fern::AnyTask> tasks;
  unsigned next_byte = 0;
  int requests_echoed = 0, errors_seen = 0, ws_messages = 0;

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }
  bool chance(int one_in) { return pick(one_in) == 0; }
  std::size_t body_size() {
    switch (pick(4)) {
      case 0: return 0;
      case 1: return 1 + pick(100);
      case 2: return 1 + pick(8000);
      default: return pick(200 * 1024 + 1);
    }
  }
  std::string payload(std::size_t n, bool text) {
    std::string s(n, '\0');
    for (char& c : s) c = text ? static_cast<char>('a' + next_byte++ % 26) : static_cast<char>(next_byte++ * 7 + 3);
    return s;
  }
  void fail(const std::string& where, const std::string& what) {
    if (failures.size() < 20) failures.push_back(where + ": " + what);
  }

  void well_formed(Plan& p, bool last);
  void malformed(Plan& p);
  Plan plan();
  void client(int id);
  void connection(const std::string& where);
};

std::string chunked(World& w, const std::string& body) {
  std::string out;
  for (std::size_t at = 0; at < body.size();) {
    std::size_t n = std::min<std::size_t>(body.size() - at, 1 + w.pick(w.chance(2) ? 70000 : 300));
    char size[32];
    std::snprintf(size, sizeof size, w.chance(2) ? "%zx" : "%zX", n);
    out += size;
    if (w.chance(5)) out += ";ext=1";
    out += "\r\n" + body.substr(at, n) + "\r\n";
    at += n;
  }
  return out + "0\r\n" + (w.chance(4) ? "X-Trailer: t\r\n" : "") + "\r\n";
}

// A well-formed request; `last`: it may end the connection (1.0, close).
void World::well_formed(Plan& p, bool last) {
  int kind = pick(6);  // 0: /skip (the body is not read), 1: /stream, else an echo
  std::string target = (kind == 0 ? "/skip" : kind == 1 ? "/stream" : "/r") + std::to_string(pick(1000)) +
                       (chance(3) ? "?q=" + std::to_string(pick(99)) : "");
  if (kind == 0 || kind == 1) target.insert(kind == 0 ? 5 : 7, "?");  // the path is exactly /skip or /stream
  bool http10 = chance(6);
  bool closes = last && (http10 || chance(3));
  std::string head;
  std::string body;
  std::string method = chance(8) ? "HEAD" : chance(3) ? "GET" : "POST";
  if (kind == 1 && method == "HEAD") method = "GET";
  if (method == "POST") body = payload(body_size(), chance(2));
  bool use_chunked = !http10 && method == "POST" && chance(2);
  if (chance(8)) head = "\r\n";  // RFC 9112 2.2: an empty line before a request is ignored
  head += method + " " + target + (http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  if (!http10 || chance(2)) head += "Host: example\r\n";
  if (http10 && !closes) head += "Connection: keep-alive\r\n";
  if (!http10 && closes) head += "Connection: close\r\n";
  if (!http10 && !closes && chance(3)) head += "Connection: keep-alive\r\n";
  if (chance(4)) head += "X-Pad: " + std::string(pick(2000), 'p') + "\r\n";
  bool expect100 = !http10 && method == "POST" && chance(6);
  if (expect100) head += "Expect: 100-continue\r\n";
  std::string framed;
  if (use_chunked) {
    head += chance(2) ? "Transfer-Encoding: chunked\r\n" : "transfer-encoding: Chunked\r\n";
    framed = chunked(*this, body);
  } else {
    if (method == "POST" || chance(4)) head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    framed = body;
  }
  p.bytes += head + "\r\n" + framed;
  Expect e{Expect::kEcho, method + " " + target + " " + (kind == 0 ? "" : body), 200, closes, method == "HEAD"};
  e.why = head.substr(head[0] == '\r' ? 2 : 0, head.find('\n', 2) - (head[0] == '\r' ? 2 : 0)) + (use_chunked ? " chunked " : " sized ") + std::to_string(body.size());
  // The server's own close is announced (Connection: close); one the client
  // asked for is not repeated.
  if (kind == 0 && !use_chunked && body.size() > 64 * 1024) {  // README: closes at once
    e.announced = !e.closes;
    e.closes = true;
    e.why += ", left unread, over 64 KiB";
  }
  if (kind == 0 && expect100 && (use_chunked || !body.empty())) {
    e.announced = !e.closes;
    e.closes = true;  // no 100 sent
    e.why += ", left unread after Expect: 100-continue";
  }
  if (kind == 0 && use_chunked && body.size() > 60 * 1024) e.may_close = true;
  if (kind == 1 && http10 && method != "HEAD") e.closes = e.announced = true;  // raw, then the end (1.0 always says)
  p.expect.push_back(e);
}

void World::malformed(Plan& p) {
  std::string head;
  int status = 400;
  switch (pick(14)) {
    case 0: head = "GARBAGE\r\n\r\n"; break;
    case 1: head = "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"; break;
    case 2: head = "GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"; break;
    case 3: head = "GET / HTTP/1.1\r\nHost : x\r\n\r\n"; break;
    case 4:
      head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
      break;
    case 5: head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"; break;
    case 6:
      head = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(70000, 'b') + "\r\n\r\n";
      status = 431;
      break;
    case 7:
      head = "GET /" + std::string(9000, 'l') + " HTTP/1.1\r\nHost: x\r\n\r\n";
      status = 414;
      break;
    case 8:
      head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
      status = 501;
      break;
    case 9:
      head = "GET / HTTP/2.0\r\nHost: x\r\n\r\n";
      status = 505;
      break;
    case 10:
      head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(kMaxBody + 1) + "\r\n\r\n";
      status = 413;
      break;
    case 11: head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"; break;
    case 12: head = "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n"; break;
    case 13: head = "GET / HTTP/1.1\r\n\r\n"; break;  // no Host
  }
  p.bytes += head;
  p.expect.push_back({Expect::kError, "", status, true});
  p.expect.back().why = "malformed: " + head.substr(0, std::min<std::size_t>(head.find('\n'), 60));
}

Plan World::plan() {
  Plan p;
  int n = pick(5);
  for (int i = 0; i < n; ++i) well_formed(p, false);
  int ending = pick(8);
  static const char* const kEndings[] = {"a request that closes", "malformed", "cut in a head", "cut in a body",
                                         "close before reading", "websocket", "half-close", "the client closes"};
  p.ending = kEndings[ending];
  if (ending == 0) {  // a request that closes the connection
    well_formed(p, true);
  } else if (ending == 1) {
    malformed(p);
  } else if (ending == 2 || ending == 3) {  // a cut in a head or in a body
    std::size_t before = p.bytes.size();
    well_formed(p, false);
    std::size_t head_end = p.bytes.find("\r\n\r\n", before) + 4;
    p.send_bytes = ending == 2 || head_end == p.bytes.size() ? before + pick(int(head_end - before - 1))
                                                              : head_end + pick(int(p.bytes.size() - head_end));
    p.whole = p.expect.size() - 1;
    return p;
  } else if (ending == 4) {  // a close before reading (all) the responses
    p.read_then_close = false;
    p.read_only = pick(n + 1);
  } else if (ending == 5) {
    // An upgrade waits for the responses before it: after one the server
    // may or may not close, a request whose response says which comes first.
    while (!p.expect.empty() && p.expect.back().may_close) well_formed(p, false);
    p.websocket = true;
  } else if (ending == 6) {
    p.half_close = true;
  }
  p.send_bytes = p.bytes.size();
  p.whole = p.expect.size();
  return p;
}

bool has_line(const std::string& head, const std::string& line) {
  return ("\r\n" + head).find("\r\n" + line + "\r\n") != std::string::npos;
}

std::optional<std::size_t> content_length(const std::string& head) {
  std::string lower = head;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::size_t at = lower.find("\r\ncontent-length: ");
  if (at == std::string::npos) return std::nullopt;
  return std::strtoull(lower.c_str() + at + 18, nullptr, 10);
}

// The reader's side of a connection: random, sometimes tiny, reads.
class Reader {
 public:
  Reader(World& w, fern::Socket& s) : w_(w), s_(s) {}
  bool need(std::size_t n) {
    while (buf_.size() < n) {
      std::size_t want = w_.chance(3) ? 1 + w_.pick(7) : 65536;
      std::size_t at = buf_.size();
      buf_.resize(at + want);  // greenlet stacks are small: the buffer is the heap's
      std::size_t k = s_.recv_into(buf_.data() + at, want);
      buf_.resize(at + k);
      if (k == 0) return false;
    }
    return true;
  }
  // Reads up to and including "\r\n\r\n"; "" at the end of the stream.
  std::string head() {
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!need(buf_.size() + 1)) return "";
    std::string h = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    return h;
  }
  std::string take(std::size_t n) {
    std::string s = buf_.substr(0, n);
    buf_.erase(0, n);
    return s;
  }
  // A response's body after its head `h`: sized, chunked or to the end; nullopt if cut short.
  std::optional<std::string> body(const std::string& h) {
    if (auto cl = content_length(h)) return need(*cl) ? std::optional<std::string>(take(*cl)) : std::nullopt;
    if (!has_line(h, "Transfer-Encoding: chunked")) {
      while (need(buf_.size() + 1)) {
      }
      return take(buf_.size());
    }
    std::string out;
    for (;;) {
      std::size_t eol;
      while ((eol = buf_.find("\r\n")) == std::string::npos)
        if (!need(buf_.size() + 1)) return std::nullopt;
      std::size_t n = std::strtoul(buf_.c_str(), nullptr, 16);
      if (!need(eol + 2 + n + 2)) return std::nullopt;
      out += buf_.substr(eol + 2, n);
      take(eol + 2 + n + 2);
      if (n == 0) return out;
    }
  }
  // True when nothing more comes: the end of the stream (a reset counts).
  bool at_eof() {
    try {
      return buf_.empty() && !need(1);
    } catch (const fern::SocketError&) {
      return buf_.empty();
    }
  }

 private:
  World& w_;
  fern::Socket& s_;
  std::string buf_;
};

// A masked client frame.
std::string frame(World& w, int first_byte, const std::string& payload) {
  unsigned char mask[4];
  for (auto& m : mask) m = static_cast<unsigned char>(w.pick(256));
  return fern::testing::masked_frame(first_byte, payload, mask);
}

// Sends `bytes` in random-sized writes; false if the connection failed.
bool send_pieces(World& w, fern::Socket& s, std::string_view bytes) {
  try {
    int style = w.pick(4);  // 0: everything (every request pipelined) in one write
    for (std::size_t at = 0; at < bytes.size();) {
      std::size_t piece = style == 0 ? bytes.size() : style == 1 || w.chance(3) ? 1 + w.pick(20) : 1 + w.pick(100000);
      std::size_t n = std::min<std::size_t>(bytes.size() - at, piece);
      s.sendall(bytes.substr(at, n));
      at += n;
    }
    return true;
  } catch (const fern::SocketError&) {
    return false;
  }
}

const char kUpgrade[] =
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

void websocket_session(World& w, fern::Socket& s, Reader& r, const std::string& where) {
  struct Msg {
    bool text;
    std::string data;
    std::size_t end;  // where its last frame ends in `out`
  };
  std::vector<Msg> msgs;
  std::string out = kUpgrade;
  std::vector<std::size_t> ping_ends;
  for (int i = 0, n = w.pick(6); i < n; ++i) {
    bool text = w.chance(2);
    std::string data = w.payload(w.chance(4) ? w.pick(70000) : w.pick(300), text);
    msgs.push_back({text, data, 0});
    int fragments = w.chance(2) ? 1 : 2 + w.pick(4);
    std::size_t at = 0;
    for (int f = 0; f < fragments; ++f) {
      std::size_t len = f == fragments - 1 ? data.size() - at : std::min<std::size_t>(data.size() - at, w.pick(int(data.size() / fragments) + 1));
      int opcode = f == 0 ? (text ? 1 : 2) : 0;
      out += frame(w, (f == fragments - 1 ? 0x80 : 0) | opcode, data.substr(at, len));
      at += len;
      if (f < fragments - 1 && w.chance(2)) {
        out += frame(w, 0x89, "ping" + std::to_string(ping_ends.size()));
        ping_ends.push_back(out.size());
      }
    }
    msgs.back().end = out.size();
  }
  // Abrupt: the client goes away anywhere after the handshake, in a frame
  // too; it expects the echoes and pongs of what it sent whole.
  bool abrupt = w.chance(4);
  int code = 0;
  std::size_t send = out.size();
  if (abrupt) {
    send = std::strlen(kUpgrade) + w.pick(int(out.size() - std::strlen(kUpgrade)) + 1);
    while (!msgs.empty() && msgs.back().end > send) msgs.pop_back();
    while (!ping_ends.empty() && ping_ends.back() > send) ping_ends.pop_back();
  } else {
    code = w.chance(3) ? 1000 : 3000 + w.pick(2000);
    std::string close = std::string{static_cast<char>(code >> 8), static_cast<char>(code & 0xff)} + "bye";
    if (w.chance(5)) close.clear(), code = 1000;  // no code: answered 1000
    out += frame(w, 0x88, close);
    send = out.size();
  }
  int pings = static_cast<int>(ping_ends.size());
  auto writer = fern::spawn([&w, &s, out, send] { send_pieces(w, s, std::string_view(out).substr(0, send)); });
  std::string h = r.head();
  if (h.compare(0, 12, "HTTP/1.1 101") != 0) {
    w.fail(where, "upgrade answered: " + h.substr(0, 40));
  } else {
    std::size_t next = 0;
    int pongs = 0;
    bool closed = false;
    while (abrupt ? next < msgs.size() || pongs < pings : !closed) {
      if (!r.need(2)) {
        w.fail(where, "the WebSocket ended early");
        break;
      }
      std::string hdr = r.take(2);
      int first = static_cast<unsigned char>(hdr[0]);
      std::size_t len = static_cast<unsigned char>(hdr[1]) & 0x7f;
      if (len >= 126) {
        std::size_t bytes = len == 126 ? 2 : 8;
        if (!r.need(bytes)) break;
        std::string ext = r.take(bytes);
        len = 0;
        for (char c : ext) len = len << 8 | static_cast<unsigned char>(c);
      }
      if (!r.need(len)) {
        w.fail(where, "a WebSocket frame cut short");
        break;
      }
      std::string data = r.take(len);
      if (first == 0x8A) {
        if (data != "ping" + std::to_string(pongs)) w.fail(where, "pong out of order: " + data);
        ++pongs;
      } else if (first == 0x88) {
        if (abrupt) w.fail(where, "a close the client did not ask for");
        if (next != msgs.size() || pongs != pings) w.fail(where, "close before every echo and pong");
        int got = data.size() >= 2 ? static_cast<unsigned char>(data[0]) << 8 | static_cast<unsigned char>(data[1]) : -1;
        if (got != code) w.fail(where, "close answered " + std::to_string(got) + ", sent " + std::to_string(code));
        closed = true;
      } else if (next < msgs.size() && first == (msgs[next].text ? 0x81 : 0x82) && data == msgs[next].data) {
        ++next;
        ++w.ws_messages;
      } else {
        w.fail(where, "WebSocket echo " + std::to_string(next) + " wrong: first byte " + std::to_string(first) +
                          ", " + std::to_string(len) + " bytes");
        break;
      }
    }
    if (closed && !r.at_eof()) w.fail(where, "bytes after the close frame");
  }
  writer.kill();
}

void World::connection(const std::string& where) {
  Plan p = plan();
  fern::Socket s(AF_INET, SOCK_STREAM);
  s.set_timeout(fern::Duration(10.0));  // a hang guard only: a timeout fails the test
  if (chance(2)) s.set_option(IPPROTO_TCP, TCP_NODELAY, 1);
  s.connect(Address::ip("127.0.0.1", port));
  Reader r(*this, s);
  try {
    auto writer = fern::spawn([this, &s, &p] {
      if (send_pieces(*this, s, std::string_view(p.bytes).substr(0, p.send_bytes)) && p.half_close) s.shutdown(SHUT_WR);
    });
    std::size_t to_read = p.read_then_close ? p.whole : p.read_only;
    bool ended = false;  // the server closed after a response (the rest of the plan goes unanswered)
    for (std::size_t i = 0; i < to_read; ++i) {
      const Expect& e = p.expect[i];
      std::string h = r.head();
      while (h.compare(0, 12, "HTTP/1.1 100") == 0) h = r.head();
      if (h.empty()) {
        fail(where, "no response " + std::to_string(i) + " of " + std::to_string(p.whole) + "; " + p.describe());
        break;
      }
      int status = std::atoi(h.c_str() + 9);
      if (e.head_only && content_length(h) != e.body.size())
        fail(where, "HEAD response " + std::to_string(i) + " Content-Length differs from GET's: " + h.substr(0, 60));
      std::optional<std::string> body = e.head_only ? std::string() : r.body(h);
      if (!body) {
        fail(where, "response " + std::to_string(i) + " cut short: " + h.substr(0, 60));
        break;
      }
      bool says_close = has_line(h, "Connection: close");
      if (e.announced && !says_close) fail(where, "response " + std::to_string(i) + " closes unannounced: " + h + " to " + e.why);
      if (!e.closes && !e.may_close && says_close && e.kind == Expect::kEcho)
        fail(where, "response " + std::to_string(i) + " closes for no reason: " + h);
      if (status != e.status) {
        fail(where, "response " + std::to_string(i) + " status " + std::to_string(status) + ", wanted " +
                        std::to_string(e.status) + " (" + body->substr(0, 60) + ")");
        break;
      }
      if (e.kind == Expect::kEcho && !e.head_only && *body != e.body) {
        fail(where, "response " + std::to_string(i) + " body differs (" + std::to_string(body->size()) + " bytes, wanted " +
                        std::to_string(e.body.size()) + ")");
        break;
      }
      (e.kind == Expect::kEcho ? requests_echoed : errors_seen) += 1;
      if (e.closes || says_close) {
        if (!r.at_eof()) fail(where, "no close after response " + std::to_string(i));
        ended = true;
        break;
      }
      if (e.may_close && i + 1 < to_read && r.at_eof()) {
        ended = true;
        break;
      }
    }
    if (p.half_close && !r.at_eof()) fail(where, "no end after the last response to a half-closed client");
    if (p.read_then_close && !ended) writer.join();
    writer.kill();
    if (p.websocket && !ended) websocket_session(*this, s, r, where);
  } catch (const fern::SocketError& e) {
    fail(where, std::string("socket error: ") + e.what() + "; " + p.describe());
  }
}

void World::client(int id) {
  for (int c = 0, n = 2 + pick(4); c < n; ++c) connection("client " + std::to_string(id) + " connection " + std::to_string(c));
}

// Seed 5's finding: a sized response to a request whose Content-Length
// body the handler left unread, over the 64 KiB the server drops to keep
// the connection, said nothing (1.1) or even "Connection: keep-alive" (1.0
// keep-alive), then the server closed: a client sending its next request
// meanwhile lost it. It says Connection: close now (RFC 9112 9.6).
TEST_F(RandomClients, UnreadBodyOverTheDropLimitSaysConnectionClose) {
  HttpServer server(Address::ip("127.0.0.1", 0), echo_handler);
  server.start();
  for (const char* version : {"HTTP/1.1\r\nHost: x", "HTTP/1.0\r\nConnection: keep-alive"}) {
    for (std::size_t size : {std::size_t{64 * 1024}, std::size_t{64 * 1024 + 1}}) {
      fern::testing::HttpClient c(server.server_port());
      c.send("POST /skip " + std::string(version) + "\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n" +
             std::string(size, 'x') + "GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
      fern::testing::HttpReply r = c.read();
      EXPECT_EQ(r.status, 200);
      EXPECT_EQ(r.body, "POST /skip ");
      if (size > 64 * 1024) {  // too long to drop: announced, then closed
        EXPECT_TRUE(r.has("Connection: close")) << version << " " << size << "\n" << r.head;
        EXPECT_TRUE(c.at_eof());
      } else {  // dropped: the connection goes on
        EXPECT_FALSE(r.has("Connection: close")) << version << " " << size << "\n" << r.head;
        EXPECT_EQ(c.read().body, "GET /next ");
      }
    }
  }
  server.stop();
}

// Seeds 317, 707 and 1016's finding: a response that closes the connection
// (here: a body too long to drop) was lost when the client was slow to
// read it and kept sending: the polite close stopped draining after 256 KiB
// and closed with input unread, and the reset threw away the responses
// still queued on the server's side. Now it drains on (up to its 1 s) until
// the client's TCP has acknowledged them (RFC 9112 9.6).
TEST_F(RandomClients, CloseAfterAResponseWaitsUntilTheClientHasIt) {
  HttpServer server(Address::ip("127.0.0.1", 0), echo_handler);
  server.start();
  fern::testing::HttpClient c(server.server_port(), 4096);  // a small window: the responses wait at the server
  std::string first(40000, 'a');
  auto writer = fern::spawn([&] {
    try {
      c.send("POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\n\r\n" + first +
             "POST /skip HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n" + std::string(300000, 'b'));
    } catch (const fern::SocketError&) {  // the server closed before the end of the unread body
    }
  });
  writer.join();  // the client reads only now
  fern::testing::HttpReply r1 = c.read();
  EXPECT_EQ(r1.status, 200);
  EXPECT_EQ(r1.body, "POST /r " + first);
  fern::testing::HttpReply r2 = c.read();
  EXPECT_EQ(r2.status, 200);
  EXPECT_TRUE(r2.has("Connection: close")) << r2.head;
  EXPECT_EQ(r2.body, "POST /skip ");
  c.close();
  server.stop();
}

class RandomClientsSeeds : public RandomClients, public ::testing::WithParamInterface<std::uint32_t> {};

TEST_P(RandomClientsSeeds, EveryRequestGetsItsOwnResponseAndTheServerSurvives) {
  World w(GetParam());
  fern::http::ServerOptions options;
  options.max_body = kMaxBody;
  options.header_timeout = 10.0;
  options.io_timeout = fern::Duration(10.0);
  options.log_bad_requests = false;
  HttpServer server(Address::ip("127.0.0.1", 0), echo_handler, options);
  server.start();
  w.port = server.server_port();
  for (int i = 0; i < 6; ++i) w.tasks.push_back(fern::spawn([&w, i] { w.client(i); }).core());
  fern::testing::run_until_all_ended(w.tasks, fern::Duration(0.002), 5000);
  for (const auto& t : w.tasks) {
    EXPECT_TRUE(t->dead());
    EXPECT_FALSE(t->killed()) << "a client did not end by itself";
    if (auto e = t->exception()) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        ADD_FAILURE() << "a client failed: " << x.what();
      } catch (...) {
      }
    }
  }
  for (const auto& f : w.failures) ADD_FAILURE() << f;
  // Every client has ended, so no connection is left to wait for: stop()
  // returns without using its timeout. A long one makes a lingering
  // connection show as a wait of about a minute, far from any slow machine.
  fern::Nanos started = fern::monotonic_now();
  server.stop(std::chrono::seconds(60));
  EXPECT_LT(fern::monotonic_now() - started, fern::Nanos(30'000'000'000)) << "stop() waited for a connection";
  w.tasks.clear();
  RecordProperty("echoed", w.requests_echoed);
  RecordProperty("errors", w.errors_seen);
  RecordProperty("ws_messages", w.ws_messages);
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomClientsSeeds, ::testing::Range<std::uint32_t>(1, 26));

}  // namespace
