// Twin of gevent's tutorial program 40_chat_server_flask.py: a chat server
// with rooms (topic1, topic2). GET /<room>/<uid> subscribes the user to the
// room; POST /put/<room>/<uid> (form field "message") puts "uid:message" on
// every subscriber's queue; POST /poll/<uid> waits up to 10 s for the next
// one and answers it as JSON, or [] when none came.
// Deliberate differences: the reference's HTML templates were never
// published, so its three page routes answer 500 (as the twin does by
// default, the 21-byte "Internal Server Error"); its harness drove a short
// session (the reference's .client.out), which the twin runs itself on an
// ephemeral port before stopping, exiting 0 (the reference's print(user)
// and subscribe lines on the server's stdout are not printed).
// `40_chat_server_flask --serve PORT` serves forever with the pages written
// (choose a name, pick a room, a room page that posts and long-polls from
// the browser): the browser test drives that mode.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "fern/core/deadline.h"
#include "fern/core/task.h"
#include "fern/io/http/server.h"
#include "fern/sync/queue.h"
#include "http_client.h"

namespace {

using fern::http::Request;
using fern::http::Response;

struct User {
  fern::Queue<std::string> queue;
};

struct Room {
  std::set<User*> users;
  std::vector<std::string> messages;
  std::vector<std::string> backlog(std::size_t size = 25) const {
    return {messages.size() > size ? messages.end() - static_cast<long>(size) : messages.begin(), messages.end()};
  }
  void subscribe(User* user) { users.insert(user); }
  void add(const std::string& message) {
    for (User* user : users) user->queue.put_nowait(message);
    messages.push_back(message);
  }
};

std::map<std::string, Room> rooms = {{"topic1", Room()}, {"topic2", Room()}};
std::map<std::string, std::unique_ptr<User>> users;
bool templates = false;  // --serve: the pages exist

template <class Map>
auto& at(Map& map, const std::string& key) {
  auto it = map.find(key);
  if (it == map.end()) throw std::out_of_range("KeyError: '" + key + "'");  // a 500, as in Flask
  return it->second;
}

std::string form_value(const std::string& body, const std::string& name) {
  std::size_t at = ("&" + body).find("&" + name + "=");
  if (at == std::string::npos) throw std::out_of_range("BadRequestKeyError: '" + name + "'");
  std::string raw = body.substr(at + name.size() + 1), out;
  raw = raw.substr(0, raw.find('&'));
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '+') out += ' ';
    else if (raw[i] == '%' && i + 2 < raw.size()) out += static_cast<char>(std::stoi(raw.substr(i + 1, 2), nullptr, 16)), i += 2;
    else out += raw[i];
  }
  return out;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += static_cast<char>(c);
    else if (c < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

// Names that go into a page unescaped inside JavaScript strings.
bool plain_name(const std::string& s) {
  if (s.empty() || s.size() > 32) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

std::string render_template(const std::string& name, const std::string& room = {}, const std::string& uid = {},
                            const std::vector<std::string>& messages = {}) {
  if (!templates) throw std::runtime_error("TemplateNotFound: " + name);
  std::string page = "<!doctype html><html><head><meta charset=\"utf-8\"><title>fern chat</title></head><body>";
  if (name == "choose.html") {
    page += "<form onsubmit=\"location.href='/'+encodeURIComponent(this.uid.value);return false\">"
            "Your name: <input name=\"uid\"><button>Enter</button></form>";
  } else if (name == "main.html") {
    for (const auto& [room_name, unused] : rooms)
      page += "<p><a href=\"/" + room_name + "/" + html_escape(uid) + "\">" + room_name + "</a></p>";
  } else {
    page += "<h1>" + html_escape(room) + "</h1><ul id=\"messages\">";
    for (const std::string& m : messages) page += "<li>" + html_escape(m) + "</li>";
    page += "</ul><form id=\"say\"><input id=\"message\"><button>Send</button></form><script>"
            "const uid='" + uid + "',room='" + room + "';"
            "function add(m){const li=document.createElement('li');li.textContent=m;"
            "document.getElementById('messages').appendChild(li);}"
            "async function say(text){await fetch('/put/'+room+'/'+uid,{method:'POST',"
            "headers:{'Content-Type':'application/x-www-form-urlencoded'},body:'message='+encodeURIComponent(text)});}"
            "async function poll(){for(;;){try{const r=await fetch('/poll/'+uid,{method:'POST'});"
            "const m=await r.json();if(typeof m==='string')add(m);}"
            "catch(e){await new Promise(w=>setTimeout(w,500));}}}"
            "document.getElementById('say').onsubmit=e=>{e.preventDefault();"
            "const box=document.getElementById('message');say(box.value);box.value='';};"
            "poll();</script>";
  }
  return page + "</body></html>";
}

void send_html(Response& response, const std::string& body) {
  response.add_header("Content-Type", "text/html; charset=utf-8");
  response.send(body);
}

void app(Request& request, Response& response) {
  std::vector<std::string> parts;
  std::string path(request.path());
  for (std::size_t pos = 1; pos <= path.size();) {
    std::size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    parts.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  bool post = request.method == "POST";
  if (parts.size() == 1 && parts[0].empty()) return send_html(response, render_template("choose.html"));
  if (post && parts.size() == 3 && parts[0] == "put") {  // put(room, uid)
    at(users, parts[2]);
    Room& room = at(rooms, parts[1]);
    room.add(parts[2] + ":" + form_value(request.read_all(), "message"));
    return send_html(response, "");
  }
  if (post && parts.size() == 2 && parts[0] == "poll") {  // poll(uid)
    auto msg = at(users, parts[1])->queue.get_for(10.0);
    response.add_header("Content-Type", "text/html; charset=utf-8");
    return response.send(msg ? json_string(*msg) : "[]");
  }
  if (!post && parts.size() == 1 && plain_name(parts[0]))  // main(uid)
    return send_html(response, render_template("main.html", {}, parts[0]));
  if (!post && parts.size() == 2 && plain_name(parts[1])) {  // join(room, uid)
    auto& user = users[parts[1]];
    if (!user) user = std::make_unique<User>();
    Room& room = at(rooms, parts[0]);
    room.subscribe(user.get());
    return send_html(response, render_template("room.html", parts[0], parts[1], room.backlog()));
  }
  response.set_status(404);
  send_html(response, "Not Found");
}

// urllib.request as the harness used it: one request, Connection: close.
std::pair<int, std::string> http(std::uint16_t port, const std::string& method, const std::string& path,
                                 const std::string& form = {}) {
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (method == "POST")
    request += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " + std::to_string(form.size()) + "\r\n";
  std::string reply = example::raw_http(port, request + "\r\n" + form);
  std::size_t split = reply.find("\r\n\r\n");
  int status = reply.size() > 12 ? std::atoi(reply.c_str() + 9) : 0;
  return {status, split == std::string::npos ? std::string() : reply.substr(split + 4)};
}

void harness_client(std::uint16_t port) {
  auto get = [&](const char* path) {
    auto [status, body] = http(port, "GET", path);
    std::printf("GET %s -> %d %s\n", path, status,
                status >= 400 ? ("<error page " + std::to_string(body.size()) + " bytes>").c_str() : body.c_str());
  };
  get("/");
  get("/topic1/alice");
  auto put = http(port, "POST", "/put/topic1/alice", "message=hi");
  std::printf("POST /put/topic1/alice message=hi -> %d '%s'\n", put.first, put.second.c_str());
  auto poll = http(port, "POST", "/poll/alice");
  std::printf("POST /poll/alice -> %d %s\n", poll.first, poll.second.c_str());
  fern::Deadline t0 = fern::Deadline::now();
  poll = http(port, "POST", "/poll/alice");
  std::printf("POST /poll/alice (empty queue) -> %d %s after %.1f s\n", poll.first, poll.second.c_str(),
              static_cast<double>(fern::Deadline::now().nanos() - t0.nanos()) / 1e9);
}

}  // namespace

int main(int argc, char** argv) {
  fern::http::ServerOptions options;  // a page route's error: one report on stderr, as gevent's
  options.access_log = true;          // and pywsgi's log line per request
  if (argc == 3 && std::string(argv[1]) == "--serve") {
    templates = true;
    auto port = static_cast<std::uint16_t>(std::atoi(argv[2]));
    fern::http::HttpServer server(fern::Address::ip("127.0.0.1", port), app, options);
    server.start();
    std::printf("serving on %u\n", server.server_port());
    std::fflush(stdout);
    server.serve_forever();
    return 0;
  }
  fern::http::HttpServer server(fern::Address::ip("127.0.0.1", 0), app, options);
  example::serve_for_client(server, harness_client);
  return 0;
}
