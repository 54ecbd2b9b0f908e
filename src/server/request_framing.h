// Where an HTTP/1.1 request ends in the bytes received so far, without parsing more of it than that needs
// (the head's end, Content-Length or the chunked framing, Expect: 100-continue). The connection gate reads a
// request whole with it before httplib parses it; it never allocates and reads only `bytes`.
#pragma once
#include <cstddef>
#include <string_view>

namespace pairrm::server {

struct RequestExtent {
  enum State {
    kIncomplete,    // more bytes needed
    kComplete,      // [0, end) is one whole request
    kMalformed,     // the head is whole but its framing cannot be read: [0, head_end) is handed over for a 400
    kHeadTooLarge,  // no end of head within max_head bytes
    kBodyTooLarge,  // the declared (Content-Length) or received (chunked) body is over max_body
  };
  State state = kIncomplete;
  size_t head_end = 0;  // bytes of request line and headers, the empty line included (0: not seen yet)
  size_t end = 0;       // kComplete: bytes of the whole request
  bool chunked = false;
  // An "Expect: 100-continue" header line, [expect_begin, expect_end), once the head is whole (expect_end 0: none).
  size_t expect_begin = 0, expect_end = 0;
};

RequestExtent scan_request(std::string_view bytes, size_t max_head, size_t max_body);

}  // namespace pairrm::server
