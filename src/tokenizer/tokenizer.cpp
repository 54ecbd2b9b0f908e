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
// between (possibly empty) and on_token(token, match) for each match, in order. Every view is into `text`.
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
    on_token(*best, text.substr(pos, best->content.size()));
    pos += best->content.size();
    start = pos;
  }
  on_text(text.substr(start));
}

// The source range of `n` derived bytes whose ranges start at `from`: from the first begin to the last end.
SourceRange span_of(const SourceRange* from, size_t n) {
  if (!from || n == 0) return {};
  SourceRange r = from[0];
  for (size_t i = 1; i < n; ++i) {
    r.begin = std::min(r.begin, from[i].begin);
    r.end = std::max(r.end, from[i].end);
  }
  return r;
}

uint32_t offset_in(std::string_view whole, std::string_view part) { return static_cast<uint32_t>(part.data() - whole.data()); }

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
  auto add = [&](const std::string& content, int64_t id, bool normalized, bool special, const std::string& path) {
    if (content.empty() || id < 0 || id > (int64_t{1} << 30)) throw Error(path + ": bad added token '" + content + "'");
    for (auto& t : out)
      if (t.content == content) {
        t.id = static_cast<int32_t>(id);
        t.normalized = normalized;
        t.special = special;
        return;
      }
    out.push_back({content, static_cast<int32_t>(id), normalized, special});
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
        add(v["content"].get<std::string>(), id, v.value("normalized", !special), special, config_path);
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
  auto is_listed_special = [&](const std::string& content) {
    for (const auto& [c, n] : specials)
      if (c == content) return true;
    return false;
  };
  for (const auto& [content, normalized] : specials) {
    const int id = sp.PieceToId(content);
    if (id != sp.unk_id() || content == sp.IdToPiece(sp.unk_id())) add(content, id, normalized, true, map_path);
  }
  const std::string added_path = dir + "/added_tokens.json";
  if (file_exists(added_path)) {
    const json a = parse(added_path);
    if (!a.is_object()) throw Error(added_path + ": not a JSON object");
    for (const auto& [content, id] : a.items()) {
      if (!id.is_number_integer()) throw Error(added_path + ": id of '" + content + "' is not an integer");
      add(content, id.get<int64_t>(), special_normalized(content, true), is_listed_special(content), added_path);
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

std::string fast_normalize(const PrecompiledCharsmap& charsmap, std::string_view text, std::vector<SourceRange>* from,
                           uint32_t base) {
  const std::string_view stripped = strip_white_space(text);
  std::vector<SourceRange> mapped_from;
  const std::string mapped =
      charsmap.normalize(stripped, from ? &mapped_from : nullptr, base + offset_in(text, stripped));
  std::string out;
  out.reserve(mapped.size());
  for (size_t i = 0; i < mapped.size(); ++i) {
    const char c = mapped[i];
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
    if (from) from->push_back(mapped_from[i]);
  }
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
  vocab_size_ = spm_->GetPieceSize();
  for (const auto& t : added_) vocab_size_ = std::max(vocab_size_, t.id + 1);
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

struct Tokenizer::Sink {
  std::vector<int32_t>& ids;
  std::vector<SourceRange>* ranges;  // null: offsets not wanted (scoring), so none are computed
  bool tracking() const { return ranges != nullptr; }
  void add(int32_t id, SourceRange range) {
    ids.push_back(id);
    if (ranges) ranges->push_back(range);
  }
};

void Tokenizer::encode_with(const sentencepiece::SentencePieceProcessor& sp, std::string_view text,
                            const SourceRange* from, Sink& sink) const {
  if (text.empty()) return;
  if (!sink.tracking()) {
    std::vector<int> ids;
    const auto status = sp.Encode(text, &ids);
    if (!status.ok()) throw Error("SentencePiece encode failed: " + status.ToString());
    sink.ids.insert(sink.ids.end(), ids.begin(), ids.end());
    return;
  }
  sentencepiece::ImmutableSentencePieceText spt;
  const auto status = sp.Encode(text, spt.mutable_proto());
  if (!status.ok()) throw Error("SentencePiece encode failed: " + status.ToString());
  // A piece's begin/end are bytes of `text`; `from` maps them on to the caller's text. Where one character
  // gives several pieces (its bytes, or a normalization such as "…" -> "..."), SentencePiece gives the last
  // the character's bytes and the others none; each gets the character's, as the Rust tokenizer does, so
  // that offsets never step back. (A lone "▁" first is the one it prepends: it keeps none.)
  const auto& pieces = spt.pieces();
  std::vector<SourceRange> spans(pieces.size());
  for (size_t i = pieces.size(); i-- > 0;) {
    const size_t begin = std::min<size_t>(pieces[i].begin(), text.size()), end = std::min<size_t>(pieces[i].end(), text.size());
    const bool lone_prefix = i == 0 && pieces[i].piece() == kMetaspace;
    const bool part_of_next = end <= begin && !lone_prefix && i + 1 < pieces.size();
    spans[i] = part_of_next ? spans[i + 1] : span_of(from + begin, std::max(begin, end) - begin);
  }
  for (size_t i = 0; i < pieces.size(); ++i) sink.add(static_cast<int32_t>(pieces[i].id()), spans[i]);
}

void Tokenizer::append_fast_normalized(std::string_view normalized, const SourceRange* from, Sink& sink) const {
  if (normalized.empty()) return;
  // Metaspace pre-tokenizer: spaces become "▁", and a "▁" is prepended unless the text starts with one.
  std::string word;
  std::vector<SourceRange> word_from;
  word.reserve(normalized.size() + 8);
  auto came_from = [&](SourceRange r, size_t bytes) {
    if (from) word_from.resize(word_from.size() + bytes, r);
  };
  if (normalized.substr(0, 1) != " " && normalized.substr(0, kMetaspace.size()) != kMetaspace) {
    word.append(kMetaspace);
    if (from) came_from({from[0].begin, from[0].begin}, kMetaspace.size());  // added: no bytes of its own
  }
  for (size_t i = 0; i < normalized.size(); ++i) {
    const char c = normalized[i];
    if (c == ' ') word.append(kMetaspace);
    else word += c;
    if (from) came_from(from[i], c == ' ' ? kMetaspace.size() : 1);
  }
  encode_with(*spm_, word, from ? word_from.data() : nullptr, sink);
}

void Tokenizer::append_fast(std::string_view text, Sink& sink) const {
  const bool track = sink.tracking();
  std::vector<SourceRange> from;
  if (options_.special_text == SpecialTextPolicy::kLiteral) {
    const std::string norm = fast_normalize(charsmap_, text, track ? &from : nullptr, 0);
    append_fast_normalized(norm, track ? from.data() : nullptr, sink);
    return;
  }
  // Hugging Face: tokens with normalized=false split the raw text; each piece is normalised, then the
  // normalized=true tokens split it; every remaining piece is pre-tokenized on its own.
  std::vector<const AddedToken*> raw_tokens, normalized_tokens;
  for (const auto& t : added_) (t.normalized ? normalized_tokens : raw_tokens).push_back(&t);
  split_on_tokens(
      text, raw_tokens,
      [&](std::string_view piece) {
        from.clear();
        const std::string norm = fast_normalize(charsmap_, piece, track ? &from : nullptr, offset_in(text, piece));
        const SourceRange* norm_from = track ? from.data() : nullptr;
        auto at = [&](std::string_view part) { return norm_from ? norm_from + offset_in(norm, part) : nullptr; };
        split_on_tokens(
            norm, normalized_tokens, [&](std::string_view p) { append_fast_normalized(p, at(p), sink); },
            [&](const AddedToken& t, std::string_view match) { sink.add(t.id, span_of(at(match), match.size())); });
      },
      [&](const AddedToken& t, std::string_view match) {
        sink.add(t.id, {offset_in(text, match), offset_in(text, match) + static_cast<uint32_t>(match.size())});
      });
}

void Tokenizer::append_byte_fallback(std::string_view text, Sink& sink) const {
  // SentencePiece normalises itself here and reports offsets into the text it was given.
  std::vector<SourceRange> identity;
  auto encode_piece = [&](std::string_view piece) {
    const SourceRange* from = nullptr;
    if (sink.tracking()) {
      identity.clear();
      for (size_t i = 0; i < piece.size(); ++i)
        identity.push_back({offset_in(text, piece) + uint32_t(i), offset_in(text, piece) + uint32_t(i + 1)});
      from = identity.data();
    }
    encode_with(*spm_, piece, from, sink);
  };
  if (options_.special_text == SpecialTextPolicy::kLiteral) {
    encode_piece(text);
    return;
  }
  std::vector<const AddedToken*> all;
  for (const auto& t : added_) all.push_back(&t);
  split_on_tokens(text, all, encode_piece, [&](const AddedToken& t, std::string_view match) {
    sink.add(t.id, {offset_in(text, match), offset_in(text, match) + static_cast<uint32_t>(match.size())});
  });
}

void Tokenizer::append_ids(std::string_view text, std::vector<int32_t>& out, std::vector<SourceRange>* ranges) const {
  Sink sink{out, ranges};
  if (options_.byte_fallback) append_byte_fallback(text, sink);
  else append_fast(text, sink);
}

std::string Tokenizer::token_string(int32_t id) const {
  if (id < 0 || id >= vocab_size_) throw Error("token id " + std::to_string(id) + " is out of the vocabulary");
  for (const auto& t : added_)
    if (t.id == id) return t.content;
  return id < spm_->GetPieceSize() ? spm_->IdToPiece(id) : std::string();
}

bool Tokenizer::is_special(int32_t id) const {
  for (const auto& t : added_)
    if (t.id == id) return t.special;
  return false;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  // tokenizers' TokenizerImpl::decode + decoders::Metaspace (prepend_scheme "always"): the first token
  // kept drops its "▁"s, every later "▁" is a space; tokens are joined with nothing between them.
  std::string out;
  bool first = true;
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size_ || (skip_special && is_special(id))) continue;
    const std::string token = token_string(id);
    for (size_t i = 0; i < token.size();) {
      if (token.compare(i, kMetaspace.size(), kMetaspace) == 0) {
        if (!first) out += ' ';
        i += kMetaspace.size();
      } else {
        out += token[i++];
      }
    }
    first = false;
  }
  return out;
}

}  // namespace pairrm
