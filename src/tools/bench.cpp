#include "tools/bench.h"

#include <omp.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <random>

#include "api/model_impl.h"
#include "kernels/linear.h"
#include "tools/ceiling.h"
#include "tools/clock.h"

namespace pairrm {
namespace {


double peak_rss_mb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // KiB on Linux
}

// A row of PairRM's layout with `n` tokens: a third source, the rest split between the candidates.
PairRow synthetic_row(const ModelConfig& c, int n, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> id(5, std::min(127999, c.vocab_size - 1));
  n = std::max(n, 9);
  const int body = n - 9, src = body / 3, c1 = (body - src) / 2, c2 = body - src - c1;
  PairRow r;
  auto segment = [&](int32_t prefix, int len) {
    r.ids.push_back(1);
    const auto pos = static_cast<int32_t>(r.ids.size());
    r.ids.push_back(prefix);
    for (int i = 0; i < len; ++i) r.ids.push_back(id(rng));
    r.ids.push_back(2);
    return pos;
  };
  r.source_pos = segment(c.source_prefix_id, src);
  r.cand1_pos = segment(c.cand1_prefix_id, c1);
  r.cand2_pos = segment(c.cand2_prefix_id, c2);
  return r;
}

// FLOPs of one row of n tokens: the dense layers, the c2p/p2c projections over the full 2·span rel rows
// (the accounting), and the two n×n attention products.
double row_flops(const ModelConfig& c, double n) {
  const double H = c.hidden_size, I = c.intermediate_size, L = c.num_layers, W = 2.0 * c.attention_span();
  const double dense = 2 * n * (4 * H * H + 2 * H * I);
  const double rel = (c.c2p + c.p2c) * 2 * n * W * H;
  const double attn = 2 * 2 * n * n * H;
  return L * (dense + rel + attn);
}

}  // namespace

nlohmann::ordered_json dense_gemms_json(const ModelInfo& info) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const DenseGemmInfo& g : info.dense_gemms)
    out.push_back({{"n", g.n}, {"k", g.k}, {"layers", g.layers}, {"gemm", g.gemm}, {"how", g.how},
                   {"own_gflops", g.own_gflops}, {"onednn_gflops", g.onednn_gflops}});
  return out;
}

void run_ceilings(const BenchOptions& o) {
  const int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  for (const Precision p : {Precision::kF32, Precision::kBF16, Precision::kInt8}) {
    const Ceiling c = measure_ceiling(p, threads);
    all.push_back(ceiling_json(c));
    if (o.json) continue;
    std::printf("%-5s %d threads: %-28s peak %6.0f GFLOP/s, dense-layer GEMM %6.0f GFLOP/s (%.0f%% of peak)\n",
                precision_name(p), threads, c.instruction, c.peak_gflops, c.gemm_gflops, 100 * c.gemm_gflops / c.peak_gflops);
    for (const GemmCandidates& g : c.candidates)
      std::printf("      %5dx%-5d own %6.0f GFLOP/s (%.0f%%), onednn %6.0f GFLOP/s (%.0f%%); engine runs %s (%s)\n", g.n, g.k,
                  g.own_gflops, 100 * g.own_gflops / c.peak_gflops, g.onednn_gflops, 100 * g.onednn_gflops / c.peak_gflops,
                  g.engine_gemm.c_str(), g.engine_how.c_str());
  }
  if (o.json) std::printf("%s\n", all.dump().c_str());
}

