// init-random, bench, accuracy and --precision through the CLI, on a small random checkpoint.
#include <gtest/gtest.h>

#include <set>

#include <algorithm>
#include <cmath>

#include "api/model_impl.h"
#include "cli_run.h"
#include "fixtures.h"
#include "tools/bench.h"

namespace pairrm {
namespace {

using nlohmann::json;
using test::run;

class Tools : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = (std::filesystem::temp_directory_path() / ("pairrm_random_" + std::to_string(::getpid()))).string();
    ASSERT_EQ(run("init-random --out " + dir_ + " --seed 3 --layers 2 --hidden 64 --heads 4 --intermediate 128").status, 0);
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
  static inline std::string dir_;
};

TEST_F(Tools, InitRandomWritesALoadableCheckpointWithPairRMNames) {
  auto model = Model::load(dir_);
  EXPECT_EQ(model->info().num_layers, 2);
  EXPECT_EQ(model->info().vocab_size, 128005);
  EXPECT_EQ(model->info().position_buckets, 256);
  // Same seed, same bytes; the tokenizer came along.
  const std::string again = dir_ + "_again";
  ASSERT_EQ(run("init-random --out " + again + " --seed 3 --layers 2 --hidden 64 --heads 4 --intermediate 128").status, 0);
  auto slurp = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  };
  EXPECT_EQ(slurp(dir_ + "/model.safetensors"), slurp(again + "/model.safetensors"));
  std::filesystem::remove_all(again);
  // Another seed, other weights (an ignored --seed would write seed 0's bytes both times): same size and
  // header, different bytes.
  const std::string other = dir_ + "_seed4";
  ASSERT_EQ(run("init-random --out " + other + " --seed 4 --layers 2 --hidden 64 --heads 4 --intermediate 128").status, 0);
  const std::string a = slurp(dir_ + "/model.safetensors"), b = slurp(other + "/model.safetensors");
  EXPECT_EQ(a.size(), b.size());
  EXPECT_NE(a, b);
  std::filesystem::remove_all(other);
  EXPECT_EQ(model->encode("hello!"), (std::vector<int32_t>{1, 12018, 300, 2}));
}

// The default checkpoint is what every benchmark ran on: its bytes must not change. FNV-1a 64 of the fixture's
// model.safetensors (seed 3, 2 layers, hidden 64), as the code before --realistic wrote it.
TEST_F(Tools, InitRandomDefaultIsUnchanged) {
  const std::string bytes = test::slurp(dir_ + "/model.safetensors");
  ASSERT_EQ(bytes.size(), 33207628u);
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char b : bytes) h = (h ^ static_cast<unsigned char>(b)) * 0x100000001b3ull;
  EXPECT_EQ(h, 0x3ed8b19feab81b3dull);
}

