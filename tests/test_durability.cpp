// Durability of the JSONL jobs when the disk fills: a clear error, the input untouched, and --resume once
// space returns gives the uninterrupted run's bytes. The disk is a 64 KiB tmpfs mounted for the test (root,
// as CI runs); where mounting is not permitted the test is skipped, and fails under CI.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_run.h"
#include "fixtures.h"

namespace pairrm {
namespace {

namespace fs = std::filesystem;

using test::slurp;

class SmallDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("pairrm_small_disk_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir_);
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=64k") != 0) {
      const std::string why = std::string("cannot mount a small tmpfs: ") + std::strerror(errno);
      fs::remove(dir_);
      if (std::getenv("CI")) FAIL() << why << " (CI runs as root and must be able to)";
      GTEST_SKIP() << why;
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) ::umount(dir_.c_str());
    fs::remove_all(dir_);
  }
  void grow() { ASSERT_EQ(::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT, "size=16m"), 0) << std::strerror(errno); }
  std::string dir_;
  bool mounted_ = false;
};

TEST_F(SmallDisk, AFullDiskIsAClearErrorAndResumeCompletesTheRun) {
  std::string input;
  for (int i = 0; i < 1000; ++i) {
    nlohmann::json c = nlohmann::json::array();
    for (int k = 0; k < 3; ++k) c.push_back("answer " + std::to_string(i * 3 + k) + " with some words to fill it");
    input += nlohmann::json({{"id", i}, {"source", "question " + std::to_string(i)}, {"candidates", c}}).dump() + "\n";
  }
  const std::string in_path = (fs::temp_directory_path() / ("pairrm_small_disk_in_" + std::to_string(::getpid()))).string();
  const std::string ref_path = in_path + ".ref";
  std::ofstream(in_path, std::ios::binary) << input;
  const std::string model = " -q --threads 1 --model " + test::model_dir("tiny");
  ASSERT_EQ(test::run("rank --input " + in_path + " --output " + ref_path + model).status, 0);
  const std::string reference = slurp(ref_path);
  ASSERT_GT(reference.size(), 64u * 1024) << "the output must not fit the small disk";

  const std::string out = dir_ + "/out.jsonl";
  const auto full = test::run_env("", "rank --input " + in_path + " --output " + out + model, "", true);
  EXPECT_EQ(full.status, 1) << full.out;
  EXPECT_NE(full.out.find("No space left on device"), std::string::npos) << full.out;
  EXPECT_EQ(slurp(in_path), input);  // the input is untouched
  const std::string partial = slurp(out);
  EXPECT_LT(partial.size(), reference.size());
  EXPECT_EQ(reference.compare(0, partial.rfind('\n') + 1, partial, 0, partial.rfind('\n') + 1), 0)
      << "the complete lines written are the reference's";

  grow();  // space returns
  const auto resumed = test::run("rank --resume --input " + in_path + " --output " + out + model);
  EXPECT_EQ(resumed.status, 0);
  EXPECT_EQ(slurp(out), reference);
  fs::remove(in_path);
  fs::remove(ref_path);
}

}  // namespace
}  // namespace pairrm
