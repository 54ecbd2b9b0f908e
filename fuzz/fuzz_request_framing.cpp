// scan_request (the connection gate's framing) on arbitrary bytes: never reads past them, and every extent it
// gives is consistent — a whole request lies inside the bytes and is found whole again on its own, the
// head ends inside the bytes, an Expect line lies inside the head. Limits small enough to be reached.
#include <cstdlib>
#include <string_view>

#include "server/request_framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using pairrm::server::RequestExtent;
  using pairrm::server::scan_request;
  constexpr size_t kHead = 512, kBody = 1024;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const RequestExtent r = scan_request(bytes, kHead, kBody);
  if (r.head_end > size || r.end > size) std::abort();
  if (r.expect_end != 0 && (r.expect_begin >= r.expect_end || r.expect_end > r.head_end)) std::abort();
  switch (r.state) {
    case RequestExtent::kComplete: {
      if (r.head_end == 0 || r.head_end > r.end) std::abort();
      if (!r.chunked && r.end - r.head_end > kBody) std::abort();  // a chunked body's size lines are extra
      const RequestExtent alone = scan_request(bytes.substr(0, r.end), kHead, kBody);
      if (alone.state != RequestExtent::kComplete || alone.end != r.end) std::abort();
      break;
    }
    case RequestExtent::kMalformed:
      if (r.head_end == 0) std::abort();
      break;
    case RequestExtent::kHeadTooLarge:
      if (size <= kHead) std::abort();
      break;
    default:
      break;
  }
  return 0;
}
