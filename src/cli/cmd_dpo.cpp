// pairrm dpo: N responses per prompt become a DPO pair (JSONL only).
#include "cli/commands_table.h"
#include "cli/flags.h"

namespace pairrm::cli {
namespace {

struct Dpo final : Command {
  ModelFlags model;
  JsonlFlags io;

  int run() override {
    auto job = pairrm::jobs::make_job({.command = "dpo", .limits = io.limits});
    return run_job(model, io, *job, "dpo", nullptr);
  }
};

}  // namespace

std::unique_ptr<Command> add_dpo(CLI::App& parent) {
  auto c = std::make_unique<Dpo>();
  auto* app = c->app = parent.add_subcommand(
      "dpo", "turn N responses per prompt into a DPO pair (best and worst of the full ranking)");
  c->model.add(app);
  c->model.add_batching(app);
  c->io.add(app, "{\"id\"?, \"prompt\", \"responses\": [...]}")->required();
  c->io.add_candidate_limit(app);
  return c;
}

}  // namespace pairrm::cli
