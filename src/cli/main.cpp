// The `pairrm` command line: one subcommand per cmd_*.cpp, registered from one table.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <vector>

#include "cli/commands_table.h"
#include "pairrm/pairrm.h"

namespace {

// In --help order.
constexpr pairrm::cli::AddCommand kCommands[] = {
    pairrm::cli::add_tokenize,
    pairrm::cli::add_compare,
    pairrm::cli::add_rank,
    pairrm::cli::add_best_of_n,
    pairrm::cli::add_worst_of_n,
    pairrm::cli::add_compare_conversations,
    pairrm::cli::add_dpo,
    pairrm::cli::add_eval,
    pairrm::cli::add_generate,
    pairrm::cli::add_init_random,
    pairrm::cli::add_bench,
    pairrm::cli::add_accuracy,
    pairrm::cli::add_download,
    pairrm::cli::add_merge,
    pairrm::cli::add_serve,
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pairrm: the PairRM pairwise reward model (LLM-Blender) in C++"};
  app.require_subcommand(1);
  app.set_version_flag("--version", pairrm::version());

  std::vector<std::unique_ptr<pairrm::cli::Command>> commands;
  for (const auto add : kCommands) commands.push_back(add(app));

  CLI11_PARSE(app, argc, argv);
  try {
    for (const auto& command : commands)
      if (command->app->parsed()) return command->run();
  } catch (const std::exception& e) {
    std::cerr << "pairrm: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
