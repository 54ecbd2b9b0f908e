#include "kernels/gemm_choice.h"

#include <cpuid.h>
#include <oneapi/dnnl/dnnl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "kernels/isa.h"
#include "kernels/linear.h"
#include "pairrm/pairrm.h"
#include "tools/clock.h"

namespace pairrm::kernels {
namespace {

// The CPU's model name from cpuid (e.g. "AMD EPYC 9R14 96-Core Processor"), or its vendor where it has none.
std::string cpu_model() {
  unsigned regs[12] = {};
  if (__get_cpuid_max(0x80000000, nullptr) < 0x80000004) return "unknown x86-64";
  for (unsigned leaf = 0; leaf < 3; ++leaf)
    __get_cpuid(0x80000002 + leaf, &regs[4 * leaf], &regs[4 * leaf + 1], &regs[4 * leaf + 2], &regs[4 * leaf + 3]);
  std::string name(reinterpret_cast<const char*>(regs), sizeof(regs));
  name = name.substr(0, name.find('\0'));
  const size_t first = name.find_first_not_of(' '), last = name.find_last_not_of(' ');
  return first == std::string::npos ? "unknown x86-64" : name.substr(first, last - first + 1);
}

// Deterministic values of a realistic scale (N(0, 0.02)-like weights and O(1) activations); the rate does
// not depend on them (no denormals), only the time to make them does, hence a cheap generator.
std::vector<float> filler(size_t n, uint32_t seed, float scale) {
  std::vector<float> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (float& f : v) {
    x = x * 1664525u + 1013904223u;
    f = scale * (static_cast<float>(x >> 8) / 16777216.f - 0.5f);
  }
  return v;
}

// GFLOP/s of each layer's forward pass over `rows` rows (one row of `rows` tokens, as the encoder calls
// oneDNN): two warm-up passes each, then five rounds that time the candidates in turn, best of five each.
// In turn, not one after the other: a machine's noise (another tenant, the clock ramping up, the first
// touches of fresh pages) then falls on both alike — measured on a Zen 4 host, the first candidate timed
// alone ran at half its rate in one run of three and its shape was cached for oneDNN by mistake.
std::vector<double> rates(const std::vector<const PackedLinear*>& layers, const std::vector<float>& A, int rows,
                          int threads) {
  std::vector<std::vector<float>> C(layers.size());
  LinearScratch scratch;
  auto once = [&](size_t i) {
    C[i].resize(static_cast<size_t>(rows) * layers[i]->n());
    layers[i]->forward(A.data(), rows, C[i].data(), Epilogue::kStore, scratch, 0, threads);
  };
  for (int warm = 0; warm < 2; ++warm)
    for (size_t i = 0; i < layers.size(); ++i) once(i);
  std::vector<double> best(layers.size(), 1e30);
  for (int round = 0; round < 5; ++round)
    for (size_t i = 0; i < layers.size(); ++i) {
      const double t0 = now_s();
      once(i);
      best[i] = std::min(best[i], now_s() - t0);
    }
  std::vector<double> gflops;
  for (size_t i = 0; i < layers.size(); ++i)
    gflops.push_back(2.0 * rows * layers[i]->n() * layers[i]->k() / std::max(best[i], 1e-9) / 1e9);
  return gflops;
}

std::optional<DenseGemm> forced_gemm() {
  const char* env = std::getenv("PAIRRM_GEMM");
  if (!env || !*env || std::string(env) == "auto") return std::nullopt;
  const std::string v(env);
  if (v == "own") return DenseGemm::kOwn;
  if (v == "onednn") return DenseGemm::kOneDnn;
  throw Error("PAIRRM_GEMM='" + v + "' is not a GEMM choice (own, onednn or auto)");
}

nlohmann::json read_cache(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nlohmann::json::object();
  // A damaged or foreign file is no cache: it is re-measured and rewritten, never trusted.
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : nlohmann::json::object();
}

std::optional<GemmChoice> cached_choice(const nlohmann::json& cache, const std::string& key) {
  const auto it = cache.find(key);
  if (it == cache.end() || !it->is_object()) return std::nullopt;
  const auto gemm = it->find("gemm"), own = it->find("own_gflops"), onednn = it->find("onednn_gflops");
  if (gemm == it->end() || !gemm->is_string() || own == it->end() || !own->is_number() || onednn == it->end() ||
      !onednn->is_number())
    return std::nullopt;
  GemmChoice c;
  if (*gemm == "own") c.gemm = DenseGemm::kOwn;
  else if (*gemm == "onednn") c.gemm = DenseGemm::kOneDnn;
  else return std::nullopt;
  c.how = "cached";
  c.own_gflops = own->get<double>();
  c.onednn_gflops = onednn->get<double>();
  return c;
}

// Adds the entry and replaces the file atomically (a temporary file renamed over it): a reader sees the old
// file or the new one, never half of one. Where another process wrote this key meanwhile, its choice wins
// (returned), so concurrent first loads on one machine still end up with one choice.
GemmChoice store_choice(const std::string& path, const std::string& key, GemmChoice measured) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  nlohmann::json cache = read_cache(path);
  if (auto other = cached_choice(cache, key)) return *other;
  cache[key] = {{"gemm", dense_gemm_name(measured.gemm)},
                {"own_gflops", measured.own_gflops},
                {"onednn_gflops", measured.onednn_gflops}};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << cache.dump(1) << "\n";
    if (!out.flush()) {
      fs::remove(tmp, ec);
      return measured;  // no cache where it cannot be written (read-only home): measured again next time
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) fs::remove(tmp, ec);
  return measured;
}

}  // namespace

