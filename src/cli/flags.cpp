#include "cli/flags.h"

#include <cstdlib>
#include <iostream>
#include <tuple>

#include "hub/hub.h"
#include "util/bundled_model.h"

namespace pairrm::cli {

void ModelFlags::add(CLI::App* app) {
  app->add_option("--model,-m", model,
                  "checkpoint directory or Hugging Face repo id org/name[@revision] (default: $PAIRRM_MODEL, else "
                  "the bundled tiny random-weight model, with a warning)");
  app->add_option("--threads,-t", threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app->add_option("--special-tokens", special_tokens,
                  "special/prefix token strings inside user text: literal (plain text, default) or hf (become "
                  "their ids, as transformers does)")
      ->check(CLI::IsMember({"literal", "hf"}));
  app->add_option("--precision", precision,
                  "fp32 (default, exact), bf16 (GEMMs in bfloat16) or int8 (int8 weights and activations); see "
                  "BENCHMARKS.md for their accuracy")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}));
  app->add_option("--attention", attention,
                  "the attention's matrix products under bf16/int8: auto (default: bf16 on AMD Zen 4+, where it is "
                  "twice as fast, else fp32), fp32 or bf16")
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}));
  app->add_flag("--byte-fallback", byte_fallback,
                "spell rare characters with SentencePiece byte pieces (slow tokenizer) instead of one [UNK] "
                "(fast tokenizer, what PairRM was trained with)");
  app->add_option("--source-max-length", source_max_length,
                  "tokens kept of the source segment, its [CLS], prefix and [SEP] included (llm-blender's "
                  "source_max_length; default: the checkpoint's, 1224 for PairRM)")
      ->check(CLI::Range(3, 8192));
  app->add_option("--candidate-max-length", candidate_max_length,
                  "tokens kept of each candidate segment (llm-blender's candidate_max_length; default: the "
                  "checkpoint's, 412 for PairRM)")
      ->check(CLI::Range(3, 8192));
}

void ModelFlags::add_batching(CLI::App* app) {
  app->add_option("--batch-size", batch_size, "forward passes per batch (default 64); never changes a result")
      ->check(CLI::PositiveNumber);
  app->add_option("--max-tokens-per-batch", max_tokens_per_batch,
                  "tokens per batch (default 16384; a longer row runs alone); never changes a result")
      ->check(CLI::PositiveNumber);
}

std::string ModelFlags::directory() const {
  std::string m = model;
  if (m.empty())
    if (const char* env = std::getenv("PAIRRM_MODEL"); env && *env) m = env;
  if (m.empty()) {
    pairrm::warn_bundled_model();
    return pairrm::bundled_model_dir();
  }
  return pairrm::hub::resolve_model(m);
}

std::shared_ptr<const pairrm::Model> ModelFlags::load() const {
  return pairrm::Model::load(directory(), load_options());
}

pairrm::LoadOptions ModelFlags::load_options() const {
  pairrm::LoadOptions o;
  o.tokenizer.special_text =
      special_tokens == "hf" ? pairrm::SpecialTextPolicy::kHuggingFace : pairrm::SpecialTextPolicy::kLiteral;
  o.tokenizer.byte_fallback = byte_fallback;
  o.source_max_length = source_max_length;
  o.candidate_max_length = candidate_max_length;
  o.precision = pairrm::parse_precision(precision);
  o.attention = pairrm::parse_attention_products(attention);
  return o;
}

std::unique_ptr<pairrm::Context> ModelFlags::context() const {
  auto ctx = std::make_unique<pairrm::Context>(load(), threads);
  ctx->set_batch_limits(batch_size, max_tokens_per_batch);
  return ctx;
}

CLI::Option* JsonlFlags::add(CLI::App* app, const std::string& line_format) {
  auto* in = app->add_option("--input,-i", options.input, "JSONL input ('-' = stdin), lines " + line_format);
  app->add_option("--output,-o", options.output, "JSONL output file ('-' or absent = stdout)");
  app->add_flag("--resume", options.resume,
                "continue an interrupted run: keep the records already in --output and append the rest");
  app->add_flag("--quiet,-q", options.quiet, "no progress or summary on stderr");
  app->add_option("--chunk-lines", options.chunk_lines,
                  "input lines whose forward passes are scheduled together (default 32)")
      ->check(CLI::PositiveNumber);
  app->add_option("--shard", shard,
                  "i/n: only every n-th non-blank line from the i-th (0-based), for Slurm arrays, indexed Jobs or "
                  "xargs; `pairrm merge` puts the outputs back in input order");
  app->add_option("--max-line-bytes", options.max_line_bytes,
                  "a longer input line is an error record, never read into memory (default 64 MiB)")
      ->check(CLI::PositiveNumber);
  return in;
}

void JsonlFlags::add_candidate_limit(CLI::App* app) {
  app->add_option("--max-candidates", limits.max_candidates, "candidates per line (default 64)")
      ->check(CLI::PositiveNumber);
}

CLI::Option* add_mode(CLI::App* app, std::string& mode) {
  return app
      ->add_option("--mode", mode,
                   "ab: logit(A,B); ba: logit(B,A); both (default): logit(A,B) - logit(B,A), llm-blender's default")
      ->check(CLI::IsMember({"ab", "ba", "both"}));
}

int run_job(const ModelFlags& mf, JsonlFlags& jf, pairrm::jobs::JsonlJob& job, const std::string& command,
            const nlohmann::json* single_line) {
  auto ctx = mf.context();
  if (single_line) {
    job.add(*single_line);
    std::cout << job.run(*ctx).at(0).dump() << "\n";
    return 0;
  }
  jf.options.command = "pairrm " + command;
  if (!jf.shard.empty()) std::tie(jf.options.shard_index, jf.options.shard_count) = pairrm::jobs::parse_shard(jf.shard);
  const auto stats = pairrm::jobs::run_jsonl(*ctx, job, jf.options);
  return stats.failed ? 1 : 0;
}

}  // namespace pairrm::cli
