// pairrm bench: the network's speed on synthetic rows, or only this machine's ceilings (--ceiling).
#include "cli/commands_table.h"
#include "cli/flags.h"
#include "tools/bench.h"

namespace pairrm::cli {
namespace {

struct Bench final : Command {
  ModelFlags model;
  pairrm::BenchOptions bench;

  int run() override {
    if (!bench.ceiling_only) bench.model_dir = model.directory();
    bench.threads = model.threads;
    bench.load = model.load_options();
    pairrm::run_bench(bench);
    return 0;
  }
};

}  // namespace

std::unique_ptr<Command> add_bench(CLI::App& parent) {
  auto c = std::make_unique<Bench>();
  auto& bench = c->bench;
  auto* app = c->app = parent.add_subcommand("bench", "measure the network's speed on synthetic rows");
  c->model.add(app);
  auto* tokens_opt = app->add_option("--tokens", bench.tokens, "tokens per pair (default 300)")->check(CLI::Range(9, 1 << 20));
  auto* mixed_opt = app->add_flag("--mixed", bench.mixed, "64 pairs with lengths spread over 100..1000 tokens")->excludes(tokens_opt);
  app->add_flag("--short", bench.short_rows, "256 pairs with lengths spread over 30..120 tokens (a scoring server's rows)")
      ->excludes(tokens_opt)
      ->excludes(mixed_opt);
  app->add_option("--pairs", bench.pairs, "pairs to time (default 3, 64 with --mixed, 256 with --short)")->check(CLI::PositiveNumber);
  app->add_flag("--json", bench.json, "one JSON object");
  app->add_flag("--ceiling", bench.ceiling_only,
                "only measure this machine's ceilings for every precision (the multiply-add peak and the dense "
                "layers' GEMM) at --threads; every bench report has its precision's");
  return c;
}

}  // namespace pairrm::cli
