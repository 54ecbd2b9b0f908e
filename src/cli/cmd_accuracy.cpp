// pairrm accuracy: logit error of bf16 and int8 against fp32 on random rows (see accuracy_report).
#include "cli/commands_table.h"
#include "cli/flags.h"
#include "tools/bench.h"

namespace pairrm::cli {
namespace {

struct Accuracy final : Command {
  pairrm::AccuracyOptions acc;
  std::string model;
  std::string attention = "auto";

  int run() override {
    ModelFlags f;  // only for the --model lookup: $PAIRRM_MODEL, the bundled model, a hub repo id
    f.model = model;
    acc.model_dir = f.directory();
    acc.attention = pairrm::parse_attention_products(attention);
    if (acc.min_tokens > acc.max_tokens) throw pairrm::Error("--min-tokens is above --max-tokens");
    pairrm::run_accuracy(acc);
    return 0;
  }
};

}  // namespace

std::unique_ptr<Command> add_accuracy(CLI::App& parent) {
  auto c = std::make_unique<Accuracy>();
  auto& acc = c->acc;
  auto* app = c->app =
      parent.add_subcommand("accuracy",
                            "logit error of bf16 and int8 against fp32 on random rows (one JSON object): the fp32 "
                            "logits' mean |logit|, mean and std (their spread); per precision max, p99 and median "
                            "|logit - logit_fp32|, p99_error_over_fp32_std = p99 / that std, and the fraction of rows "
                            "whose sign agrees with fp32. Run it on a model whose logits are spread like PairRM's "
                            "(init-random --realistic): on the default random model (logits ~0.003) sign agreement "
                            "means nothing");
  app->add_option("--model,-m", c->model, "checkpoint directory (default: $PAIRRM_MODEL, else the bundled tiny model)");
  app->add_option("--pairs", acc.pairs, "random rows (default 500, the fewest the documented figures use: p99 then "
                                         "has 5 rows above it, and a sign agreement near 99 % a standard error of "
                                         "~0.45 points)")->check(CLI::PositiveNumber);
  app->add_option("--min-tokens", acc.min_tokens, "shortest row (default 30)")->check(CLI::Range(9, 2048));
  app->add_option("--max-tokens", acc.max_tokens, "longest row (default 200)")->check(CLI::Range(9, 2048));
  app->add_option("--threads,-t", acc.threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app->add_option("--seed", acc.seed, "random seed (default 7)");
  app->add_option("--attention", c->attention, "the attention's products under bf16/int8: auto, fp32 or bf16")
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}));
  return c;
}

}  // namespace pairrm::cli
