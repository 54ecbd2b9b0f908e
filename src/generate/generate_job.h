// `pairrm generate-best-of-n`: n samples per prompt from an OpenAI-compatible endpoint, the best kept by
// PairRM. A JSONL job, so --resume, --shard, error records and progress work as for the other commands.
#pragma once
#include <memory>
#include <string>

#include "jobs/jsonl.h"
#include "generate/chat_client.h"
#include "pairrm/ranking.h"

namespace pairrm::generate {

struct GenerateOptions {
  ChatOptions chat;
  int n = 8;                  // samples per prompt
  int concurrency = 4;        // requests in flight at once
  std::string system;         // default system message (a line's "system" wins)
  BestOfNOptions select;      // bubble (2(n-1) passes) or full ranking; seeded bubble order
  bool return_samples = false;
  bool return_scores = false; // needs select.method == kFull
};

// Lines {"id"?, "prompt", "system"?} -> {"prompt", "best", "best_index", "samples"?, "scores"?}. A prompt whose
// samples cannot be had is that line's error record; FatalEndpointError (bad key, no such endpoint, server
// unreachable) stops the run.
std::unique_ptr<jobs::JsonlJob> make_generate_job(const GenerateOptions& options);

}  // namespace pairrm::generate
