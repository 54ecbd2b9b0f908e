// DeBERTa-v3 tokenizer: spm.model through the SentencePiece library, the added/special tokens of the
// checkpoint, and the Hugging Face fast tokenizer's normalisation (see docs/tokenizer.md for the policy).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pairrm/pairrm.h"
#include "tokenizer/charsmap.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace pairrm {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool normalized = true;  // matched after normalisation (prefix tokens, [UNK]) or in the raw text
};

class Tokenizer {
 public:
  // Reads spm.model and the added tokens (tokenizer_config.json's added_tokens_decoder, else
  // added_tokens.json + special_tokens_map.json) from `directory`. Throws pairrm::Error.
  Tokenizer(const std::string& directory, const TokenizerOptions& options);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;

  const TokenizerOptions& options() const { return options_; }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  // The id of an added token's string, or -1.
  int32_t added_token_id(std::string_view content) const;
  const std::vector<AddedToken>& added_tokens() const { return added_; }

  // Appends the ids of `text` (no [CLS]/[SEP]) to `out`. `text` must be valid UTF-8.
  void append_ids(std::string_view text, std::vector<int32_t>& out) const;

 private:
  void append_fast(std::string_view text, std::vector<int32_t>& out) const;
  void append_fast_normalized(std::string_view normalized, std::vector<int32_t>& out) const;
  void append_byte_fallback(std::string_view text, std::vector<int32_t>& out) const;
  void encode_with(const sentencepiece::SentencePieceProcessor& sp, std::string_view text,
                   std::vector<int32_t>& out) const;

  TokenizerOptions options_;
  // The model as published (byte_fallback) or its fast-tokenizer equivalent (make_fast_equivalent_model).
  std::unique_ptr<sentencepiece::SentencePieceProcessor> spm_;
  PrecompiledCharsmap charsmap_;
  std::vector<AddedToken> added_;
  int32_t cls_id_ = 1, sep_id_ = 2;
};

// Fast-tokenizer normalisation of one segment: Strip (Unicode White_Space at both ends), the precompiled
// charsmap per grapheme cluster, runs of spaces collapsed to one.
std::string fast_normalize(const PrecompiledCharsmap& charsmap, std::string_view text);

}  // namespace pairrm
