// pairrm eval: win rate of system A against system B, with a bootstrap interval; HTML and JSON reports.
#include <filesystem>
#include <iostream>

#include "cli/commands_table.h"
#include "cli/flags.h"
#include "eval/eval.h"

namespace pairrm::cli {
namespace {

struct Eval final : Command {
  ModelFlags model;
  pairrm::eval::EvalOptions ev;
  CLI::Option* name_a_opt = nullptr;
  CLI::Option* name_b_opt = nullptr;

  int run() override {
    if (ev.input.empty() && ev.file_a.empty()) {
      std::cerr << "pairrm eval: give --input PAIRS.jsonl, or --responses-a A.jsonl --responses-b B.jsonl\n";
      return 2;
    }
    auto stem = [](const std::string& path) { return std::filesystem::path(path).stem().string(); };
    if (!ev.file_a.empty() && !*name_a_opt) ev.name_a = stem(ev.file_a);
    if (!ev.file_b.empty() && !*name_b_opt) ev.name_b = stem(ev.file_b);
    ev.model_label = model.model.empty() ? std::filesystem::path(model.directory()).filename().string() : model.model;
    ev.chunk = static_cast<size_t>(model.batch_size);
    const auto report = pairrm::eval::run_eval(*model.context(), ev);
    std::cout << pairrm::eval::text_summary(report);
    return 0;
  }

  void add_inputs(CLI::App* app) {
    auto* in = app->add_option("--input,-i", ev.input, "JSONL lines {\"id\"?, \"prompt\", \"a\", \"b\", \"category\"?}");
    auto* a = app->add_option("--responses-a", ev.file_a, "system A's answers: JSONL {\"id\", \"prompt\", \"response\", "
                                                           "\"category\"?}, joined on id with --responses-b");
    auto* b = app->add_option("--responses-b", ev.file_b, "system B's answers, same format");
    in->excludes(a)->excludes(b);
    a->needs(b);
    b->needs(a);
  }

  void add_reports(CLI::App* app) {
    app->add_option("--report", ev.html_out, "write a self-contained HTML report here");
    app->add_option("--json", ev.json_out, "write every number (and each prompt's logits) here");
    name_a_opt = app->add_option("--name-a", ev.name_a, "system A's name in the reports (default A, or the file's name)");
    name_b_opt = app->add_option("--name-b", ev.name_b, "system B's name in the reports");
  }

  void add_statistics(CLI::App* app) {
    app->add_option("--tie-threshold", ev.stats.tie_threshold,
                    "a prompt is a tie when |score| <= this (default 0: llm-blender's rule, A wins iff score > 0; "
                    "only identical answers tie)")
        ->check(CLI::NonNegativeNumber);
    app->add_option("--bootstrap", ev.stats.bootstrap, "bootstrap resamples for the interval (default 1000)")
        ->check(CLI::Range(1, 1000000));
    app->add_option("--seed", ev.stats.seed, "bootstrap seed (default 0); the same seed gives the same interval");
    app->add_option("--confidence", ev.stats.confidence, "interval level (default 0.95)")->check(CLI::Range(0.5, 0.999));
  }
};

}  // namespace

std::unique_ptr<Command> add_eval(CLI::App& parent) {
  auto c = std::make_unique<Eval>();
  auto* app = c->app = parent.add_subcommand("eval", "win rate of system A against system B on the same prompts, with a "
                                                     "bootstrap interval, per category; HTML and JSON reports");
  c->model.add(app);
  c->model.add_batching(app);
  c->add_inputs(app);
  c->add_reports(app);
  c->add_statistics(app);
  app->add_option("--top", c->ev.top, "prompts listed per table of the report (default 10)");
  app->add_flag("--skip-bad-lines", c->ev.skip_bad, "report unusable lines and evaluate the rest (default: fail)");
  app->add_flag("--quiet,-q", c->ev.quiet, "no progress on stderr");
  app->add_option("--max-line-bytes", c->ev.max_line_bytes, "longer lines are unusable (default 64 MiB)")
      ->check(CLI::PositiveNumber);
  return c;
}

}  // namespace pairrm::cli
