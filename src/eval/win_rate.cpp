#include "eval/win_rate.h"

#include <algorithm>
#include <cmath>

#include "pairrm/pairrm.h"

namespace pairrm::eval {

Outcome outcome_of(double score, double tie_threshold) {
  if (score > tie_threshold) return Outcome::kWin;
  if (score < -tie_threshold) return Outcome::kLoss;
  return Outcome::kTie;
}

std::vector<double> bootstrap_win_rates(const std::vector<double>& points, int resamples, uint64_t seed) {
  std::vector<double> rates;
  if (points.empty()) return rates;
  SplitMix64 rng(seed);
  const uint64_t n = points.size();
  rates.reserve(static_cast<size_t>(std::max(resamples, 0)));
  for (int r = 0; r < resamples; ++r) {
    double sum = 0;
    for (uint64_t k = 0; k < n; ++k) sum += points[rng.next() % n];  // modulo bias < n / 2^64
    rates.push_back(sum / static_cast<double>(n));
  }
  return rates;
}

double quantile(std::vector<double> values, double q) {
  if (values.empty()) return std::nan("");
  std::sort(values.begin(), values.end());
  const double pos = q * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (pos - static_cast<double>(lo));
}

Summary summarize(const std::vector<PairLogits>& pairs, const StatsOptions& options) {
  if (pairs.empty()) throw Error("no prompts to evaluate");
  Summary s;
  s.n = static_cast<long>(pairs.size());
  std::vector<double> points;
  long consistent = 0;
  double score_sum = 0;
  for (const PairLogits& p : pairs) {
    switch (outcome_of(p.score(), options.tie_threshold)) {
      case Outcome::kWin: ++s.wins, points.push_back(1.0); break;
      case Outcome::kTie: ++s.ties, points.push_back(0.5); break;
      case Outcome::kLoss: ++s.losses, points.push_back(0.0); break;
    }
    consistent += p.position_consistent();
    score_sum += p.score();
  }
  const double n = static_cast<double>(s.n);
  s.win_rate = (static_cast<double>(s.wins) + 0.5 * static_cast<double>(s.ties)) / n;
  s.position_consistency = static_cast<double>(consistent) / n;
  s.mean_score = score_sum / n;
  const auto rates = bootstrap_win_rates(points, options.bootstrap, options.seed);
  const double alpha = 1.0 - options.confidence;
  s.ci_low = quantile(rates, alpha / 2);
  s.ci_high = quantile(rates, 1.0 - alpha / 2);
  return s;
}

}  // namespace pairrm::eval
