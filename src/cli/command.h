// One `pairrm` subcommand: its add_* registrar declares the subcommand and its options on the parent app, and
// run() carries it out once the command line has been parsed.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>

namespace pairrm::cli {

// A command owns its flag state: CLI11 keeps references into it, so it lives on the heap for the whole run.
struct Command {
  virtual ~Command() = default;
  virtual int run() = 0;  // the exit code; throws on errors
  CLI::App* app = nullptr;
};

using AddCommand = std::unique_ptr<Command> (*)(CLI::App& parent);

}  // namespace pairrm::cli
