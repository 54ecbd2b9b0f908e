// The JSONL jobs behind `pairrm compare|rank|best-of-n|worst-of-n|compare-conversations|dpo --input`.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "jobs/jsonl.h"
#include "pairrm/ranking.h"

namespace pairrm::jobs {

struct InputLimits {
  size_t max_candidates = 64;  // rank needs n(n-1) passes: bound the work one line can ask for
};

// {"source", "candidate_a", "candidate_b"} -> {"logit_ab"?, "logit_ba"?, "score", "a_better"}
std::unique_ptr<JsonlJob> make_compare_job(CompareMode mode);

// {"source", "candidates", "reference"?} -> {"scores", "ranks", "reference"?}. reference_mode: none = plain
// rank; "given" = the line's "reference" field; else a ReferenceMode name.
std::unique_ptr<JsonlJob> make_rank_job(const std::optional<std::string>& reference_mode, InputLimits limits);

// {"source", "candidates"} -> {"best_index", "best"} (or worst_*), + "order"/"scores" with return_all.
std::unique_ptr<JsonlJob> make_best_of_n_job(BestOfNOptions options, bool return_all, InputLimits limits);

// {"conversation_a": [{"role", "content"}...], "conversation_b": [...]} -> compare's fields.
std::unique_ptr<JsonlJob> make_conversations_job(CompareMode mode);

// {"prompt", "responses"} -> {"prompt", "chosen", "rejected", "chosen_score", "rejected_score"} from the
// full ranking (ties: lowest index), or {"prompt", "skipped": reason} when no preference exists.
std::unique_ptr<JsonlJob> make_dpo_job(InputLimits limits);

// What one JSONL command asks for, as the CLI flags, the Python module's run_jsonl options and the server
// bodies name it; make_job() turns it into the job, so the three front ends cannot drift apart.
struct JobSpec {
  std::string command;                 // compare | rank | best-of-n | worst-of-n | compare-conversations | dpo
  std::string mode = "both";           // compare, compare-conversations: ab | ba | both
  std::optional<std::string> with_ref; // rank: a ReferenceMode name or "given"
  std::string method = "bubble";       // best-of-n, worst-of-n: bubble | full
  std::optional<uint64_t> seed;        // bubble: visiting order
  bool return_all = false;
  InputLimits limits;
};

// Throws std::invalid_argument for an unknown command, mode or method.
std::unique_ptr<JsonlJob> make_job(const JobSpec& spec);

}  // namespace pairrm::jobs
