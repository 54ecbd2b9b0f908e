// The registrars of every `pairrm` subcommand, one per cmd_*.cpp; main.cpp calls them in --help order.
#pragma once

#include "cli/command.h"

namespace pairrm::cli {

std::unique_ptr<Command> add_tokenize(CLI::App& parent);
std::unique_ptr<Command> add_compare(CLI::App& parent);
std::unique_ptr<Command> add_rank(CLI::App& parent);
std::unique_ptr<Command> add_best_of_n(CLI::App& parent);
std::unique_ptr<Command> add_worst_of_n(CLI::App& parent);
std::unique_ptr<Command> add_compare_conversations(CLI::App& parent);
std::unique_ptr<Command> add_dpo(CLI::App& parent);
std::unique_ptr<Command> add_eval(CLI::App& parent);
std::unique_ptr<Command> add_generate(CLI::App& parent);
std::unique_ptr<Command> add_init_random(CLI::App& parent);
std::unique_ptr<Command> add_bench(CLI::App& parent);
std::unique_ptr<Command> add_accuracy(CLI::App& parent);
std::unique_ptr<Command> add_download(CLI::App& parent);
std::unique_ptr<Command> add_merge(CLI::App& parent);
std::unique_ptr<Command> add_serve(CLI::App& parent);

}  // namespace pairrm::cli
