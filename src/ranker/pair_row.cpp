#include "ranker/pair_row.h"

#include <algorithm>

namespace pairrm {
namespace {

// Appends [CLS] prefix body[: max_tokens - 3] [SEP]; returns the prefix position.
int32_t append_segment(std::vector<int32_t>& row, int32_t cls, int32_t prefix, const std::vector<int32_t>& body,
                       int32_t sep, int max_tokens) {
  row.push_back(cls);
  const auto prefix_pos = static_cast<int32_t>(row.size());
  row.push_back(prefix);
  const size_t keep = std::min(body.size(), static_cast<size_t>(std::max(0, max_tokens - 3)));
  row.insert(row.end(), body.begin(), body.begin() + static_cast<long>(keep));
  row.push_back(sep);
  return prefix_pos;
}

}  // namespace

PairRow assemble_pair_row(const std::vector<int32_t>& source, const std::vector<int32_t>& cand1,
                          const std::vector<int32_t>& cand2, const RowIds& ids, const RowLimits& limits) {
  PairRow r;
  r.ids.reserve(std::min<size_t>(source.size() + cand1.size() + cand2.size() + 9, limits.total_max_tokens));
  r.source_pos = append_segment(r.ids, ids.cls, ids.source_prefix, source, ids.sep, limits.source_max_tokens);
  const int budget = (limits.total_max_tokens - static_cast<int>(r.ids.size())) / 2;
  r.cand1_pos = append_segment(r.ids, ids.cls, ids.cand1_prefix, cand1, ids.sep, budget);
  r.cand2_pos = append_segment(r.ids, ids.cls, ids.cand2_prefix, cand2, ids.sep, budget);
  return r;
}

}  // namespace pairrm
