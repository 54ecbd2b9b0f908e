// The token row of one comparison, with the model card's truncation.
#pragma once
#include <cstdint>
#include <vector>

#include "pairrm/pairrm.h"

namespace pairrm {

struct RowLimits {
  int source_max_tokens = 1224;  // source segment, [CLS] and [SEP] included
  int total_max_tokens = 2048;   // source_max + 2 · candidate_max
};

struct RowIds {
  int32_t cls = 1, sep = 2;
  int32_t source_prefix = 128001, cand1_prefix = 128002, cand2_prefix = 128003;
};

// Builds [CLS] <src> S [SEP] [CLS] <c1> C1 [SEP] [CLS] <c2> C2 [SEP] from the token ids of the three texts
// (no [CLS]/[SEP] in them). The source segment is right-truncated to source_max_tokens (its [SEP] kept);
// each candidate segment to (total_max_tokens - len(source segment)) / 2, per example (so a row never
// depends on the other rows of a batch). Prefix positions are recorded here, never searched for.
PairRow assemble_pair_row(const std::vector<int32_t>& source, const std::vector<int32_t>& cand1,
                          const std::vector<int32_t>& cand2, const RowIds& ids, const RowLimits& limits);

}  // namespace pairrm
