#include "tokenizer/charsmap.h"

#include <utf8proc.h>

#include <cstring>

#include "pairrm/pairrm.h"
#include "util/utf8.h"

namespace pairrm {
namespace {

// Darts-clone unit layout.
inline bool has_leaf(uint32_t u) { return (u >> 8) & 1; }
inline uint32_t value(uint32_t u) { return u & ((1u << 31) - 1); }
inline uint32_t label(uint32_t u) { return u & ((1u << 31) | 0xFF); }
inline uint32_t offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }

}  // namespace

PrecompiledCharsmap::PrecompiledCharsmap(std::string_view blob) {
  if (blob.empty()) return;
  if (blob.size() < 4) throw Error("precompiled charsmap: truncated");
  uint32_t trie_bytes;
  std::memcpy(&trie_bytes, blob.data(), 4);
  if (trie_bytes % 4 != 0 || trie_bytes > blob.size() - 4 || trie_bytes == 0)
    throw Error("precompiled charsmap: bad trie size");
  units_.resize(trie_bytes / 4);
  std::memcpy(units_.data(), blob.data() + 4, trie_bytes);
  normalized_ = std::string(blob.substr(4 + trie_bytes));
}

bool PrecompiledCharsmap::shortest_prefix_replacement(std::string_view text, std::string_view* replacement) const {
  if (units_.empty()) return false;
  uint32_t node = offset(units_[0]);
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<uint8_t>(text[i]);
    if (c == 0) return false;  // keys never contain NUL
    node ^= c;
    if (node >= units_.size()) return false;
    const uint32_t u = units_[node];
    if (label(u) != c) return false;
    node ^= offset(u);
    if (node >= units_.size()) return false;
    if (has_leaf(u)) {
      const uint32_t v = value(units_[node]);
      if (v >= normalized_.size()) return false;
      const char* s = normalized_.data() + v;
      *replacement = std::string_view(s, strnlen(s, normalized_.size() - v));
      return true;
    }
  }
  return false;
}

std::string PrecompiledCharsmap::normalize(std::string_view text, std::vector<SourceRange>* from, uint32_t base) const {
  std::string out;
  out.reserve(text.size());
  auto record = [&](size_t before, size_t begin, size_t end) {  // out[before, size) came from text[begin, end)
    if (from) from->resize(from->size() + (out.size() - before), SourceRange{uint32_t(base + begin), uint32_t(base + end)});
  };
  size_t pos = 0;
  utf8proc_int32_t state = 0;
  while (pos < text.size()) {
    // One extended grapheme cluster: [pos, end).
    char32_t cp;
    size_t end = pos + decode_utf8(text, pos, &cp);
    char32_t prev = cp;
    state = 0;
    while (end < text.size()) {
      char32_t next;
      const size_t len = decode_utf8(text, end, &next);
      if (utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(prev), static_cast<utf8proc_int32_t>(next), &state))
        break;
      prev = next;
      end += len;
    }
    const std::string_view cluster = text.substr(pos, end - pos);
    std::string_view rep;
    if (cluster.size() < 6 && shortest_prefix_replacement(cluster, &rep)) {
      const size_t before = out.size();
      out.append(rep);
      record(before, pos, end);
    } else {
      for (size_t p = 0; p < cluster.size();) {
        const size_t len = decode_utf8(cluster, p, &cp);
        const std::string_view ch = cluster.substr(p, len);
        const size_t before = out.size();
        if (shortest_prefix_replacement(ch, &rep)) out.append(rep);
        else out.append(ch);
        record(before, pos + p, pos + p + len);
        p += len;
      }
    }
    pos = end;
  }
  return out;
}

}  // namespace pairrm
