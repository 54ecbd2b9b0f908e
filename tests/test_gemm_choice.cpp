// The fp32 dense layers' GEMM chosen by measurement (kernels/gemm_choice.h): the switch, the timing's rule,
// the per-machine cache (read, written, a damaged file never trusted), and what a loaded model reports.
// The exactness and batch/thread invariance of each choice are the fixture suite's, run once per choice
// (ctest: gemm_own.fixture_suite, gemm_onednn.fixture_suite) and in Linear.* below.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "fixtures.h"
#include "kernel_inputs.h"
#include "kernels/gemm_choice.h"
#include "kernels/linear.h"

namespace pairrm::test {
namespace {

namespace fs = std::filesystem;
using kernels::DenseGemm;

// Sets an environment variable for one scope and puts back what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("pairrm_gemm_choice_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

TEST(GemmChoice, TheEnvironmentForcesOneAndAnUnknownNameIsAnError) {
  {
    ScopedEnv env("PAIRRM_GEMM", "onednn");
    const auto c = kernels::choose_dense_gemm(64, 48, 2);
    EXPECT_EQ(c.gemm, DenseGemm::kOneDnn);
    EXPECT_EQ(c.how, "forced by PAIRRM_GEMM");
  }
  {
    ScopedEnv env("PAIRRM_GEMM", "own");
    EXPECT_EQ(kernels::choose_dense_gemm(64, 48, 2).gemm, DenseGemm::kOwn);
  }
  ScopedEnv env("PAIRRM_GEMM", "blas");
  try {
    kernels::choose_dense_gemm(64, 48, 2);
    FAIL() << "PAIRRM_GEMM=blas was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("own, onednn or auto"), std::string::npos) << e.what();
  }
}

// Both candidates are timed, and oneDNN is taken only when it beats own by the margin.
TEST(GemmChoice, TheMeasurementTimesBothAndAppliesItsRule) {
  const auto c = kernels::measure_dense_gemm(96, 64, 2, 40);
  EXPECT_EQ(c.how, "measured");
  EXPECT_GT(c.own_gflops, 0);
  EXPECT_GT(c.onednn_gflops, 0);
  EXPECT_EQ(c.gemm == DenseGemm::kOneDnn, c.onednn_gflops > kernels::kOneDnnMargin * c.own_gflops);
}

// First load on a machine: measured and written; a cache entry is then used as it is (here one written by
// hand, naming a choice with rates no timing produced: proof that it was read, not re-measured); a damaged
// cache is re-measured and replaced by a valid file; PAIRRM_GEMM_CACHE=off writes nothing.
TEST(GemmChoice, TheCacheIsWrittenReadAndNeverTrustedWhenDamaged) {
  ScopedEnv no_force("PAIRRM_GEMM", nullptr);
  const fs::path dir = fresh_dir("cache");
  const int N = 80, K = 56, threads = 2;
  const std::string key = kernels::gemm_cache_key(N, K);
  {
    const fs::path file = dir / "sub" / "first.json";  // the directory is created too
    ScopedEnv env("PAIRRM_GEMM_CACHE", file.c_str());
    const auto c = kernels::choose_dense_gemm(N, K, threads);
    EXPECT_EQ(c.how, "measured");
    ASSERT_TRUE(fs::exists(file));
    const auto j = read_json(file);
    ASSERT_TRUE(j.contains(key)) << j.dump();
    EXPECT_EQ(j[key]["gemm"], kernels::dense_gemm_name(c.gemm));
    EXPECT_DOUBLE_EQ(j[key]["own_gflops"].get<double>(), c.own_gflops);
    // The same process asks again, on any thread count: the memo, no second timing, the same choice (a
    // row's bits must not depend on --threads).
    EXPECT_EQ(kernels::choose_dense_gemm(N, K, threads).own_gflops, c.own_gflops);
    EXPECT_EQ(kernels::choose_dense_gemm(N, K, 1).own_gflops, c.own_gflops);
  }
  {
    const fs::path file = dir / "by_hand.json";
    std::ofstream(file) << nlohmann::json{{key, {{"gemm", "onednn"}, {"own_gflops", 1.5}, {"onednn_gflops", 2.5}}}}.dump();
    ScopedEnv env("PAIRRM_GEMM_CACHE", file.c_str());
    const auto c = kernels::choose_dense_gemm(N, K, threads);
    EXPECT_EQ(c.how, "cached");
    EXPECT_EQ(c.gemm, DenseGemm::kOneDnn);
    EXPECT_EQ(c.own_gflops, 1.5);
    EXPECT_EQ(c.onednn_gflops, 2.5);
  }
  for (const std::string& damaged : {"{\"" + key + "\": {\"gemm\": \"blas\", \"own_gflops\": 1, \"onednn_gflops\": 2}}",
                                    std::string("not json at all {"), std::string("[1, 2, 3]")}) {
    SCOPED_TRACE(damaged);
    const fs::path file = dir / ("damaged_" + std::to_string(std::hash<std::string>{}(damaged)) + ".json");
    std::ofstream(file) << damaged;
    ScopedEnv env("PAIRRM_GEMM_CACHE", file.c_str());
    EXPECT_EQ(kernels::choose_dense_gemm(N, K, threads).how, "measured");
    const auto j = read_json(file);  // rewritten: valid JSON with a valid entry
    ASSERT_TRUE(j.contains(key));
    EXPECT_TRUE(j[key]["gemm"] == "own" || j[key]["gemm"] == "onednn") << j.dump();
  }
  {
    ScopedEnv env("PAIRRM_GEMM_CACHE", "off");
    EXPECT_EQ(kernels::gemm_cache_path(), "");
    EXPECT_EQ(kernels::choose_dense_gemm(N, K, threads).how, "measured");
  }
  {
    ScopedEnv cache("PAIRRM_GEMM_CACHE", nullptr);
    ScopedEnv xdg("XDG_CACHE_HOME", "/some/xdg");
    EXPECT_EQ(kernels::gemm_cache_path(), "/some/xdg/pairrm/gemm-choice.json");
  }
  fs::remove_all(dir);
}

// Each choice on its own, named by the caller: the double-precision definition within fp32 rounding, the same
// bits for every thread count, and a row's bits independent of the rows around it (own: in one call; oneDNN:
// one row per call, as the encoder runs it — its rows_independent() is false so rows never share a call).
TEST(GemmChoice, EachGemmIsExactAndRowsAndThreadsNeverChangeItsBits) {
  const int M = 45, K = 300, N = 530;
  const auto W = random_floats(static_cast<size_t>(N) * K, 41, 0.1f), b = random_floats(N, 42, 0.1f);
  const auto A = random_floats(static_cast<size_t>(M) * K, 43);
  for (const DenseGemm gemm : {DenseGemm::kOwn, DenseGemm::kOneDnn}) {
    SCOPED_TRACE(kernels::dense_gemm_name(gemm));
    const kernels::PackedLinear lin(W.data(), b.data(), N, K, Precision::kF32, gemm);
    EXPECT_EQ(lin.gemm_choice().gemm, gemm);
    EXPECT_EQ(lin.rows_independent(), gemm == DenseGemm::kOwn);
    kernels::LinearScratch scratch;
    std::vector<float> one(static_cast<size_t>(M) * N), two(one.size());
    lin.forward(A.data(), M, one.data(), kernels::Epilogue::kStore, scratch, 0, 1);
    lin.forward(A.data(), M, two.data(), kernels::Epilogue::kStore, scratch, 0, 2);
    EXPECT_EQ(one, two);
    double worst = 0;
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double want = b[n], mag = std::fabs(want);
        for (int k = 0; k < K; ++k) {
          want += double(A[static_cast<size_t>(m) * K + k]) * W[static_cast<size_t>(n) * K + k];
          mag += std::fabs(double(A[static_cast<size_t>(m) * K + k]) * W[static_cast<size_t>(n) * K + k]);
        }
        // K + 1 roundings of at most eps/2 of a partial sum bounded by the sum of magnitudes.
        worst = std::max(worst, std::fabs(one[static_cast<size_t>(m) * N + n] - want) / ((K + 1) * 6e-8 * mag));
      }
    EXPECT_LE(worst, 1.0);
    if (gemm != DenseGemm::kOwn) continue;
    std::vector<float> alone(N);
    for (int m : {0, 17, M - 1}) {  // own: a row alone gives the bits it gets among the others
      lin.forward(A.data() + static_cast<size_t>(m) * K, 1, alone.data(), kernels::Epilogue::kStore, scratch, 0, 2);
      for (int n = 0; n < N; ++n) ASSERT_EQ(alone[n], one[static_cast<size_t>(m) * N + n]) << "row " << m;
    }
  }
}

// A loaded fp32 model reports the GEMM of each dense-layer shape and how it was chosen; under the fixture
// suites per choice (PAIRRM_GEMM set) every shape runs the forced one.
TEST(GemmChoice, TheModelReportsEveryShapesGemm) {
  const auto model = shared_model("tiny");
  const ModelInfo& info = model->info();
  ASSERT_FALSE(info.dense_gemms.empty());
  std::string layers;
  const char* forced = std::getenv("PAIRRM_GEMM");
  const bool is_forced = forced && *forced && std::string(forced) != "auto";
  for (const DenseGemmInfo& g : info.dense_gemms) {
    SCOPED_TRACE(g.layers);
    layers += g.layers + ";";
    EXPECT_GT(g.n, 0);
    EXPECT_GT(g.k, 0);
    EXPECT_TRUE(g.gemm == "own" || g.gemm == "onednn") << g.gemm;
    if (is_forced) {
      EXPECT_EQ(g.gemm, forced);
      EXPECT_EQ(g.how, "forced by PAIRRM_GEMM");
    } else {
      EXPECT_TRUE(g.how == "measured" || g.how == "cached") << g.how;
      EXPECT_GT(g.own_gflops, 0);
      EXPECT_GT(g.onednn_gflops, 0);
    }
    // The summary names oneDNN's sgemm exactly when some shape runs it.
    if (g.gemm == "onednn") EXPECT_NE(info.gemm_kernel.find("oneDNN sgemm"), std::string::npos) << info.gemm_kernel;
    else EXPECT_NE(info.gemm_kernel.find("pairrm packed-panel GEMM"), std::string::npos) << info.gemm_kernel;
  }
  for (const char* name : {"qkv", "attention output", "ffn in", "ffn out"})
    EXPECT_NE(layers.find(name), std::string::npos) << name << " in " << layers;
}

}  // namespace
}  // namespace pairrm::test
