// pairrm init-random: a full-size PairRM checkpoint with random weights, for benchmarks (and, --realistic, for
// accuracy measurements).
#include <iostream>

#include "cli/commands_table.h"
#include "tools/init_random.h"
#include "util/bundled_model.h"

namespace pairrm::cli {
namespace {

struct InitRandom final : Command {
  pairrm::RandomCheckpointOptions rnd;

  int run() override {
    if (rnd.tokenizer_dir.empty()) rnd.tokenizer_dir = pairrm::bundled_model_dir();
    pairrm::write_random_checkpoint(rnd);
    std::cerr << "wrote " << rnd.out_dir << "\n";
    return 0;
  }
};

}  // namespace

std::unique_ptr<Command> add_init_random(CLI::App& parent) {
  auto c = std::make_unique<InitRandom>();
  auto& rnd = c->rnd;
  auto* app = c->app =
      parent.add_subcommand("init-random", "write a full-size PairRM checkpoint with random weights (for benchmarks)");
  app->add_option("--out", rnd.out_dir, "output directory")->required();
  app->add_option("--seed", rnd.seed, "random seed (default 0)");
  app->add_option("--tokenizer-from", rnd.tokenizer_dir, "copy spm.model and the added-token files from here "
                                                         "(default: the bundled tiny model)");
  app->add_flag("--realistic", rnd.realistic,
                "logits spread like PairRM's, for `pairrm accuracy`: Hugging Face's initialisation (Linear weights "
                "and embeddings N(0, 0.02), biases 0, LayerNorm 1 and 0), the two candidate prefix tokens' "
                "embedding rows 0 (their states, which the head reads, then come from the texts alone, not from a "
                "fixed difference of two random rows), and head_layer.4's weights N(0, 2) to scale the logits to "
                "PairRM's range (full size: mean |logit| 3.8 over `accuracy`'s 500 rows). The default model's logits "
                "are ~0.003; benchmarks use it");
  app->add_option("--layers", rnd.num_layers, "encoder layers (default 24, PairRM's)")->check(CLI::PositiveNumber);
  app->add_option("--hidden", rnd.hidden_size, "hidden size (default 1024; smaller for quick experiments)")->check(CLI::PositiveNumber);
  app->add_option("--heads", rnd.num_heads, "attention heads (default 16)")->check(CLI::PositiveNumber);
  app->add_option("--intermediate", rnd.intermediate_size, "FFN size (default 4096)")->check(CLI::PositiveNumber);
  return c;
}

}  // namespace pairrm::cli
