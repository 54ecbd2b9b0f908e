// `pairrm compare --input FILE.jsonl`: streaming, batched, order-preserving.
#pragma once
#include <istream>
#include <ostream>

#include "pairrm/pairrm.h"

namespace pairrm::cli {

struct JsonlOptions {
  CompareMode mode = CompareMode::kBoth;
  size_t batch_lines = 16;                 // comparisons per forward call
  size_t max_line_bytes = 64u << 20;       // longer lines are an error record, not an allocation
};

struct JsonlStats {
  long ok = 0;
  long failed = 0;
};

// Each input line {"id"?: any, "source": str, "candidate_a": str, "candidate_b": str} gives one output line
// {"id", "logit_ab"?, "logit_ba"?, "score", "a_better"}; a bad line gives {"line": n, "error": "..."}.
// Blank lines are skipped. Output is flushed per batch.
JsonlStats compare_jsonl(Context& ctx, std::istream& in, std::ostream& out, const JsonlOptions& options);

}  // namespace pairrm::cli
