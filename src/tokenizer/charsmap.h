// SentencePiece's precompiled normalisation map (a Darts double-array trie over UTF-8 keys plus a blob of
// replacement strings), applied the way the Hugging Face fast tokenizer's `Precompiled` normaliser does.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pairrm {

// The bytes [begin, end) of a caller's text that one byte of a string derived from it came from (the
// tokenizer's offsets: TEI's /tokenize reports them).
struct SourceRange {
  uint32_t begin = 0, end = 0;
};

class PrecompiledCharsmap {
 public:
  PrecompiledCharsmap() = default;
  // Throws pairrm::Error when the blob is malformed.
  explicit PrecompiledCharsmap(std::string_view blob);

  bool empty() const { return units_.empty(); }

  // The replacement of the shortest key that is a prefix of `text`, or false when none is.
  bool shortest_prefix_replacement(std::string_view text, std::string_view* replacement) const;

  // The fast tokenizer's rule: per extended grapheme cluster, a cluster under 6 bytes that starts with a
  // key is replaced as a whole by that key's replacement; otherwise each character is replaced on its own
  // (or kept). `text` must be valid UTF-8. With `from`, appends for each output byte the range of `text`
  // (shifted by `base`) it came from: its whole cluster when replaced as one, else its character.
  std::string normalize(std::string_view text, std::vector<SourceRange>* from = nullptr, uint32_t base = 0) const;

 private:
  std::vector<uint32_t> units_;
  std::string normalized_;
};

}  // namespace pairrm