void run_bench(const BenchOptions& o) {
  if (o.ceiling_only) return run_ceilings(o);
  const double t0 = now_s();
  auto model = Model::load(o.model_dir, o.load);
  const double load_s = now_s() - t0;
  const ModelConfig& c = internals(*model).config;
  Context ctx(model, o.threads);

  std::mt19937 rng(1234);
  const int pairs = o.pairs > 0 ? o.pairs : (o.mixed ? 64 : o.short_rows ? 256 : 3);
  // mixed / short: lengths spread evenly over a range (shuffled), as a realistic file / a server's traffic has
  const int shortest = o.mixed ? 100 : o.short_rows ? 30 : o.tokens, longest = o.mixed ? 1000 : o.short_rows ? 120 : o.tokens;
  const std::string lengths = std::to_string(shortest) + ".." + std::to_string(longest);
  std::vector<PairRow> rows;
  for (int i = 0; i < pairs; ++i) {
    const int n = shortest + static_cast<int>((static_cast<double>(longest - shortest) * i) / std::max(1, pairs - 1));
    rows.push_back(synthetic_row(c, std::min(n, c.max_total_tokens()), rng));
  }
  std::shuffle(rows.begin(), rows.end(), rng);
  double flops = 0, tokens = 0;
  for (const auto& r : rows) {
    flops += row_flops(c, static_cast<double>(r.ids.size()));
    tokens += static_cast<double>(r.ids.size());
  }

  ctx.logits({rows.front()});  // warm-up: workspace, page-in of the weights, library initialisation
  Profile& prof = internals(ctx).workspace.profile;
  prof = Profile{};
  prof.enabled = true;
  const double t1 = now_s();
  const auto logits = ctx.logits(rows);
  const double run_s = now_s() - t1;
  const double gflops = flops / run_s / 1e9;
  // The machine's own ceilings for this precision and thread count, measured now (not a constant from
  // another host): the multiply-add instruction's peak and the dense layers' GEMM as the engine runs it.
  CeilingShape shape;
  shape.hidden = c.hidden_size;
  shape.intermediate = c.intermediate_size;
  shape.tokens = std::min((shortest + longest) / 2, c.max_total_tokens());
  const Ceiling ceiling = measure_ceiling(o.load.precision, ctx.threads(), shape);

  nlohmann::ordered_json j = {
      {"model", o.model_dir},
      {"precision", pairrm::precision_name(o.load.precision)},
      {"attention_products", model->info().bf16_attention ? "bf16" : "fp32"},
      {"isa", model->info().isa},
      {"isa_choice", model->info().isa_choice},
      {"gemm_kernel", model->info().gemm_kernel},
      {"dense_gemms", dense_gemms_json(model->info())},
      {"threads", ctx.threads()},
      {"pairs", pairs},
      {"tokens_per_pair", shortest != longest ? nlohmann::json("mixed " + std::to_string(shortest) + "-" + std::to_string(longest))
                                              : nlohmann::json(rows.front().ids.size())},
      {"seconds_total", run_s},
      {"seconds_per_pair", run_s / pairs},
      {"pairs_per_s", pairs / run_s},
      {"tokens_per_s", tokens / run_s},
      {"gflop", flops / 1e9},
      {"gflops_per_s", gflops},
      {"percent_of_peak", 100 * gflops / ceiling.peak_gflops},
      {"percent_of_gemm_ceiling", 100 * gflops / ceiling.gemm_gflops},
      {"ceiling", ceiling_json(ceiling)},
      {"breakdown_s", {{"gemm", prof.gemm_s}, {"attention", prof.attention_s},
                       {"other", prof.total_s - prof.gemm_s - prof.attention_s}, {"head_and_scheduling", run_s - prof.total_s}}},
      {"load_s", load_s},
      {"peak_rss_mb", peak_rss_mb()},
      {"checksum_first_logit", logits.front()},
  };
  if (o.json) {
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("model          %s (%d layers, hidden %d)\n", o.model_dir.c_str(), c.num_layers, c.hidden_size);
  std::printf("precision      %s (attention products %s), %d threads\n", pairrm::precision_name(o.load.precision),
              model->info().bf16_attention ? "bf16" : "fp32", ctx.threads());
  std::printf("gemm kernel    %s\n", model->info().gemm_kernel.c_str());
  for (const DenseGemmInfo& g : model->info().dense_gemms)
    std::printf("  %5dx%-5d   %s (%s; own %.0f, onednn %.0f GFLOP/s) for %s\n", g.n, g.k, g.gemm.c_str(), g.how.c_str(),
                g.own_gflops, g.onednn_gflops, g.layers.c_str());
  std::printf("isa            %s (%s)\n", model->info().isa.c_str(), model->info().isa_choice.c_str());
  std::printf("pairs          %d x %s tokens\n", pairs, shortest != longest ? lengths.c_str() : std::to_string(rows.front().ids.size()).c_str());
  std::printf("time           %.3f s total, %.3f s per pair, %.2f pairs/s, %.0f tokens/s\n", run_s, run_s / pairs,
              pairs / run_s, tokens / run_s);
  std::printf("compute        %.1f GFLOP, %.0f GFLOP/s = %.0f%% of the %s peak (%.0f), %.0f%% of the GEMM ceiling (%.0f)\n",
              flops / 1e9, gflops, 100 * gflops / ceiling.peak_gflops, ceiling.instruction, ceiling.peak_gflops,
              100 * gflops / ceiling.gemm_gflops, ceiling.gemm_gflops);
  std::printf("breakdown      gemm %.3f s, attention %.3f s, other %.3f s, head+scheduling %.3f s\n", prof.gemm_s,
              prof.attention_s, prof.total_s - prof.gemm_s - prof.attention_s, run_s - prof.total_s);
  std::printf("load           %.3f s\n", load_s);
  std::printf("peak RSS       %.0f MB\n", peak_rss_mb());
}

}  // namespace pairrm

