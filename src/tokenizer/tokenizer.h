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
  bool special = false;    // a special token ([CLS], [SEP], [UNK], ...): dropped by decode(skip_special)
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

  // Appends the ids of `text` (no [CLS]/[SEP]) to `out`. `text` must be valid UTF-8. With `ranges`,
  // appends beside each id the bytes of `text` it came from (the Hugging Face tokenizer's offsets: a
  // word's token includes the space before it; an added token its match).
  void append_ids(std::string_view text, std::vector<int32_t>& out, std::vector<SourceRange>* ranges = nullptr) const;

  // One past the largest id (the SentencePiece pieces and the added tokens).
  int32_t vocab_size() const { return vocab_size_; }
  // Hugging Face's convert_ids_to_tokens: the piece ("▁Hello", "<0x0A>") or the added token's string;
  // `id` must be in [0, vocab_size()).
  std::string token_string(int32_t id) const;
  bool is_special(int32_t id) const;
  // The fast tokenizer's decode: each id's token string (ids out of range skipped, special ones too when
  // `skip_special`), through the Metaspace decoder ("▁" -> " ", none kept from the first token).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const;

 private:
  struct Sink;  // where ids (and their source ranges) go
  void append_fast(std::string_view text, Sink& sink) const;
  void append_fast_normalized(std::string_view normalized, const SourceRange* from, Sink& sink) const;
  void append_byte_fallback(std::string_view text, Sink& sink) const;
  void encode_with(const sentencepiece::SentencePieceProcessor& sp, std::string_view text, const SourceRange* from,
                   Sink& sink) const;

  TokenizerOptions options_;
  // The model as published (byte_fallback) or its fast-tokenizer equivalent (make_fast_equivalent_model).
  std::unique_ptr<sentencepiece::SentencePieceProcessor> spm_;
  PrecompiledCharsmap charsmap_;
  std::vector<AddedToken> added_;
  int32_t cls_id_ = 1, sep_id_ = 2;
  int32_t vocab_size_ = 0;
};

// Fast-tokenizer normalisation of one segment: Strip (Unicode White_Space at both ends), the precompiled
// charsmap per grapheme cluster, runs of spaces collapsed to one. With `from`, appends per output byte the
// range of `text` (shifted by `base`) it came from.
std::string fast_normalize(const PrecompiledCharsmap& charsmap, std::string_view text,
                           std::vector<SourceRange>* from = nullptr, uint32_t base = 0);

}  // namespace pairrm
