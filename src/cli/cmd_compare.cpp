// pairrm compare: is candidate A a better answer than candidate B, for one pair or a JSONL file of them.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands_table.h"
#include "cli/flags.h"

namespace pairrm::cli {
namespace {

struct Compare final : Command {
  ModelFlags model;
  JsonlFlags io;
  std::string source, a, b, mode = "both";
  bool json = false;
  CLI::Option* source_opt = nullptr;
  CLI::Option* a_opt = nullptr;
  CLI::Option* b_opt = nullptr;
  CLI::Option* input_opt = nullptr;

  int run() override {
    auto job = pairrm::jobs::make_job({.command = "compare", .mode = mode});
    if (*input_opt) return run_job(model, io, *job, "compare", nullptr);
    if (!*source_opt || !*a_opt || !*b_opt) {
      std::cerr << "pairrm compare: give --source, --a and --b, or --input FILE.jsonl\n";
      return 2;
    }
    if (json) {
      const nlohmann::json line = {{"source", source}, {"candidate_a", a}, {"candidate_b", b}};
      return run_job(model, io, *job, "compare", &line);
    }
    return print_one();
  }

  int print_one() const {
    const auto r = model.context()->compare({{source, a, b}}, pairrm::parse_compare_mode(mode)).at(0);
    std::printf("score    %.6f\n", r.score);
    if (r.has_ab) std::printf("logit_ab %.6f\n", r.logit_ab);
    if (r.has_ba) std::printf("logit_ba %.6f\n", r.logit_ba);
    std::printf("%s\n", r.a_better ? "A is better" : "A is not better");
    return 0;
  }
};

}  // namespace

std::unique_ptr<Command> add_compare(CLI::App& parent) {
  auto c = std::make_unique<Compare>();
  auto* app = c->app =
      parent.add_subcommand("compare", "is candidate A a better answer to the source than candidate B?");
  c->model.add(app);
  c->model.add_batching(app);
  c->source_opt = app->add_option("--source,-s", c->source, "the instruction / prompt");
  c->a_opt = app->add_option("--a", c->a, "candidate A");
  c->b_opt = app->add_option("--b", c->b, "candidate B");
  c->input_opt = c->io.add(app, "{\"id\"?, \"source\", \"candidate_a\", \"candidate_b\"}");
  add_mode(app, c->mode);
  app->add_flag("--json", c->json, "print the single result as JSON");
  for (auto* o : {c->source_opt, c->a_opt, c->b_opt}) o->excludes(c->input_opt);
  return c;
}

}  // namespace pairrm::cli