// --realistic is Hugging Face's initialisation: LayerNorm weights exactly 1 and biases exactly 0, every bias
// 0, every Linear weight and both embedding tables N(0, 0.02) (head_layer.4: N(0, 2)), and the padding
// and candidate-prefix rows of the word embeddings 0. A tensor of n values drawn with std s has a sample std
// within 5·s/sqrt(2n) of s and a mean within 5·s/sqrt(n) of 0 but for a 1-in-a-million draw (5 standard
// errors; the draws are seeded, so the test is deterministic anyway).
TEST_F(Tools, InitRandomRealisticHasHuggingFaceInitStatistics) {
  const std::string dir = dir_ + "_realistic";
  ASSERT_EQ(run("init-random --realistic --out " + dir + " --seed 3 --layers 2 --hidden 64 --heads 4 --intermediate 128").status, 0);
  auto model = Model::load(dir);
  const Weights& w = internals(*model).weights;
  const ModelConfig& c = internals(*model).config;
  auto count = [](const Matrix& m) { return static_cast<size_t>(m.rows) * m.cols; };
  auto constant = [&](const Matrix& m, float value, const char* what) {
    SCOPED_TRACE(what);
    ASSERT_GT(count(m), 0u);
    for (size_t i = 0; i < count(m); ++i) ASSERT_EQ(m.data[i], value) << i;
  };
  auto normal = [&](const Matrix& m, double stddev, const char* what) {
    SCOPED_TRACE(what);
    const double n = static_cast<double>(count(m));
    double sum = 0, sq = 0;
    for (size_t i = 0; i < count(m); ++i) {
      sum += m.data[i];
      sq += static_cast<double>(m.data[i]) * m.data[i];
    }
    const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
    EXPECT_NEAR(mean, 0.0, 5 * stddev / std::sqrt(n));
    EXPECT_NEAR(sd, stddev, 5 * stddev / std::sqrt(2 * n));
  };
  const int H = c.hidden_size;
  for (const int id : {c.pad_token_id, c.cand1_prefix_id, c.cand2_prefix_id})
    for (int i = 0; i < H; ++i) ASSERT_EQ(w.word_embeddings.data[static_cast<size_t>(id) * H + i], 0.f) << id;
  normal(w.word_embeddings, 0.02, "word_embeddings");  // 3 zero rows in 128005: 0.001 % off, well inside
  normal(w.rel_embeddings, 0.02, "rel_embeddings");
  constant(w.emb_ln_w, 1, "embeddings.LayerNorm.weight");
  constant(w.emb_ln_b, 0, "embeddings.LayerNorm.bias");
  constant(w.enc_ln_w, 1, "encoder.LayerNorm.weight");
  constant(w.enc_ln_b, 0, "encoder.LayerNorm.bias");
  ASSERT_EQ(w.layers.size(), 2u);
  for (const LayerWeights& L : w.layers) {
    for (const Matrix* m : {&L.q_w, &L.k_w, &L.v_w, &L.attn_out_w, &L.ffn_in_w, &L.ffn_out_w}) normal(*m, 0.02, "Linear weight");
    for (const Matrix* m : {&L.q_b, &L.k_b, &L.v_b, &L.attn_out_b, &L.ffn_in_b, &L.ffn_out_b}) constant(*m, 0, "Linear bias");
    for (const Matrix* m : {&L.attn_ln_w, &L.out_ln_w}) constant(*m, 1, "LayerNorm weight");
    for (const Matrix* m : {&L.attn_ln_b, &L.out_ln_b}) constant(*m, 0, "LayerNorm bias");
  }
  normal(w.head1_w, 0.02, "head_layer.1.weight");
  constant(w.head1_b, 0, "head_layer.1.bias");
  normal(w.head2_w, 2.0, "head_layer.4.weight");
  constant(w.head2_b, 0, "head_layer.4.bias");
  std::filesystem::remove_all(dir);
}

