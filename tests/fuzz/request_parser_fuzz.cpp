// libFuzzer target: the HTTP request parser and the chunked body decoder.
// The input's first byte picks the size of the pieces it is fed in; the
// incremental parse must agree with a parse of the whole input (same status,
// same length, same request), views must stay inside the input, and a
// chunked body decoded piece by piece must equal the one decoded at once.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fern/io/http/chunked_decoder.h"
#include "fern/io/http/request_parser.h"

namespace {

using fern::http::ChunkedDecoder;
using fern::http::ParserLimits;
using fern::http::RequestHead;
using fern::http::RequestParser;

void check(bool ok) {
  if (!ok) std::abort();
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

// Decodes a chunked body fed `piece` bytes at a time; "" + error flag.
std::string decode(std::string_view in, std::size_t piece, bool& error, bool& done) {
  ChunkedDecoder d;
  std::string body, pending;
  std::size_t at = 0;
  error = done = false;
  while (!d.done()) {
    if (at < in.size()) {
      pending.append(in.substr(at, piece));
      at += piece;
    }
    ChunkedDecoder::Step s = d.next(pending, piece + 3);
    check(s.consumed <= pending.size());
    check(inside(s.data, pending));
    if (s.error) {
      error = true;
      return body;
    }
    body.append(s.data);
    pending.erase(0, s.consumed);
    if (s.consumed == 0 && s.data.empty() && at >= in.size()) break;
  }
  done = d.done();
  return body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::size_t piece = data[0] % 17 + 1;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  ParserLimits limits;
  limits.max_request_line = 256;
  limits.max_head_bytes = 1024;
  limits.max_headers = 16;

  RequestHead whole_head;
  RequestParser whole(limits);
  RequestParser::Result w = whole.parse(input, whole_head);
  check(w.status != RequestParser::Status::kDone || w.consumed <= input.size());

  RequestHead head;
  RequestParser p(limits);
  RequestParser::Result r{RequestParser::Status::kNeedMore};
  std::size_t fed = 0, dropped = 0;  // dropped: empty lines a kNeedMore handed back
  while (r.status == RequestParser::Status::kNeedMore && fed < input.size()) {
    fed = fed + piece < input.size() ? fed + piece : input.size();
    r = p.parse(input.substr(dropped, fed - dropped), head);
    if (r.status == RequestParser::Status::kNeedMore) {
      check(r.consumed <= fed - dropped);
      dropped += r.consumed;
    }
  }
  if (r.status == RequestParser::Status::kDone) r.consumed += dropped;
  if (w.status == RequestParser::Status::kDone) {
    // A prefix can only hit a limit that the whole input also hits.
    check(r.status == RequestParser::Status::kDone);
    check(r.consumed == w.consumed);
    check(head.method == whole_head.method && head.target == whole_head.target);
    check(head.headers.size() == whole_head.headers.size());
    check(inside(head.method, input) && inside(head.target, input));
    for (const auto& [name, value] : head.headers) check(inside(name, input) && inside(value, input));
    check(!(head.chunked && head.content_length));
    if (head.chunked) {
      std::string_view body = input.substr(r.consumed);
      bool e1, d1, e2, d2;
      std::string a = decode(body, piece, e1, d1);
      std::string b = decode(body, body.size() + 1, e2, d2);
      check(e1 == e2 && d1 == d2);
      if (!e1 && d1) check(a == b);
    }
  } else if (w.status == RequestParser::Status::kError) {
    check(r.status == RequestParser::Status::kError || r.status == RequestParser::Status::kDone);
    check(w.error_status >= 400 && w.error_status < 600);
  }
  return 0;
}
