// pairrm compare-conversations: compare two multi-turn conversations with the same USER turns (JSONL only).
#include "cli/commands_table.h"
#include "cli/flags.h"

namespace pairrm::cli {
namespace {

struct CompareConversations final : Command {
  ModelFlags model;
  JsonlFlags io;
  std::string mode = "both";

  int run() override {
    auto job = pairrm::jobs::make_job({.command = "compare-conversations", .mode = mode});
    return run_job(model, io, *job, "compare-conversations", nullptr);
  }
};

}  // namespace

std::unique_ptr<Command> add_compare_conversations(CLI::App& parent) {
  auto c = std::make_unique<CompareConversations>();
  auto* app = c->app =
      parent.add_subcommand("compare-conversations", "compare two multi-turn conversations with the same USER turns");
  c->model.add(app);
  c->model.add_batching(app);
  c->io.add(app, "{\"id\"?, \"conversation_a\": [{\"role\", \"content\"}...], \"conversation_b\": [...]}")->required();
  add_mode(app, c->mode);
  return c;
}

}  // namespace pairrm::cli