TEST_F(Tools, BenchReportsItsFigures) {
  const auto r = run("bench --json --tokens 60 --pairs 2 --threads 1 --model " + dir_);
  ASSERT_EQ(r.status, 0);
  const json j = json::parse(r.out);
  EXPECT_EQ(j["pairs"], 2);
  EXPECT_EQ(j["tokens_per_pair"], 60);
  EXPECT_EQ(j["precision"], "fp32");
  // The rate figures from the reported work and time, no floor on either (a floor is a statement about the
  // machine and its load, not about the code): the work is the config's FLOPs per row (bench.cpp's
  // accounting: dense layers, c2p/p2c over 2·span rel rows, two n×n products), recomputed here.
  const auto model = Model::load(dir_);
  const ModelConfig& c = internals(*model).config;
  const double H = c.hidden_size, I = c.intermediate_size, n = 60, W = 2.0 * c.attention_span();
  const double row = c.num_layers * (2 * n * (4 * H * H + 2 * H * I) + (c.c2p + c.p2c) * 2 * n * W * H + 2 * 2 * n * n * H);
  EXPECT_NEAR(j["gflop"].get<double>(), 2 * row / 1e9, 1e-12 * row / 1e9);
  const double secs = j["seconds_total"].get<double>();
  ASSERT_TRUE(std::isfinite(secs) && secs > 0) << secs;
  EXPECT_NEAR(j["seconds_per_pair"].get<double>(), secs / 2, 1e-12 * secs);
  EXPECT_NEAR(j["gflops_per_s"].get<double>(), j["gflop"].get<double>() / secs, 1e-9 * j["gflops_per_s"].get<double>());
  EXPECT_NEAR(j["tokens_per_s"].get<double>(), 120 / secs, 1e-9 * j["tokens_per_s"].get<double>());
  EXPECT_GT(j["peak_rss_mb"].get<double>(), 0);
  const auto& b = j["breakdown_s"];
  EXPECT_LE(b["gemm"].get<double>() + b["attention"].get<double>(), j["seconds_total"].get<double>());
  const json mixed = json::parse(run("bench --json --mixed --pairs 3 --precision int8 --model " + dir_).out);
  EXPECT_EQ(mixed["precision"], "int8");
  EXPECT_EQ(mixed["pairs"], 3);
  EXPECT_EQ(mixed["tokens_per_pair"], "mixed 100-1000");
  const json short_rows = json::parse(run("bench --json --short --pairs 5 --model " + dir_).out);
  EXPECT_EQ(short_rows["pairs"], 5);
  EXPECT_EQ(short_rows["tokens_per_pair"], "mixed 30-120");
  EXPECT_NE(run("bench --short --mixed --model " + dir_).status, 0);  // one workload at a time
  EXPECT_EQ(j["attention_products"], "fp32");  // fp32 always
  const json forced = json::parse(run("bench --json --pairs 1 --precision bf16 --attention bf16 --model " + dir_).out);
  EXPECT_EQ(forced["attention_products"], "bf16");
  // fp32: the GEMM of each dense-layer shape and how it was chosen; the summary names what runs.
  ASSERT_EQ(j["dense_gemms"].size(), 4u) << j["dense_gemms"].dump();  // qkv, output, ffn in, ffn out differ here
  for (const auto& g : j["dense_gemms"]) {
    SCOPED_TRACE(g.dump());
    const std::string gemm = g["gemm"];
    ASSERT_TRUE(gemm == "own" || gemm == "onednn");
    const std::string own = std::string("pairrm packed-panel GEMM (") + j["isa"].get<std::string>() + " kernels)";
    EXPECT_NE(j["gemm_kernel"].get<std::string>().find(gemm == "own" ? own : "oneDNN sgemm (fp32"), std::string::npos);
  }
  EXPECT_TRUE(mixed["dense_gemms"].empty());  // int8 runs oneDNN's int8 kernels (or their fp32 emulation)
  EXPECT_FALSE(forced["gemm_kernel"].get<std::string>().empty());
}

