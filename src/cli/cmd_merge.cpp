// pairrm merge: stitch the outputs of --shard 0/n .. n-1/n back into input order.
#include <iostream>
#include <vector>

#include "cli/commands_table.h"
#include "jobs/jsonl.h"

namespace pairrm::cli {
namespace {

struct Merge final : Command {
  std::vector<std::string> parts;
  std::string output, input;

  int run() override {
    const long n = pairrm::jobs::merge_shards(parts, output, input);
    std::cerr << "pairrm merge: " << n << " records\n";
    return 0;
  }
};

}  // namespace

std::unique_ptr<Command> add_merge(CLI::App& parent) {
  auto c = std::make_unique<Merge>();
  auto* app = c->app = parent.add_subcommand("merge", "stitch the outputs of --shard 0/n .. n-1/n back into input order, checking "
                                                      "that nothing is missing or duplicated");
  app->add_option("shards", c->parts, "the shard outputs, in shard order (0/n first)")->required();
  app->add_option("--output,-o", c->output, "merged JSONL ('-' or absent = stdout)");
  app->add_option("--input,-i", c->input, "the input the shards came from: also check the count and every id");
  return c;
}

}  // namespace pairrm::cli
