// `pairrm bench`: end-to-end speed of the network on synthetic rows of PairRM's layout.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pairrm/pairrm.h"

namespace pairrm {

struct BenchOptions {
  std::string model_dir;
  int tokens = 300;      // per pair (ignored with mixed)
  bool mixed = false;    // 64 pairs with lengths spread over 100..1000 tokens
  bool short_rows = false;  // 256 pairs with lengths spread over 30..120 tokens (what a scoring server sees)
  int pairs = 0;         // 0: 3 for fixed length, 64 for mixed, 256 for short
  int threads = 0;
  bool json = false;
  bool ceiling_only = false;  // --ceiling: only this machine's ceilings, every precision (no model needed)
  LoadOptions load;
};

// ModelInfo::dense_gemms as JSON (bench, the server's /info).
nlohmann::ordered_json dense_gemms_json(const ModelInfo& info);

// Runs the benchmark and prints a report (text or one JSON object) to stdout.
void run_bench(const BenchOptions& options);

struct AccuracyOptions {
  std::string model_dir;
  std::vector<Precision> precisions{Precision::kBF16, Precision::kInt8};
  int pairs = 500;
  int min_tokens = 30, max_tokens = 200;  // row lengths, uniform
  int threads = 0;
  uint64_t seed = 7;
  AttentionProducts attention = AttentionProducts::kAuto;  // for the reduced precisions
};

// The random rows accuracy measures on (seeded: the same rows for the same options and model).
std::vector<PairRow> accuracy_rows(const Model& model, const AccuracyOptions& options);

// Logit error of each precision against fp32 on accuracy_rows, as one JSON object: the fp32 logits' scale
// (mean |logit|, mean, std: their spread around the mean, and the fraction above 0), then per precision
// max, p99 and median of |logit - logit_fp32|, p99_error_over_fp32_std = p99 / that std (the error relative
// to the logits' spread), and the fraction of pairs whose sign agrees.
nlohmann::ordered_json accuracy_report(const AccuracyOptions& options);
// Prints accuracy_report.
void run_accuracy(const AccuracyOptions& options);

}  // namespace pairrm