// The measured ceilings: one per precision, positive, with the figures derived from them consistent. (That
// a GEMM is never faster than its instruction's peak holds physically but not between two timings a second
// apart while CTest runs other tests beside this one: measured 129 % once under load, so it is not asserted.)
// Every bench report carries its precision's ceiling and the efficiencies against it.
TEST_F(Tools, BenchMeasuresThisMachinesCeilings) {
  const auto r = run("bench --ceiling --json --threads 1");
  ASSERT_EQ(r.status, 0) << r.out;
  const json all = json::parse(r.out);
  ASSERT_EQ(all.size(), 3u);
  for (const auto& c : all) {
    SCOPED_TRACE(c.dump());
    EXPECT_EQ(c["threads"], 1);
    // Measured rates: positive and finite, no floor (how fast this machine is under whatever else runs is
    // not the code's property; the consistency of the derived figures is).
    auto rate = [](const json& v) { return v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() > 0; };
    EXPECT_TRUE(rate(c["peak_gflops"]));
    EXPECT_TRUE(rate(c["gemm_gflops"]));
    EXPECT_FALSE(c["peak_instruction"].get<std::string>().empty());
    EXPECT_NEAR(c["gemm_percent_of_peak"].get<double>(),
                100 * c["gemm_gflops"].get<double>() / c["peak_gflops"].get<double>(), 1e-9);
    // fp32: both GEMM candidates timed on PairRM's four dense shapes, and the engine's choice for each.
    if (c["precision"] != "fp32") {
      EXPECT_TRUE(c["dense_gemms"].empty());
      continue;
    }
    ASSERT_EQ(c["dense_gemms"].size(), 4u);
    std::set<std::pair<int, int>> shapes;
    for (const auto& g : c["dense_gemms"]) {
      shapes.insert({g["n"].get<int>(), g["k"].get<int>()});
      EXPECT_TRUE(rate(g["own_gflops"]));
      EXPECT_TRUE(rate(g["onednn_gflops"]));
      EXPECT_NEAR(g["own_percent_of_peak"].get<double>(), 100 * g["own_gflops"].get<double>() / c["peak_gflops"].get<double>(), 1e-9);
      EXPECT_NEAR(g["onednn_percent_of_peak"].get<double>(),
                  100 * g["onednn_gflops"].get<double>() / c["peak_gflops"].get<double>(), 1e-9);
      EXPECT_TRUE(g["engine_gemm"] == "own" || g["engine_gemm"] == "onednn");
      EXPECT_FALSE(g["engine_how"].get<std::string>().empty());
    }
    EXPECT_EQ(shapes, (std::set<std::pair<int, int>>{{3072, 1024}, {1024, 1024}, {4096, 1024}, {1024, 4096}}));
  }
  const json j = json::parse(run("bench --json --tokens 40 --pairs 1 --threads 1 --model " + dir_).out);
  ASSERT_TRUE(j.contains("ceiling"));
  EXPECT_NEAR(j["gflops_per_s"].get<double>(), j["gflop"].get<double>() / j["seconds_total"].get<double>(),
              1e-9 * j["gflops_per_s"].get<double>());
  EXPECT_EQ(j["ceiling"]["precision"], "fp32");
  EXPECT_NEAR(j["percent_of_peak"].get<double>(),
              100 * j["gflops_per_s"].get<double>() / j["ceiling"]["peak_gflops"].get<double>(), 1e-9);
  EXPECT_NEAR(j["percent_of_gemm_ceiling"].get<double>(),
              100 * j["gflops_per_s"].get<double>() / j["ceiling"]["gemm_gflops"].get<double>(), 1e-9);
}

