#include "fern/io/http/chunked_decoder.h"

#include "fern/io/http/request.h"

namespace fern::http {
namespace {

bool is_tchar(char c) noexcept { return is_token(std::string_view(&c, 1)); }

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Chunk extensions and trailers are skipped, but not without bound.
constexpr std::size_t kMaxLineBytes = 8192;
// 15 significant hex digits (leading zeros do not count): sizes stay below
// 2^60, so no arithmetic can overflow.
constexpr std::size_t kMaxSizeDigits = 15;

}  // namespace

ChunkedDecoder::Step ChunkedDecoder::next(std::string_view in, std::size_t max_data) {
  Step s;
  if (error_) {  // final: asked again, the body's end is never found past a break
    s.error = error_;
    return s;
  }
  std::size_t i = 0;
  // Data decoded before the break is the body's: it is handed back now and
  // the error at the next call (a handler reading a prefix gets it whole).
  auto fail = [&](const char* why) {
    error_ = why;
    if (s.data.empty()) s.error = why;
    s.consumed = i;
    return s;
  };
  auto end_size_line = [&] {
    state_ = remaining_ == 0 ? State::kTrailer : State::kData;
    line_bytes_ = 0;
  };
  while (i < in.size() && state_ != State::kDone) {
    char c = in[i];
    switch (state_) {
      case State::kSize: {
        int v = hex_value(c);
        if (v >= 0) {  // line_bytes_ counts all digits, digits_ the significant ones
          if (++line_bytes_ > kMaxLineBytes) return fail("chunk size line too long");
          if ((digits_ > 0 || v != 0) && ++digits_ > kMaxSizeDigits) return fail("chunk size too large");
          remaining_ = remaining_ * 16 + static_cast<unsigned>(v);
        } else if (line_bytes_ == 0) {
          return fail("malformed chunk size");
        } else if (c == ';') {
          state_ = State::kExt;
          line_bytes_ = 0;
        } else if (c == ' ' || c == '\t') {
          state_ = State::kSizeWs;
        } else if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (c == '\n') {
          end_size_line();
        } else {
          return fail("malformed chunk size");
        }
        ++i;
        break;
      }
      case State::kSizeWs:  // BWS: an extension starts with ';' (RFC 9112 7.1.1)
        if (c == ';') {
          state_ = State::kExt;
          line_bytes_ = 0;
        } else if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (c == '\n') {
          end_size_line();
        } else if (c != ' ' && c != '\t') {
          return fail("malformed chunk size");
        } else if (++line_bytes_ > kMaxLineBytes) {
          return fail("chunk size line too long");
        }
        ++i;
        break;
      case State::kExt:
        if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (c == '\n') {
          end_size_line();
        } else if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
          return fail("control character in a chunk extension");
        } else if (++line_bytes_ > kMaxLineBytes) {
          return fail("chunk extension too long");
        }
        ++i;
        break;
      case State::kSizeLf:
        if (c != '\n') return fail("bare CR after a chunk size");
        end_size_line();
        ++i;
        break;
      case State::kData: {
        if (!s.data.empty() || max_data == 0) {
          s.consumed = i;
          return s;
        }
        std::uint64_t n = in.size() - i;
        if (n > remaining_) n = remaining_;
        if (n > max_data) n = max_data;
        s.data = in.substr(i, static_cast<std::size_t>(n));
        i += static_cast<std::size_t>(n);
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
        if (c == '\n') {
          state_ = State::kSize;
          digits_ = line_bytes_ = 0;
        } else if (c == '\r') {
          state_ = State::kDataLf;
        } else {
          return fail("chunk data longer than its size");
        }
        ++i;
        break;
      case State::kDataLf:
        if (c != '\n') return fail("bare CR after chunk data");
        state_ = State::kSize;
        digits_ = line_bytes_ = 0;
        ++i;
        break;
      case State::kTrailer:  // a trailer line's first byte, or the end of the body
        if (c == '\n') state_ = State::kDone;
        else if (c == '\r') state_ = State::kTrailerLf;
        else if (is_tchar(c)) state_ = State::kTrailerName;
        else return fail("malformed trailer field");  // obs-fold, an empty name, a request line
        if (++line_bytes_ > kMaxLineBytes) return fail("trailer section too long");
        ++i;
        break;
      case State::kTrailerName:
        if (c == ':') state_ = State::kTrailerValue;
        else if (!is_tchar(c)) return fail("malformed trailer field");
        if (++line_bytes_ > kMaxLineBytes) return fail("trailer section too long");
        ++i;
        break;
      case State::kTrailerValue:
        if (c == '\n') {
          state_ = State::kTrailer;
        } else if (c == '\r' && (i + 1 >= in.size() || in[i + 1] != '\n')) {
          if (i + 1 >= in.size()) {
            s.consumed = i;  // decide when the next byte is here
            return s;
          }
          return fail("bare CR in a trailer");
        } else if (c != '\r' && c != '\t' && (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)) {
          return fail("control character in a trailer");
        }
        if (++line_bytes_ > kMaxLineBytes) return fail("trailer section too long");
        ++i;
        break;
      case State::kTrailerLf:
        if (c != '\n') return fail("bare CR ending the body");
        state_ = State::kDone;
        ++i;
        break;
      case State::kDone:
        break;
    }
  }
  s.consumed = i;
  s.done = state_ == State::kDone;
  return s;
}

}  // namespace fern::http
