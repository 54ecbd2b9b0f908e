#include "tokenizer/tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "tokenizer/spm_proto.h"
#include "util/utf8.h"

namespace pairrm {
namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581 "▁"

bool is_unicode_white_space(char32_t c) {  // the White_Space property (Rust's char::is_whitespace)
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string_view strip_white_space(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    char32_t c;
    const size_t len = decode_utf8(s, begin, &c);
    if (!is_unicode_white_space(c)) break;
    begin += len;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    char32_t c;
    decode_utf8(s, start, &c);
    if (!is_unicode_white_space(c)) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

// Splits `text` at the leftmost-longest occurrences of the given tokens; calls on_text for the pieces in
// between (possibly empty) and on_token for each match, in order.
template <class OnText, class OnToken>
void split_on_tokens(std::string_view text, const std::vector<const AddedToken*>& tokens, OnText on_text,
                     OnToken on_token) {
  size_t start = 0, pos = 0;
  while (pos < text.size()) {
    const AddedToken* best = nullptr;
    for (const AddedToken* t : tokens)
      if (text.compare(pos, t->content.size(), t->content) == 0 && (!best || t->content.size() > best->content.size()))
        best = t;
    if (!best) {
      ++pos;
      continue;
    }
    on_text(text.substr(start, pos - start));
    on_token(*best);
    pos += best->content.size();
    start = pos;
  }
  on_text(text.substr(start));
}

void load_added_tokens(const std::string& dir, const sentencepiece::SentencePieceProcessor& sp,
                       std::vector<AddedToken>& out) {
  using nlohmann::json;
  auto parse = [](const std::string& path) {
    try {
      return json::parse(read_text_file(path));
    } catch (const nlohmann::json::exception& e) {
      throw Error(path + ": not valid JSON: " + e.what());
    }
  };
  auto add = [&](const std::string& content, int64_t id, bool normalized, const std::string& path) {
    if (content.empty() || id < 0 || id > (int64_t{1} << 30)) throw Error(path + ": bad added token '" + content + "'");
    for (auto& t : out)
      if (t.content == content) {
        t.id = static_cast<int32_t>(id);
        t.normalized = normalized;
        return;
      }
    out.push_back({content, static_cast<int32_t>(id), normalized});
  };
  const std::string config_path = dir + "/tokenizer_config.json";
  if (file_exists(config_path)) {
    const json cfg = parse(config_path);
    if (cfg.is_object() && cfg.contains("added_tokens_decoder") && cfg["added_tokens_decoder"].is_object()) {
      for (const auto& [key, v] : cfg["added_tokens_decoder"].items()) {
        if (!v.is_object() || !v.contains("content") || !v["content"].is_string())
          throw Error(config_path + ": added_tokens_decoder entry '" + key + "' has no string 'content'");
        int64_t id;
        try {
          id = std::stoll(key);
        } catch (const std::exception&) {
          throw Error(config_path + ": added_tokens_decoder key '" + key + "' is not an id");
        }
        const bool special = v.value("special", false);
        add(v["content"].get<std::string>(), id, v.value("normalized", !special), config_path);
      }
      return;
    }
  }
  // Older layout: added_tokens.json {content: id}; special tokens (special_tokens_map.json) are matched in
  // the raw text unless the map says "normalized": true, the other added tokens after normalisation.
  std::vector<std::pair<std::string, bool>> specials;  // content, normalized
  const std::string map_path = dir + "/special_tokens_map.json";
  if (file_exists(map_path)) {
    const json m = parse(map_path);
    if (m.is_object())
      for (const auto& [key, v] : m.items()) {
        if (v.is_string()) specials.emplace_back(v.get<std::string>(), false);
        else if (v.is_object() && v.contains("content") && v["content"].is_string())
          specials.emplace_back(v["content"].get<std::string>(), v.value("normalized", false));
      }
  }
  auto special_normalized = [&](const std::string& content, bool fallback) {
    for (const auto& [c, n] : specials)
      if (c == content) return n;
    return fallback;
  };
  for (const auto& [content, normalized] : specials) {
    const int id = sp.PieceToId(content);
    if (id != sp.unk_id() || content == sp.IdToPiece(sp.unk_id())) add(content, id, normalized, map_path);
  }
  const std::string added_path = dir + "/added_tokens.json";
  if (file_exists(added_path)) {
    const json a = parse(added_path);
    if (!a.is_object()) throw Error(added_path + ": not a JSON object");
    for (const auto& [content, id] : a.items()) {
      if (!id.is_number_integer()) throw Error(added_path + ": id of '" + content + "' is not an integer");
      add(content, id.get<int64_t>(), special_normalized(content, true), added_path);
    }
  }
}

std::unique_ptr<sentencepiece::SentencePieceProcessor> load_spm(std::string_view proto, const std::string& path) {
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = sp->LoadFromSerializedProto(proto);
  if (!status.ok()) throw Error(path + ": cannot load SentencePiece model: " + status.ToString());
  return sp;
}

}  // namespace

std::string fast_normalize(const PrecompiledCharsmap& charsmap, std::string_view text) {
  const std::string mapped = charsmap.normalize(strip_white_space(text));
  std::string out;
  out.reserve(mapped.size());
  for (char c : mapped)
    if (!(c == ' ' && !out.empty() && out.back() == ' ')) out += c;
  return out;
}

Tokenizer::Tokenizer(const std::string& dir, const TokenizerOptions& options) : options_(options) {
  const std::string path = dir + "/spm.model";
  if (!file_exists(path)) throw Error(path + ": missing (the SentencePiece model of the checkpoint)");
  const std::string proto = read_text_file(path);
  const SpmModelParts parts = read_spm_model(proto, path);
  // Only the form in use is loaded (each holds the 128k-piece vocabulary).
  if (options.byte_fallback) spm_ = load_spm(proto, path);
  else spm_ = load_spm(make_fast_equivalent_model(proto, path), path + " (fast-tokenizer form)");
  // DeBERTa-v3's spm.model carries nmt_nfkc's precompiled map; without one every text would silently go
  // unnormalised (other ids than the reference's), so such a file is refused.
  if (parts.precompiled_charsmap.empty())
    throw Error(path + ": no precompiled normalisation map (DeBERTa-v3's spm.model has nmt_nfkc's); this is not "
                "PairRM's tokenizer");
  try {
    charsmap_ = PrecompiledCharsmap(parts.precompiled_charsmap);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  cls_id_ = spm_->PieceToId("[CLS]");
  sep_id_ = spm_->PieceToId("[SEP]");
  if (cls_id_ == spm_->unk_id() || sep_id_ == spm_->unk_id())
    throw Error(path + ": the vocabulary has no [CLS]/[SEP] pieces (not a DeBERTa-v3 model)");
  load_added_tokens(dir, *spm_, added_);
  // Longest first, so leftmost-longest matching is a first-match scan.
  std::sort(added_.begin(), added_.end(),
            [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;

int32_t Tokenizer::added_token_id(std::string_view content) const {
  for (const auto& t : added_)
    if (t.content == content) return t.id;
  return -1;
}

void Tokenizer::encode_with(const sentencepiece::SentencePieceProcessor& sp, std::string_view text,
                            std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::vector<int> ids;
  const auto status = sp.Encode(text, &ids);
  if (!status.ok()) throw Error("SentencePiece encode failed: " + status.ToString());
  out.insert(out.end(), ids.begin(), ids.end());
}

void Tokenizer::append_fast_normalized(std::string_view normalized, std::vector<int32_t>& out) const {
  if (normalized.empty()) return;
  // Metaspace pre-tokenizer: spaces become "▁", and a "▁" is prepended unless the text starts with one.
  std::string word;
  word.reserve(normalized.size() + 8);
  if (normalized.substr(0, 1) != " " && normalized.substr(0, kMetaspace.size()) != kMetaspace) word.append(kMetaspace);
  for (char c : normalized) {
    if (c == ' ') word.append(kMetaspace);
    else word += c;
  }
  encode_with(*spm_, word, out);
}

void Tokenizer::append_fast(std::string_view text, std::vector<int32_t>& out) const {
  if (options_.special_text == SpecialTextPolicy::kLiteral) {
    append_fast_normalized(fast_normalize(charsmap_, text), out);
    return;
  }
  // Hugging Face: tokens with normalized=false split the raw text; each piece is normalised, then the
  // normalized=true tokens split it; every remaining piece is pre-tokenized on its own.
  std::vector<const AddedToken*> raw_tokens, normalized_tokens;
  for (const auto& t : added_) (t.normalized ? normalized_tokens : raw_tokens).push_back(&t);
  auto on_token = [&](const AddedToken& t) { out.push_back(t.id); };
  split_on_tokens(
      text, raw_tokens,
      [&](std::string_view piece) {
        const std::string norm = fast_normalize(charsmap_, piece);
        split_on_tokens(norm, normalized_tokens, [&](std::string_view p) { append_fast_normalized(p, out); }, on_token);
      },
      on_token);
}

void Tokenizer::append_byte_fallback(std::string_view text, std::vector<int32_t>& out) const {
  if (options_.special_text == SpecialTextPolicy::kLiteral) {
    encode_with(*spm_, text, out);
    return;
  }
  std::vector<const AddedToken*> all;
  for (const auto& t : added_) all.push_back(&t);
  split_on_tokens(
      text, all, [&](std::string_view p) { encode_with(*spm_, p, out); },
      [&](const AddedToken& t) { out.push_back(t.id); });
}

void Tokenizer::append_ids(std::string_view text, std::vector<int32_t>& out) const {
  if (options_.byte_fallback) append_byte_fallback(text, out);
  else append_fast(text, out);
}

}  // namespace pairrm
