// Models by name: Hugging Face Hub repo ids resolved through the huggingface_hub cache layout
// (models--org--name/{refs,snapshots,blobs}), downloaded once when missing (resumable, verified, atomic).
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace pairrm::hub {

struct RepoRef {
  std::string repo;               // "org/name"
  std::string revision = "main";  // branch, tag or commit
};

// "org/name" or "org/name@revision"; nullopt for anything else (a path, say).
std::optional<RepoRef> parse_repo_id(const std::string& text);

// $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
std::string cache_dir();
// $HF_HUB_OFFLINE set to 1/true/yes/on.
bool offline();

struct HubOptions {
  std::string endpoint;  // default: $HF_ENDPOINT, else https://huggingface.co
  std::string token;     // default: $HF_TOKEN
  std::string cache;     // default: cache_dir()
  bool progress = true;  // a progress bar on stderr when it is a terminal
  int attempts = 5;      // tries per file; each resumes what the last one got
};

// The files a PairRM checkpoint needs and the ones used when present.
const std::vector<std::string>& required_files();
const std::vector<std::string>& optional_files();

// The snapshot directory of a cached revision holding every required file, or nullopt. No network.
std::optional<std::string> cached_snapshot(const RepoRef& ref, const std::string& cache);

// Downloads the PairRM files of a revision into the cache (skipping blobs already there) and returns the
// snapshot directory. Throws pairrm::Error with what went wrong (auth, missing file, checksum, network).
std::string download(const RepoRef& ref, const HubOptions& options);

// A --model argument: an existing directory as is; a repo id from the cache, else downloaded (never in
// offline mode, where a missing model is an error that says what is missing). Throws pairrm::Error.
std::string resolve_model(const std::string& model, const HubOptions& options = {});

}  // namespace pairrm::hub
