// pairrm best-of-n and pairrm worst-of-n: one implementation, two subcommands.
#include <cstdint>
#include <iostream>
#include <nlohmann/json.hpp>
#include <vector>

#include "cli/commands_table.h"
#include "cli/flags.h"

namespace pairrm::cli {
namespace {

struct Select final : Command {
  std::string name;  // best-of-n or worst-of-n
  ModelFlags model;
  JsonlFlags io;
  std::string source, method = "bubble";
  std::vector<std::string> candidates;
  uint64_t seed = 0;
  bool return_all = false;
  CLI::Option* seed_opt = nullptr;
  CLI::Option* input_opt = nullptr;

  int run() override {
    pairrm::jobs::JobSpec spec{.command = name, .method = method, .return_all = return_all, .limits = io.limits};
    if (*seed_opt) spec.seed = seed;
    auto job = pairrm::jobs::make_job(spec);
    if (*input_opt) return run_job(model, io, *job, name, nullptr);
    if (candidates.empty()) {
      std::cerr << "pairrm " << name << ": give --source and --candidates, or --input FILE.jsonl\n";
      return 2;
    }
    const nlohmann::json line = {{"source", source}, {"candidates", candidates}};
    return run_job(model, io, *job, name, &line);
  }
};

std::unique_ptr<Command> add_select(CLI::App& parent, const std::string& name, const std::string& description) {
  auto c = std::make_unique<Select>();
  c->name = name;
  auto* app = c->app = parent.add_subcommand(name, description);
  c->model.add(app);
  c->model.add_batching(app);
  auto* in = c->input_opt = c->io.add(app, "{\"id\"?, \"source\", \"candidates\": [...]}");
  c->io.add_candidate_limit(app);
  app->add_option("--source,-s", c->source, "the instruction / prompt")->excludes(in);
  app->add_option("--candidates,-c", c->candidates, "the candidates")->excludes(in);
  app->add_option("--method", c->method,
                  "bubble (default): one pass comparing neighbours, 2(n-1) passes; full: rank all pairs")
      ->check(CLI::IsMember({"bubble", "full"}));
  c->seed_opt = app->add_option("--seed", c->seed, "bubble: visit the candidates in a seeded random order "
                                                   "(default: the given order)");
  app->add_flag("--return-all", c->return_all,
                "also output the bubble order and step scores (\"order\", \"pass_scores\") or the full "
                "ranking (\"scores\", \"ranks\")");
  return c;
}

}  // namespace

std::unique_ptr<Command> add_best_of_n(CLI::App& parent) {
  return add_select(parent, "best-of-n", "pick the best candidate (llm-blender's get_best_of_n)");
}

std::unique_ptr<Command> add_worst_of_n(CLI::App& parent) {
  return add_select(parent, "worst-of-n", "pick the worst candidate (llm-blender's get_worst_of_n)");
}

}  // namespace pairrm::cli
