// The JSONL pipeline on arbitrary input (every job kind, chosen by the first byte): never a crash, and
// exactly one output record per non-blank input line.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "jobs/commands.h"
#include "jobs/jsonl.h"
#include "fake_scorer.h"
#include "scratch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using namespace pairrm;
  static const std::string in = fuzz::scratch_path(".in.jsonl");
  static const std::string out = fuzz::scratch_path(".out.jsonl");
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::ofstream(in, std::ios::binary) << text;
  jobs::InputLimits limits;
  limits.max_candidates = 8;
  std::unique_ptr<jobs::JsonlJob> job;
  switch (data[0] % 6) {
    case 0: job = jobs::make_compare_job(CompareMode::kBoth); break;
    case 1: job = jobs::make_rank_job(std::nullopt, limits); break;
    case 2: job = jobs::make_rank_job(std::string("given"), limits); break;
    case 3: job = jobs::make_best_of_n_job(BestOfNOptions{}, true, limits); break;
    case 4: job = jobs::make_conversations_job(CompareMode::kAB); break;
    default: job = jobs::make_dpo_job(limits); break;
  }
  jobs::JsonlOptions o;
  o.input = in;
  o.output = out;
  o.quiet = true;
  o.chunk_lines = 4;
  o.max_line_bytes = 1 << 16;
  fuzz::FakeScorer scorer;
  const jobs::JsonlStats stats = jobs::run_jsonl(scorer, *job, o);
  // One record per non-blank line (a line of only spaces/tabs/CR is blank).
  long lines = 0;
  std::istringstream s(text);
  for (std::string line; std::getline(s, line);)
    if (line.size() >= o.max_line_bytes || line.find_first_not_of(" \t\r") != std::string::npos) ++lines;
  if (stats.ok + stats.failed != lines) std::abort();
  return 0;
}
