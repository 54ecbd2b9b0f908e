// scan_request: where a request ends in the bytes received so far. The connection gate hands a worker only
// what this says is whole, so a wrong end either stalls a client (a request never dispatched) or splits one
// request into two (the rest of its body parsed as the next request).
#include <gtest/gtest.h>

#include <string>

#include "server/request_framing.h"

namespace pairrm::server {
namespace {

constexpr size_t kHead = 1024, kBody = 100;

RequestExtent scan(const std::string& bytes) { return scan_request(bytes, kHead, kBody); }

TEST(RequestFraming, ContentLengthBodyEndsWhereItSays) {
  const std::string head = "POST /compare HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";
  // Every prefix short of the body's last byte is incomplete: a request is never dispatched half read.
  const std::string whole = head + "hello";
  for (size_t n = 0; n < whole.size(); ++n) EXPECT_EQ(scan(whole.substr(0, n)).state, RequestExtent::kIncomplete) << n;
  const RequestExtent r = scan(whole + "GET /health HTTP/1.1\r\n\r\n");  // a pipelined request after it
  ASSERT_EQ(r.state, RequestExtent::kComplete);
  EXPECT_EQ(r.head_end, head.size());
  EXPECT_EQ(r.end, whole.size());
  EXPECT_FALSE(r.chunked);
}

TEST(RequestFraming, NoBodyWithoutContentLength) {
  const std::string get = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  const RequestExtent r = scan(get + "GET /info HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.state, RequestExtent::kComplete);
  EXPECT_EQ(r.end, get.size());
  // Bare "\n" line ends, as httplib accepts them.
  const RequestExtent lf = scan("GET / HTTP/1.1\nHost: x\n\n");
  ASSERT_EQ(lf.state, RequestExtent::kComplete);
  EXPECT_EQ(lf.end, 24u);
}

TEST(RequestFraming, HeaderNamesAreCaseInsensitive) {
  const RequestExtent r = scan("POST / HTTP/1.1\r\ncontent-LENGTH:  3 \r\n\r\nabc");
  ASSERT_EQ(r.state, RequestExtent::kComplete);
  EXPECT_EQ(r.end, r.head_end + 3);
}

TEST(RequestFraming, ChunkedBodyEndsAtTheLastChunkAndTrailers) {
  const std::string head = "POST /compare HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string body = "4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: v\r\n\r\n";
  const std::string whole = head + body;
  for (size_t n = 0; n < whole.size(); ++n) EXPECT_EQ(scan(whole.substr(0, n)).state, RequestExtent::kIncomplete) << n;
  const RequestExtent r = scan(whole + "GET / HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.state, RequestExtent::kComplete);
  EXPECT_TRUE(r.chunked);
  EXPECT_EQ(r.end, whole.size());
  // Upper-case hex sizes, and chunked winning over a Content-Length sent beside it (RFC 9112 6.3).
  const RequestExtent hex = scan("POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n");
  ASSERT_EQ(hex.state, RequestExtent::kComplete);
  EXPECT_TRUE(hex.chunked);
}

TEST(RequestFraming, OverTheLimits) {
  // Content-Length over the body limit is refused from the head alone, before any body byte.
  EXPECT_EQ(scan("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n").state, RequestExtent::kBodyTooLarge);
  EXPECT_EQ(scan("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n").state, RequestExtent::kIncomplete);
  // A chunked body as soon as its declared chunks pass the limit, whatever has arrived.
  EXPECT_EQ(scan("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n").state, RequestExtent::kIncomplete);
  EXPECT_EQ(scan("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" + std::string(100, 'x') + "\r\n1\r\n").state,
            RequestExtent::kBodyTooLarge);
  // A head with no end within the head limit: a request line, or headers, that never stop.
  EXPECT_EQ(scan(std::string(kHead + 1, 'G')).state, RequestExtent::kHeadTooLarge);
  EXPECT_EQ(scan(std::string(kHead, 'G')).state, RequestExtent::kIncomplete);
  std::string headers = "GET / HTTP/1.1\r\n";
  while (headers.size() <= kHead) headers += "X-Filler: abcdefgh\r\n";
  EXPECT_EQ(scan(headers).state, RequestExtent::kHeadTooLarge);
}

TEST(RequestFraming, UnreadableFramingIsMalformedNotIncomplete) {
  // Each would otherwise wait for bytes that never make sense: handed over for httplib's 400 instead.
  for (const std::string bad : {"POST / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n",
                                "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                                "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
                                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY\r\n0\r\n\r\n"}) {
    const RequestExtent r = scan(bad);
    EXPECT_EQ(r.state, RequestExtent::kMalformed) << bad;
    EXPECT_GT(r.head_end, 0u) << bad;
  }
  // Repeating the same length is allowed (RFC 9110 8.6).
  EXPECT_EQ(scan("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx").state, RequestExtent::kComplete);
}

TEST(RequestFraming, ExpectContinueIsFound) {
  const std::string line = "Expect: 100-continue\r\n";
  const std::string bytes = "POST / HTTP/1.1\r\nContent-Length: 2\r\n" + line + "\r\n";
  const RequestExtent r = scan(bytes);
  EXPECT_EQ(r.state, RequestExtent::kIncomplete);
  ASSERT_NE(r.expect_end, 0u);
  EXPECT_EQ(bytes.substr(r.expect_begin, r.expect_end - r.expect_begin), line);
  EXPECT_EQ(scan("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").expect_end, 0u);
}

}  // namespace
}  // namespace pairrm::server
