#include "server/request_framing.h"

#include <cctype>
#include <cstdint>
#include <limits>

namespace pairrm::server {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

bool icontains(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i)
    if (iequals(hay.substr(i, needle.size()), needle)) return true;
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// One line of `bytes` from `from`: [from, eol) without its '\n'; npos when no '\n' yet.
size_t line_end(std::string_view bytes, size_t from) { return bytes.find('\n', from); }

bool parse_decimal(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  out = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    out = out * 10 + static_cast<uint64_t>(ch - '0');
  }
  return true;
}

// A chunk-size line: hex digits, then optional extensions after ';'.
bool parse_chunk_size(std::string_view line, uint64_t& out) {
  line = trim(line.substr(0, line.find(';')));
  if (line.empty() || line.size() > 15) return false;
  out = 0;
  for (char ch : line) {
    const int c = std::tolower(static_cast<unsigned char>(ch));
    const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return false;
    out = out * 16 + static_cast<uint64_t>(digit);
  }
  return true;
}

// The chunked body from `at`: sets r.end (kComplete), or the state that stops it.
void scan_chunked(std::string_view bytes, size_t at, size_t max_body, RequestExtent& r) {
  uint64_t total = 0;
  for (;;) {
    const size_t eol = line_end(bytes, at);
    if (eol == std::string_view::npos) return;  // kIncomplete
    uint64_t size = 0;
    if (!parse_chunk_size(bytes.substr(at, eol - at), size)) {
      r.state = RequestExtent::kMalformed;
      return;
    }
    at = eol + 1;
    if (size == 0) break;
    total += size;
    if (total > max_body) {
      r.state = RequestExtent::kBodyTooLarge;
      return;
    }
    if (bytes.size() - at < size) return;
    at += static_cast<size_t>(size);
    const size_t crlf = line_end(bytes, at);  // the chunk's CRLF
    if (crlf == std::string_view::npos) return;
    if (!trim(bytes.substr(at, crlf - at)).empty()) {
      r.state = RequestExtent::kMalformed;
      return;
    }
    at = crlf + 1;
  }
  for (;;) {  // trailer fields, up to the empty line
    const size_t eol = line_end(bytes, at);
    if (eol == std::string_view::npos) return;
    const bool empty = trim(bytes.substr(at, eol - at)).empty();
    at = eol + 1;
    if (empty) break;
  }
  r.state = RequestExtent::kComplete;
  r.end = at;
}

}  // namespace

RequestExtent scan_request(std::string_view bytes, size_t max_head, size_t max_body) {
  RequestExtent r;
  uint64_t content_length = 0;
  bool has_length = false, bad_length = false;
  size_t expect_begin = 0, expect_end = 0;
  size_t at = line_end(bytes, 0);  // the request line
  if (at == std::string_view::npos) {
    if (bytes.size() > max_head) r.state = RequestExtent::kHeadTooLarge;
    return r;
  }
  ++at;
  for (;;) {
    const size_t eol = line_end(bytes, at);
    if (eol == std::string_view::npos || eol >= max_head) {
      if (bytes.size() > max_head || (eol != std::string_view::npos && eol >= max_head))
        r.state = RequestExtent::kHeadTooLarge;
      return r;
    }
    const std::string_view line = bytes.substr(at, eol - at);
    const size_t begin = at;
    at = eol + 1;
    if (trim(line).empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // httplib's parser decides about it
    const std::string_view name = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      uint64_t n = 0;
      if (!parse_decimal(value, n) || (has_length && n != content_length)) bad_length = true;
      content_length = n;
      has_length = true;
    } else if (iequals(name, "transfer-encoding")) {
      r.chunked = r.chunked || icontains(value, "chunked");
    } else if (iequals(name, "expect") && iequals(value, "100-continue")) {
      expect_begin = begin;
      expect_end = at;
    }
  }
  r.head_end = at;
  r.expect_begin = expect_begin;  // only once the head is whole
  r.expect_end = expect_end;
  if (r.chunked) {
    scan_chunked(bytes, at, max_body, r);
    return r;
  }
  if (bad_length) {
    r.state = RequestExtent::kMalformed;
    return r;
  }
  if (content_length > max_body) {
    r.state = RequestExtent::kBodyTooLarge;
    return r;
  }
  if (bytes.size() - at < content_length) return r;
  r.state = RequestExtent::kComplete;
  r.end = at + static_cast<size_t>(content_length);
  return r;
}

}  // namespace pairrm::server
