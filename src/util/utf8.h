// UTF-8 validation: every text that enters the library is checked once at the boundary.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace pairrm {

// Returns the byte offset of the first invalid sequence, or npos when `text` is valid UTF-8
// (no overlongs, no surrogates, nothing above U+10FFFF).
size_t find_invalid_utf8(std::string_view text);

// Throws pairrm::Error naming `what` and the byte offset when `text` is not valid UTF-8.
void require_valid_utf8(std::string_view text, const std::string& what);

// Decodes one code point of valid UTF-8 at text[pos]; returns its length in bytes.
size_t decode_utf8(std::string_view text, size_t pos, char32_t* cp);

void append_utf8(std::string& out, char32_t cp);

}  // namespace pairrm
