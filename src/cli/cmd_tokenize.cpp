// pairrm tokenize: the token ids of a text.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands_table.h"
#include "cli/flags.h"

namespace pairrm::cli {
namespace {

struct Tokenize final : Command {
  ModelFlags model;
  std::string text;
  bool json = false;

  int run() override {
    const auto ids = model.load()->encode(text);
    if (json) {
      std::cout << nlohmann::json{{"ids", ids}, {"length", ids.size()}}.dump() << "\n";
    } else {
      for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
      std::cout << "\n";
    }
    return 0;
  }
};

}  // namespace

std::unique_ptr<Command> add_tokenize(CLI::App& parent) {
  auto c = std::make_unique<Tokenize>();
  auto* app = c->app = parent.add_subcommand("tokenize", "print the token ids of a text ([CLS] ... [SEP])");
  c->model.add(app);
  app->add_option("--text", c->text, "the text")->required();
  app->add_flag("--json", c->json, "print {\"ids\": [...], \"length\": n}");
  return c;
}

}  // namespace pairrm::cli
