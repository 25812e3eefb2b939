#pragma once
// An incremental decoder of a chunked request body (RFC 9112 7.1): fed the
// bytes after the head as they arrive, it hands back the body's data as
// views into those bytes (no copy) and consumes the framing: hex sizes
// (leading zeros allowed; at most 15 significant digits), chunk extensions
// (skipped; after the size, only whitespace, then ';'), the CRLF after
// each chunk, the last chunk and the trailer section (skipped, but each
// line must be a field line, `token ":" value` without control characters,
// as RFC 9112 7.1.2 asks: a request line or a folded line there is an
// error, as in pywsgi). A bare LF ends a line as CRLF does.
// Malformed framing is an error with status 400, and final: every later
// call returns it again (consuming nothing); data before it in the same
// input is handed back first, the error at the next call. Nothing is read
// past the input it is given.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fern::http {

class ChunkedDecoder {
 public:
  struct Step {
    std::size_t consumed = 0;  // bytes of the input used (framing and data)
    std::string_view data;     // body bytes, a view into the input (may be empty)
    bool done = false;         // the last chunk and trailers were consumed
    const char* error = nullptr;  // malformed framing: answer 400 and close
  };

  // Decodes from the start of `in`; returns at most `max_data` body bytes,
  // stopping after the first run of data so the caller can copy it out.
  // Call again with the unconsumed rest (and more bytes) until done, or
  // until consumed == 0 and no data, which means: more input is needed.
  Step next(std::string_view in, std::size_t max_data);
  bool done() const noexcept { return state_ == State::kDone; }

 private:
  enum class State {
    kSize, kSizeWs, kExt, kSizeLf, kData, kDataCr, kDataLf,
    kTrailer, kTrailerName, kTrailerValue, kTrailerLf, kDone
  };
  State state_ = State::kSize;
  std::uint64_t remaining_ = 0;  // data bytes left in this chunk (kData), or the size being read
  std::size_t digits_ = 0;       // significant hex digits of the size read so far
  std::size_t line_bytes_ = 0;   // bytes of the size line, extension or trailer section (bounded)
  const char* error_ = nullptr;  // the framing error, once there was one
};

}  // namespace fern::http