const char* dense_gemm_name(DenseGemm gemm) { return gemm == DenseGemm::kOwn ? "own" : "onednn"; }

std::string gemm_cache_path() {
  if (const char* p = std::getenv("PAIRRM_GEMM_CACHE"); p && *p) {
    const std::string v(p);
    return v == "off" || v == "0" ? "" : v;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/pairrm/gemm-choice.json";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/pairrm/gemm-choice.json";
  return "";
}

std::string gemm_cache_key(int N, int K) {
  const dnnl_version_t* v = dnnl_version();
  std::ostringstream key;
  key << cpu_model() << " | " << isa_name(active_isa()) << " | oneDNN " << v->major << "." << v->minor << "."
      << v->patch << " | " << N << "x" << K;
  return key.str();
}

GemmChoice measure_dense_gemm(int N, int K, int threads, int rows) {
  const auto W = filler(static_cast<size_t>(N) * K, 1, 0.04f), bias = filler(N, 2, 0.04f);
  const auto A = filler(static_cast<size_t>(rows) * K, 3, 2.f);
  GemmChoice c;
  c.how = "measured";
  const PackedLinear own(W.data(), bias.data(), N, K, Precision::kF32, DenseGemm::kOwn);
  const PackedLinear onednn(W.data(), bias.data(), N, K, Precision::kF32, DenseGemm::kOneDnn);
  const std::vector<double> r = rates({&own, &onednn}, A, rows, threads);
  c.own_gflops = r[0];
  c.onednn_gflops = r[1];
  c.gemm = c.onednn_gflops > kOneDnnMargin * c.own_gflops ? DenseGemm::kOneDnn : DenseGemm::kOwn;
  return c;
}

GemmChoice choose_dense_gemm(int N, int K, int threads) {
  if (auto forced = forced_gemm()) return GemmChoice{*forced, "forced by PAIRRM_GEMM", 0, 0};
  threads = std::max(1, threads);
  static std::mutex mutex;
  static std::map<std::string, GemmChoice> memo;
  // Not keyed by the thread count: a row's bits must not depend on --threads, so every thread count of a
  // machine runs the choice first made there (timed on the threads of that first load).
  const std::string key = gemm_cache_key(N, K), path = gemm_cache_path();
  std::lock_guard<std::mutex> lock(mutex);  // one timing at a time: two at once would time each other
  const std::string memo_key = path + "\n" + key;  // a process that changes the cache's path reads the new one
  if (auto it = memo.find(memo_key); it != memo.end()) return it->second;
  std::optional<GemmChoice> choice;
  if (!path.empty()) choice = cached_choice(read_cache(path), key);
  if (!choice) {
    choice = measure_dense_gemm(N, K, threads);
    if (!path.empty()) choice = store_choice(path, key, *choice);
  }
  return memo[memo_key] = *choice;
}

}  // namespace pairrm::kernels