namespace pairrm {

std::vector<PairRow> accuracy_rows(const Model& model, const AccuracyOptions& o) {
  const ModelConfig& c = internals(model).config;
  std::mt19937 rng(static_cast<uint32_t>(o.seed));
  std::uniform_int_distribution<int> len(o.min_tokens, o.max_tokens);
  std::vector<PairRow> rows;
  for (int i = 0; i < o.pairs; ++i) rows.push_back(synthetic_row(c, std::min(len(rng), c.max_total_tokens()), rng));
  return rows;
}

void run_accuracy(const AccuracyOptions& o) { std::printf("%s\n", accuracy_report(o).dump(2).c_str()); }

nlohmann::ordered_json accuracy_report(const AccuracyOptions& o) {
  LoadOptions load;
  auto reference = Model::load(o.model_dir, load);
  const std::vector<PairRow> rows = accuracy_rows(*reference, o);
  Context ref_ctx(reference, o.threads);
  const double t0 = now_s();
  const auto want = ref_ctx.logits(rows);
  nlohmann::ordered_json report = {{"model", o.model_dir}, {"pairs", o.pairs},
                                   {"tokens", std::to_string(o.min_tokens) + ".." + std::to_string(o.max_tokens)},
                                   {"fp32_seconds", now_s() - t0}};
  // The fp32 logits' scale, so that a reader sees whether the errors below are small against them (a model
  // whose logits are all tiny, or all of one sign, makes sign agreement say nothing).
  double mean = 0, mean_abs = 0, var = 0;
  int positive = 0;
  for (double v : want) {
    mean += v / want.size();
    mean_abs += std::abs(v) / want.size();
    positive += v > 0;
  }
  for (double v : want) var += (v - mean) * (v - mean) / want.size();
  const double spread = std::sqrt(var);
  report["fp32_mean_abs_logit"] = mean_abs;
  report["fp32_logit_mean"] = mean;
  report["fp32_logit_std"] = spread;
  report["fp32_positive_fraction"] = static_cast<double>(positive) / want.size();
  for (Precision p : o.precisions) {
    load.precision = p;
    load.attention = o.attention;
    auto model = Model::load(o.model_dir, load);
    Context ctx(model, o.threads);
    const double t1 = now_s();
    const auto got = ctx.logits(rows);
    std::vector<double> err;
    int agree = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      err.push_back(std::abs(got[i] - want[i]));
      agree += (got[i] > 0) == (want[i] > 0);
    }
    std::sort(err.begin(), err.end());
    const double p99 = err[std::min(err.size() - 1, static_cast<size_t>(0.99 * err.size()))];
    report[pairrm::precision_name(p)] = {
        {"max_abs_error", err.back()},
        {"p99_abs_error", p99},
        {"median_abs_error", err[err.size() / 2]},
        {"p99_error_over_fp32_std", spread > 0 ? p99 / spread : 0.0},
        {"sign_agreement", static_cast<double>(agree) / got.size()},
        {"attention_products", model->info().bf16_attention ? "bf16" : "fp32"},
        {"isa", model->info().isa},
        {"seconds", now_s() - t1}};
  }
  return report;
}

}  // namespace pairrm
