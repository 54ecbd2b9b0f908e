// pairrm download: fetch a model from the Hugging Face Hub into its cache.
#include <iostream>

#include "cli/commands_table.h"
#include "hub/hub.h"
#include "pairrm/pairrm.h"

namespace pairrm::cli {
namespace {

struct Download final : Command {
  pairrm::hub::HubOptions hub_options;
  std::string repo, revision;

  int run() override {
    auto ref = pairrm::hub::parse_repo_id(repo);
    if (!ref) throw pairrm::Error("'" + repo + "' is not a repo id (org/name[@revision])");
    if (!revision.empty()) ref->revision = revision;
    std::cout << pairrm::hub::download(*ref, hub_options) << "\n";
    return 0;
  }
};

}  // namespace

std::unique_ptr<Command> add_download(CLI::App& parent) {
  auto c = std::make_unique<Download>();
  auto* app = c->app =
      parent.add_subcommand("download", "fetch a model from the Hugging Face Hub into its cache (resumable, verified)");
  app->add_option("repo", c->repo, "repo id org/name[@revision], e.g. llm-blender/PairRM-hf")->required();
  app->add_option("--revision", c->revision, "branch, tag or commit (default main)");
  app->add_option("--token", c->hub_options.token, "access token for gated/private repos (default: $HF_TOKEN)");
  app->add_option("--cache-dir", c->hub_options.cache, "the hub cache (default: $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub)");
  return c;
}

}  // namespace pairrm::cli
