// pairrm rank: rank candidates by comparing every ordered pair, or against one reference (--with-ref).
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "cli/commands_table.h"
#include "cli/flags.h"

namespace pairrm::cli {
namespace {

struct Rank final : Command {
  ModelFlags model;
  JsonlFlags io;
  std::string source, with_ref;
  std::vector<std::string> candidates;
  CLI::Option* input_opt = nullptr;

  int run() override {
    std::optional<std::string> ref;
    if (!with_ref.empty()) ref = with_ref;
    auto job = pairrm::jobs::make_job({.command = "rank", .with_ref = ref, .limits = io.limits});
    if (*input_opt) return run_job(model, io, *job, "rank", nullptr);
    if (candidates.empty() || with_ref == "given") {
      std::cerr << "pairrm rank: give --source and --candidates (without --with-ref given), or --input FILE.jsonl\n";
      return 2;
    }
    const nlohmann::json line = {{"source", source}, {"candidates", candidates}};
    return run_job(model, io, *job, "rank", &line);
  }
};

}  // namespace

std::unique_ptr<Command> add_rank(CLI::App& parent) {
  auto c = std::make_unique<Rank>();
  auto* app = c->app =
      parent.add_subcommand("rank", "rank candidates by comparing every ordered pair (llm-blender's rank)");
  c->model.add(app);
  c->model.add_batching(app);
  auto* in = c->input_opt =
      c->io.add(app, "{\"id\"?, \"source\", \"candidates\": [...], \"reference\"? (--with-ref given)}");
  c->io.add_candidate_limit(app);
  app->add_option("--source,-s", c->source, "the instruction / prompt")->excludes(in);
  app->add_option("--candidates,-c", c->candidates, "the candidates")->excludes(in);
  app->add_option("--with-ref", c->with_ref,
                  "rank against one reference: score(c) = -(logit(ref,c) - logit(c,ref)); longest, shortest, "
                  "median_length, first, last, or given (the line's \"reference\")")
      ->check(CLI::IsMember({"longest", "shortest", "median_length", "first", "last", "given"}));
  return c;
}

}  // namespace pairrm::cli
