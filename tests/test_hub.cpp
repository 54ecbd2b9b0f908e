// Models by name: `pairrm download` and `--model org/name` against a local hub stand-in (tests/hub_server.py)
// with real HTTP semantics, and the huggingface_hub cache layout used without any network.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "cli_run.h"
#include "python_server.h"
#include "fixtures.h"

namespace pairrm {
namespace {

namespace fs = std::filesystem;
using test::run;
using test::run_env;

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";
const std::string kCommitV2 = "fedcba9876543210fedcba9876543210fedcba98";  // hub_server.py's tag v2: tiny_b's files
const std::string kCompare = " --source 'hello!' --a 'hi!' --b 'f**k off!' --json";

class HubServer : public test::PythonServer {
 public:
  HubServer() : PythonServer("hub_server.py", test::model_dir("tiny") + " " + test::model_dir("tiny_b")) {}
  std::string env(const std::string& cache) const {
    return "HF_ENDPOINT=" + base_url() + " HF_HUB_CACHE=" + cache + " HF_TOKEN=";
  }
};

class Hub : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = (fs::temp_directory_path() / ("pairrm_hub_" + std::to_string(::getpid()) + "_" +
                                           ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                 .string();
    fs::remove_all(cache_);
    ASSERT_GT(hub_.port(), 0) << "the hub stand-in did not start";
  }
  void TearDown() override { fs::remove_all(cache_); }
  std::string repo_dir(const std::string& name) const { return cache_ + "/models--test-org--" + name; }

  HubServer hub_;
  std::string cache_;
};

TEST_F(Hub, DownloadMakesTheHuggingFaceLayoutAndWorksOffline) {
  const auto r = run_env(hub_.env(cache_), "download test-org/tiny");
  ASSERT_EQ(r.status, 0);
  const std::string snap = repo_dir("tiny") + "/snapshots/" + kCommit;
  EXPECT_EQ(r.out, snap + "\n");
  std::ifstream ref(repo_dir("tiny") + "/refs/main");
  std::string commit;
  ref >> commit;
  EXPECT_EQ(commit, kCommit);
  for (const char* f : {"config.json", "model.safetensors", "spm.model", "added_tokens.json", "special_tokens_map.json",
                        "tokenizer_config.json"}) {
    const fs::path link = fs::path(snap) / f;
    ASSERT_TRUE(fs::is_symlink(link)) << f;
    EXPECT_EQ(fs::read_symlink(link).string().rfind("../../blobs/", 0), 0u) << f;  // relative, as huggingface_hub
    std::ifstream a(link, std::ios::binary), b(test::model_dir("tiny") + "/" + f, std::ios::binary);
    EXPECT_TRUE(std::equal(std::istreambuf_iterator<char>(a), {}, std::istreambuf_iterator<char>(b))) << f;
  }
  // The LFS blob is named by its sha256.
  EXPECT_EQ(fs::read_symlink(fs::path(snap) / "model.safetensors").filename().string().size(), 64u);

  // By name, with no network at all: the same numbers as the directory.
  hub_.stop();
  const std::string offline = "HF_HUB_OFFLINE=1 HF_HUB_CACHE=" + cache_ + " ";
  const auto by_name = run_env(offline, "compare --model test-org/tiny" + kCompare);
  const auto by_commit = run_env(offline, "compare --model test-org/tiny@" + kCommit + kCompare);
  const auto by_dir = run("compare --model " + test::model_dir("tiny") + kCompare);
  ASSERT_EQ(by_name.status, 0);
  EXPECT_EQ(by_name.out, by_dir.out);
  EXPECT_EQ(by_commit.out, by_dir.out);
}

// The files of a snapshot are those of the model directory `want`, byte for byte.
void expect_snapshot_of(const std::string& snap, const std::string& want) {
  for (const char* f : {"config.json", "model.safetensors", "spm.model", "added_tokens.json", "special_tokens_map.json",
                        "tokenizer_config.json"}) {
    ASSERT_TRUE(fs::is_symlink(fs::path(snap) / f)) << snap << " " << f;
    EXPECT_EQ(test::slurp(snap + "/" + f), test::slurp(want + "/" + f)) << f;
  }
}

// --cache-dir: the huggingface_hub layout under the given directory, not under $HF_HUB_CACHE; a later
// --model org/name finds it there when that directory is the cache.
TEST_F(Hub, CacheDirPutsTheLayoutThere) {
  const std::string given = cache_ + "/given", env_cache = cache_ + "/env";
  const auto r = run_env(hub_.env(env_cache), "download test-org/tiny --cache-dir " + given);
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string repo = given + "/models--test-org--tiny", snap = repo + "/snapshots/" + kCommit;
  EXPECT_EQ(r.out, snap + "\n");
  EXPECT_EQ(test::slurp(repo + "/refs/main"), kCommit);
  expect_snapshot_of(snap, test::model_dir("tiny"));
  EXPECT_EQ(fs::read_symlink(fs::path(snap) / "model.safetensors").parent_path(), fs::path("../../blobs"));
  EXPECT_TRUE(fs::is_regular_file(repo + "/blobs/" + fs::read_symlink(fs::path(snap) / "config.json").filename().string()));
  EXPECT_FALSE(fs::exists(env_cache)) << "nothing goes to $HF_HUB_CACHE";
  hub_.stop();
  const auto by_name = run_env("HF_HUB_OFFLINE=1 HF_HUB_CACHE=" + given + " ", "compare --model test-org/tiny" + kCompare);
  ASSERT_EQ(by_name.status, 0);
  EXPECT_EQ(by_name.out, run("compare --model " + test::model_dir("tiny") + kCompare).out);
}

// --revision (and org/name@revision): the tag's commit and files arrive, refs/<tag> names that commit, and
// main is neither fetched nor recorded. The stand-in's v2 serves tiny_b's checkpoint (other weights and
// config), so the files and the scores tell the revisions apart.
TEST_F(Hub, RevisionFetchesThatRevision) {
  ASSERT_NE(test::slurp(test::model_dir("tiny") + "/config.json"), test::slurp(test::model_dir("tiny_b") + "/config.json"));
  const auto r = run_env(hub_.env(cache_), "download test-org/tiny --revision v2");
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string snap = repo_dir("tiny") + "/snapshots/" + kCommitV2;
  EXPECT_EQ(r.out, snap + "\n");
  EXPECT_EQ(test::slurp(repo_dir("tiny") + "/refs/v2"), kCommitV2);
  EXPECT_FALSE(fs::exists(repo_dir("tiny") + "/refs/main"));
  EXPECT_FALSE(fs::exists(repo_dir("tiny") + "/snapshots/" + kCommit));
  expect_snapshot_of(snap, test::model_dir("tiny_b"));
  // The same revision by the repo id's @ form and by its commit: already there, the same snapshot.
  EXPECT_EQ(run_env(hub_.env(cache_), "download test-org/tiny@v2").out, snap + "\n");
  EXPECT_EQ(run_env(hub_.env(cache_), "download test-org/tiny --revision " + kCommitV2).out, snap + "\n");
  // main next to it: its own commit and files.
  ASSERT_EQ(run_env(hub_.env(cache_), "download test-org/tiny").status, 0);
  EXPECT_EQ(test::slurp(repo_dir("tiny") + "/refs/main"), kCommit);
  expect_snapshot_of(repo_dir("tiny") + "/snapshots/" + kCommit, test::model_dir("tiny"));
  hub_.stop();
  const std::string offline = "HF_HUB_OFFLINE=1 HF_HUB_CACHE=" + cache_ + " ";
  const auto v2 = run_env(offline, "compare --model test-org/tiny@v2" + kCompare);
  ASSERT_EQ(v2.status, 0);
  EXPECT_EQ(v2.out, run("compare --model " + test::model_dir("tiny_b") + kCompare).out);
  EXPECT_NE(v2.out, run("compare --model " + test::model_dir("tiny") + kCompare).out);
}

TEST_F(Hub, ACutConnectionIsResumed) {
  ASSERT_EQ(run_env(hub_.env(cache_), "download test-org/cut").status, 0);
  httplib::Client c("127.0.0.1", hub_.port());
  const auto stats = nlohmann::json::parse(c.Get("/stats")->body);
  EXPECT_EQ(stats["cuts"], 1);
  EXPECT_GE(stats["range_requests"], 1);  // the second attempt asked only for the rest
  const auto by_name = run_env("HF_HUB_OFFLINE=1 HF_HUB_CACHE=" + cache_ + " ", "compare --model test-org/cut" + kCompare);
  const auto by_dir = run("compare --model " + test::model_dir("tiny") + kCompare);
  EXPECT_EQ(by_name.out, by_dir.out);
}

TEST_F(Hub, AWrongChecksumFailsAndLeavesNoSnapshot) {
  const auto r = run_env(hub_.env(cache_), "download test-org/corrupt");
  EXPECT_EQ(r.status, 1);
  EXPECT_FALSE(fs::exists(repo_dir("corrupt") + "/snapshots"));
  EXPECT_FALSE(fs::exists(repo_dir("corrupt") + "/refs/main"));
  for (const auto& e : fs::directory_iterator(repo_dir("corrupt") + "/blobs"))
    EXPECT_EQ(e.path().filename().string().size(), 40u) << e.path();  // only verified small files, no LFS blob
  EXPECT_NE(run_env("HF_HUB_OFFLINE=1 HF_HUB_CACHE=" + cache_ + " ", "compare --model test-org/corrupt" + kCompare).status, 0);
}

// An ETag that is not a digest leaves nothing to check the bytes against: refused, nothing linked.
TEST_F(Hub, AnUnverifiableEtagIsRefused) {
  const auto r = run_env(hub_.env(cache_), "download test-org/opaque-etag", "", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("not a sha256 or git-sha1 digest"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(repo_dir("opaque-etag") + "/snapshots"));
}

TEST_F(Hub, GatedReposNeedTheToken) {
  EXPECT_EQ(run_env(hub_.env(cache_), "download test-org/gated").status, 1);
  EXPECT_FALSE(fs::exists(repo_dir("gated") + "/snapshots"));
  EXPECT_EQ(run_env(hub_.env(cache_), "download test-org/gated --token wrong").status, 1);
  EXPECT_EQ(run_env(hub_.env(cache_), "download test-org/gated --token good-token").status, 0);
  // $HF_TOKEN works as well, and --model downloads on demand.
  const std::string env = "HF_ENDPOINT=http://127.0.0.1:" + std::to_string(hub_.port()) + " HF_HUB_CACHE=" + cache_ +
                          "/other HF_TOKEN=good-token ";
  EXPECT_EQ(run_env(env, "compare --model test-org/gated" + kCompare).status, 0);
}

TEST_F(Hub, OptionalFilesMayBeMissingAndRequiredOnesMayNot) {
  ASSERT_EQ(run_env(hub_.env(cache_), "download test-org/partial").status, 0);
  EXPECT_FALSE(fs::exists(repo_dir("partial") + "/snapshots/" + kCommit + "/tokenizer_config.json"));
  EXPECT_EQ(run_env(hub_.env(cache_), "download test-org/nosuchrepo").status, 1);
  EXPECT_EQ(run_env(hub_.env(cache_), "download test-org/tiny@v9").status, 1);
}

TEST_F(Hub, OfflineModeNeverTouchesTheNetworkAndSaysWhatIsMissing) {
  const auto r = run_env("HF_HUB_OFFLINE=1 " + hub_.env(cache_), "compare --model test-org/tiny" + kCompare);
  EXPECT_EQ(r.status, 1);
  httplib::Client c("127.0.0.1", hub_.port());
  EXPECT_EQ(nlohmann::json::parse(c.Get("/stats")->body)["requests"], 0);  // nothing asked of the hub
  EXPECT_FALSE(fs::exists(repo_dir("tiny")));
}

TEST(HubCache, ALayoutMadeByHuggingfaceHubIsUsedAsIs) {
  // What huggingface_hub leaves behind: refs/main -> commit, snapshots/<commit>/<file> -> ../../blobs/<etag>.
  const fs::path cache = fs::temp_directory_path() / ("pairrm_hfcache_" + std::to_string(::getpid()));
  fs::remove_all(cache);
  const fs::path repo = cache / "models--llm-blender--PairRM-hf";
  fs::create_directories(repo / "blobs");
  fs::create_directories(repo / "refs");
  fs::create_directories(repo / "snapshots" / kCommit);
  std::ofstream(repo / "refs" / "main") << kCommit;
  int k = 0;
  for (const auto& e : fs::directory_iterator(test::model_dir("tiny"))) {
    const std::string name = e.path().filename().string();
    if (name == "expected.json" || name == "debug.safetensors") continue;
    const std::string blob = "blob" + std::to_string(k++);
    fs::copy_file(e.path(), repo / "blobs" / blob);
    fs::create_symlink(fs::path("..") / ".." / "blobs" / blob, repo / "snapshots" / kCommit / name);
  }
  const auto by_name = run_env("HF_HUB_OFFLINE=1 HF_HUB_CACHE=" + cache.string() + " ", "compare --model llm-blender/PairRM-hf" + kCompare);
  const auto by_home = run_env("HF_HUB_OFFLINE=1 HF_HUB_CACHE= HF_HOME=" + cache.parent_path().string() + "/hfhome_" +
                           std::to_string(::getpid()) + " ", "compare --model llm-blender/PairRM-hf" + kCompare);
  const auto by_dir = run("compare --model " + test::model_dir("tiny") + kCompare);
  ASSERT_EQ(by_name.status, 0);
  EXPECT_EQ(by_name.out, by_dir.out);
  EXPECT_EQ(by_home.status, 1);  // $HF_HOME/hub is another cache: not found there, and offline
  fs::remove_all(cache);
}

}  // namespace
}  // namespace pairrm