// The report's figures recomputed here from the same rows through the public API: the fp32 logits' mean
// |logit|, mean, std and share above 0; max, p99, median error, p99 / std and sign agreement of each
// precision against fp32 (the logits are deterministic, so they must be equal up to the order of the sums).
TEST_F(Tools, AccuracyComparesPrecisionsWithFp32) {
  const auto r = run("accuracy --pairs 40 --min-tokens 20 --max-tokens 60 --threads 1 --model " + dir_);
  ASSERT_EQ(r.status, 0);
  const json j = json::parse(r.out);
  AccuracyOptions o;
  o.model_dir = dir_;
  o.pairs = 40;
  o.min_tokens = 20;
  o.max_tokens = 60;
  const auto rows = accuracy_rows(*Model::load(dir_), o);
  ASSERT_EQ(rows.size(), 40u);
  const auto fp32 = Context(Model::load(dir_), 1).logits(rows);
  // The fp32 logits' scale: mean |logit|, mean, std (population: the spread around the mean), share above 0.
  double sum = 0, sum_abs = 0, positive = 0;
  for (double v : fp32) {
    sum += v;
    sum_abs += std::abs(v);
    positive += v > 0;
  }
  const double mean = sum / fp32.size();
  double sq = 0;
  for (double v : fp32) sq += (v - mean) * (v - mean);
  const double spread = std::sqrt(sq / fp32.size());
  ASSERT_GT(spread, 0.0);
  EXPECT_NEAR(j["fp32_mean_abs_logit"].get<double>(), sum_abs / fp32.size(), 1e-12 * sum_abs);
  EXPECT_NEAR(j["fp32_logit_mean"].get<double>(), mean, 1e-12 * sum_abs);
  EXPECT_NEAR(j["fp32_logit_std"].get<double>(), spread, 1e-9 * spread);
  EXPECT_DOUBLE_EQ(j["fp32_positive_fraction"].get<double>(), positive / fp32.size());
  for (const Precision p : {Precision::kBF16, Precision::kInt8}) {
    const char* name = precision_name(p);
    SCOPED_TRACE(name);
    LoadOptions load;
    load.precision = p;
    const auto got = Context(Model::load(dir_, load), 1).logits(rows);
    std::vector<double> err;
    int agree = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      err.push_back(std::abs(got[i] - fp32[i]));
      agree += (got[i] > 0) == (fp32[i] > 0);
    }
    std::sort(err.begin(), err.end());
    EXPECT_GT(err.back(), 0.0);  // a reduced precision that changed nothing would not be one
    EXPECT_EQ(j[name]["max_abs_error"].get<double>(), err.back());
    EXPECT_EQ(j[name]["p99_abs_error"].get<double>(), err[static_cast<size_t>(0.99 * err.size())]);
    EXPECT_EQ(j[name]["median_abs_error"].get<double>(), err[err.size() / 2]);
    EXPECT_DOUBLE_EQ(j[name]["sign_agreement"].get<double>(), static_cast<double>(agree) / got.size());
    EXPECT_NEAR(j[name]["p99_error_over_fp32_std"].get<double>(), err[static_cast<size_t>(0.99 * err.size())] / spread,
                1e-9 * j[name]["p99_error_over_fp32_std"].get<double>());
  }
}

// --seed draws the rows: the same seed gives the same report byte for byte, another seed other rows (so
// another fp32 mean), and the report is the one accuracy_rows gives for that seed.
TEST_F(Tools, AccuracySeedChoosesTheRows) {
  const std::string args = "accuracy --pairs 12 --min-tokens 20 --max-tokens 40 --threads 1 --model " + dir_;
  const auto a = run(args + " --seed 5"), again = run(args + " --seed 5"), b = run(args + " --seed 6");
  ASSERT_EQ(a.status, 0);
  ASSERT_EQ(b.status, 0);
  json ja = json::parse(a.out), jb = json::parse(b.out), jagain = json::parse(again.out);
  for (json* j : {&ja, &jb, &jagain}) {  // the timings are the only figures that may differ between runs
    ASSERT_EQ(j->erase("fp32_seconds"), 1u);
    for (const char* p : {"bf16", "int8"}) ASSERT_EQ(j->at(p).erase("seconds"), 1u);
  }
  EXPECT_EQ(ja, jagain);
  EXPECT_NE(ja["fp32_logit_mean"], jb["fp32_logit_mean"]);
  for (const uint64_t seed : {5, 6}) {
    AccuracyOptions o;
    o.pairs = 12;
    o.min_tokens = 20;
    o.max_tokens = 40;
    o.seed = seed;
    const auto rows = accuracy_rows(*Model::load(dir_), o);
    ASSERT_EQ(rows.size(), 12u);
    double sum = 0, sum_abs = 0;
    for (double v : Context(Model::load(dir_), 1).logits(rows)) {
      sum += v;
      sum_abs += std::abs(v);
    }
    EXPECT_NEAR((seed == 5 ? ja : jb)["fp32_logit_mean"].get<double>(), sum / 12, 1e-12 * sum_abs) << seed;  // summation order
  }
}

