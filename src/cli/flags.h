// The flag groups that several `pairrm` subcommands share: the model's (ModelFlags), a JSONL job's
// (JsonlFlags), the comparison --mode, and run_job(), which runs a job over --input or one command-line line.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "jobs/commands.h"
#include "jobs/jsonl.h"
#include "pairrm/pairrm.h"

namespace pairrm::cli {

struct ModelFlags {
  std::string model;
  int threads = 0;
  std::string special_tokens = "literal";
  std::string precision = "fp32";
  std::string attention = "auto";
  bool byte_fallback = false;
  int source_max_length = 0;     // 0: the checkpoint's (1224 for PairRM)
  int candidate_max_length = 0;  // 0: the checkpoint's (412)
  int batch_size = 64;
  long max_tokens_per_batch = 16384;

  void add(CLI::App* app);
  void add_batching(CLI::App* app);

  // --model, else $PAIRRM_MODEL, else the bundled tiny model; a Hugging Face repo id is looked up in the
  // hub cache and downloaded when missing (pairrm download).
  std::string directory() const;

  std::shared_ptr<const pairrm::Model> load() const;
  pairrm::LoadOptions load_options() const;
  std::unique_ptr<pairrm::Context> context() const;
};

struct JsonlFlags {
  pairrm::jobs::JsonlOptions options;
  pairrm::jobs::InputLimits limits;
  std::string shard;

  CLI::Option* add(CLI::App* app, const std::string& line_format);  // returns --input
  void add_candidate_limit(CLI::App* app);
};

CLI::Option* add_mode(CLI::App* app, std::string& mode);

// Runs a job over --input, or over the one line given on the command line.
int run_job(const ModelFlags& mf, JsonlFlags& jf, pairrm::jobs::JsonlJob& job, const std::string& command,
            const nlohmann::json* single_line);

}  // namespace pairrm::cli
