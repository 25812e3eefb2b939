#pragma once
// A local stand-in for the public web sites some tutorial programs fetch:
// the reference harness's _local_http.py in C++, a fern StreamServer on
// 127.0.0.1 answering each request after a random 5-60 ms delay (so
// concurrent fetches finish out of order), with the same pages:
//   /list=...      a stock quote line        /time.json    {"datetime": ..., "tz": "UTC"}
//   /j/...         the Douban tags JSON      /portal.php   four <img> under the xpath of 47
//   /forum.php?aid=N  a JPEG-like body of 1000*N+6 bytes   /delay/MS  the page after MS ms
//   anything else  a 2068-byte HTML page
// It runs in its own thread with its own hub (the program's greenlets do
// not share a loop with it); the destructor stops it and joins the thread.
// Header-only, public fern headers only.
#include <cstdint>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "fern/core/task.h"
#include "fern/io/server.h"
#include "fern/sync/event.h"

namespace fern_examples {

class LocalHttp {
 public:
  LocalHttp() {
    std::promise<std::uint16_t> port;
    std::future<std::uint16_t> ready = port.get_future();
    thread_ = std::thread([this, &port] { serve(port); });
    port_ = ready.get();
  }
  ~LocalHttp() {
    remote_->post([this] { stop_->set(); });
    thread_.join();
  }
  LocalHttp(const LocalHttp&) = delete;
  LocalHttp& operator=(const LocalHttp&) = delete;

  // "http://127.0.0.1:PORT", no trailing slash (the reference's BASE).
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::uint16_t port() const { return port_; }

  static std::string page() {
    return "<html><head><title>local stand-in</title></head><body>" + std::string(2000, 'x') + "</body></html>";
  }

 private:
  struct Response {
    std::string type;
    std::string body;
  };

  static Response route(const std::string& path, const std::string& query) {
    if (path.rfind("/list=", 0) == 0)
      return {"text/plain; charset=utf-8", "var hq_str_sh601006=\"\xe5\xa4\xa7\xe7\xa7\xa6\xe9\x93\x81\xe8\xb7\xaf,6.500,6.480,6.530\";\n"};
    if (path == "/time.json")
      return {"application/json", "{\"datetime\": \"Thu, 01 Jan 2015 00:00:00 +0000\", \"tz\": \"UTC\"}"};
    if (path.rfind("/j/", 0) == 0)
      return {"application/json; charset=utf-8",
              "{\"tags\": [\"\xe7\x83\xad\xe9\x97\xa8\", \"\xe6\x9c\x80\xe6\x96\xb0\", \"\xe7\xbb\x8f\xe5\x85\xb8\", "
              "\"\xe5\x8f\xaf\xe6\x92\xad\xe6\x94\xbe\", \"\xe8\xb1\x86\xe7\x93\xa3\xe9\xab\x98\xe5\x88\x86\"]}"};
    if (path == "/portal.php") {
      std::string html = "<html><body><div id=\"frameXWswSe\"><div class=\"portal_block_summary\"><ul>";
      for (int i = 1; i <= 4; ++i)
        html += "<li><img src=\"forum.php?mod=image&aid=" + std::to_string(i) + "&size=218x285\"/></li>";
      return {"text/html", html + "</ul></div></div></body></html>"};
    }
    if (path == "/forum.php") {
      int aid = 0;
      std::string::size_type at = query.find("aid=");
      if (at != std::string::npos) aid = std::stoi(query.substr(at + 4));
      return {"image/jpeg", "\xff\xd8\xff\xe0" + std::string(static_cast<std::size_t>(1000 * aid), 'J') + "\xff\xd9"};
    }
    return {"text/html", page()};
  }

  // One request per connection (Connection: close), like a simple WSGI server.
  void handle(fern::Socket& s) {
    std::string in;
    std::string::size_type head_end;
    while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
      std::string more = s.recv(4096);
      if (more.empty()) return;
      in += more;
    }
    std::string::size_type body_len = 0;
    std::string::size_type cl = in.find("Content-Length:");
    if (cl == std::string::npos) cl = in.find("content-length:");
    if (cl != std::string::npos && cl < head_end) body_len = std::stoul(in.substr(cl + 15));
    while (in.size() < head_end + 4 + body_len) {
      std::string more = s.recv(4096);
      if (more.empty()) return;
      in += more;
    }
    std::string target = in.substr(in.find(' ') + 1);
    target = target.substr(0, target.find(' '));
    std::string path = target.substr(0, target.find('?'));
    std::string query = target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
    double delay = std::uniform_real_distribution<double>(0.005, 0.06)(random_);
    if (path.rfind("/delay/", 0) == 0) delay = std::stod(path.substr(7)) / 1000.0;
    fern::sleep(delay);
    Response r = route(path, query);
    s.sendall("HTTP/1.1 200 OK\r\nContent-Type: " + r.type + "\r\nContent-Length: " + std::to_string(r.body.size()) +
              "\r\nConnection: close\r\n\r\n" + r.body);
  }

  void serve(std::promise<std::uint16_t>& port) {
    {
      fern::Event stop;
      fern::StreamServer server(fern::Address::ip("127.0.0.1", 0),
                                [this](fern::Socket& s, const fern::Address&) { handle(s); });
      server.start();
      stop_ = &stop;
      remote_ = fern::Hub::current().remote();
      port.set_value(server.server_port());
      stop.wait();
      server.stop();
    }
    fern::Hub::destroy_current();
  }

  std::thread thread_;
  std::shared_ptr<fern::RemoteQueue> remote_;
  fern::Event* stop_ = nullptr;  // the server thread's, alive until it is set
  std::mt19937 random_{std::random_device{}()};
  std::uint16_t port_ = 0;
};

}  // namespace fern_examples