// --precision and --attention reach the model: the CLI's logit is the API's with the same LoadOptions (the
// same engine, so equal up to the JSON's 17 digits), it differs from fp32 (a flag that was ignored would
// give the fp32 value exactly), and it lies within the precision's fixture bound of the float64 reference
// (test_precisions.cpp: bf16 0.07, int8 0.36, bf16 attention 0.11 on tiny).
TEST(Precision, FlagOnCommands) {
  const std::string m = " --model " + test::model_dir("tiny");
  const std::string args = "compare --json --mode ab --source 'hello!' --a 'hi!' --b 'f**k off!'" + m;
  const Comparison item{"hello!", "hi!", "f**k off!"};
  const double reference = test::model_text_cases("tiny").at("compare_modes").at(0).at("ab");  // row 0: this item
  auto api = [&](Precision p, AttentionProducts a) {
    LoadOptions o;
    o.precision = p;
    o.attention = a;
    return Context(Model::load(test::model_dir("tiny"), o), 1).compare({item}, CompareMode::kAB).at(0).logit_ab;
  };
  auto cli = [&](const std::string& flags) {
    const auto r = run(args + flags);
    EXPECT_EQ(r.status, 0) << flags;
    return r.status == 0 ? json::parse(r.out)["logit_ab"].get<double>() : std::nan("");
  };
  const double f = cli("");
  EXPECT_NEAR(f, reference, test::logit_tolerance(reference));
  struct Want {
    const char* flags;
    Precision precision;
    AttentionProducts attention;
    double bound;
  };
  for (const Want& w : {Want{" --precision bf16", Precision::kBF16, AttentionProducts::kAuto, 0.11},
                        Want{" --precision bf16 --attention fp32", Precision::kBF16, AttentionProducts::kFp32, 0.07},
                        Want{" --precision int8 --attention fp32", Precision::kInt8, AttentionProducts::kFp32, 0.36},
                        Want{" --precision bf16 --attention bf16", Precision::kBF16, AttentionProducts::kBf16, 0.11}}) {
    SCOPED_TRACE(w.flags);
    const double got = cli(w.flags), want = api(w.precision, w.attention);
    EXPECT_NEAR(got, want, 1e-12 * std::abs(want));
    EXPECT_NE(got, f);  // rounding to bf16 / int8 moves this logit
    EXPECT_NEAR(got, reference, w.bound);
  }
  // The attention's products in bf16 differ from fp32 ones under bf16 (the fp32 pair is the fixture's
  // first row, the products' rounding changes its logit).
  EXPECT_NE(cli(" --precision bf16 --attention bf16"), cli(" --precision bf16 --attention fp32"));
  EXPECT_NE(run(args + " --precision fp8").status, 0);
  EXPECT_NE(run(args + " --attention fp16").status, 0);
}

TEST(PublicNames, ParsersRoundTripAndRejectUnknownNames) {
  for (Precision p : {Precision::kF32, Precision::kBF16, Precision::kInt8})
    EXPECT_EQ(parse_precision(precision_name(p)), p);
  EXPECT_EQ(parse_precision("bfloat16"), Precision::kBF16);
  EXPECT_THROW(parse_precision("fp16"), Error);
  EXPECT_THROW(parse_precision(""), Error);
  EXPECT_EQ(parse_compare_mode("[A,B]"), CompareMode::kAB);
  EXPECT_EQ(parse_compare_mode("ab"), CompareMode::kAB);
  EXPECT_EQ(parse_compare_mode("[B,A]"), CompareMode::kBA);
  EXPECT_EQ(parse_compare_mode("both"), CompareMode::kBoth);
  EXPECT_EQ(parse_compare_mode("[A,B]+[B,A]"), CompareMode::kBoth);
  EXPECT_THROW(parse_compare_mode("[A,B]+"), Error);
  EXPECT_EQ(parse_attention_products("auto"), AttentionProducts::kAuto);
  EXPECT_EQ(parse_attention_products("fp32"), AttentionProducts::kFp32);
  EXPECT_EQ(parse_attention_products("bf16"), AttentionProducts::kBf16);
  EXPECT_THROW(parse_attention_products("fp16"), Error);
}

}  // namespace
}  // namespace pairrm
