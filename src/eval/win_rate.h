// The statistics of `pairrm eval`: outcomes of position-debiased pair scores, win rate with a seeded
// bootstrap interval, position consistency. Pure functions of the logits, so tests can recompute them.
#pragma once
#include <cstdint>
#include <vector>

namespace pairrm::eval {

// The two passes of one prompt: logit(A, B) with A in the first slot, logit(B, A) with the slots swapped.
struct PairLogits {
  double logit_ab = 0;
  double logit_ba = 0;
  // Position-debiased: the bias towards a slot cancels (llm-blender's default "[A,B]+[B,A]").
  double score() const { return logit_ab - logit_ba; }
  // Both passes prefer the same answer: A in both (ab > 0, ba < 0) or B in both (ab < 0, ba > 0).
  bool position_consistent() const { return (logit_ab > 0 && logit_ba < 0) || (logit_ab < 0 && logit_ba > 0); }
};

enum class Outcome { kLoss = -1, kTie = 0, kWin = 1 };  // for system A

// Win when score > t, loss when score < -t, tie otherwise (t = 0: only an exact 0, e.g. identical answers).
Outcome outcome_of(double score, double tie_threshold);

struct StatsOptions {
  double tie_threshold = 0;
  int bootstrap = 1000;     // resamples
  uint64_t seed = 0;        // the same seed gives the same interval
  double confidence = 0.95;
};

struct Summary {
  long n = 0, wins = 0, ties = 0, losses = 0;
  double win_rate = 0;              // of A: (wins + ties / 2) / n
  double ci_low = 0, ci_high = 0;   // bootstrap percentile interval of win_rate at `confidence`
  double position_consistency = 0;  // fraction of prompts whose two passes agree
  double mean_score = 0;
};

// Throws pairrm::Error for an empty set.
Summary summarize(const std::vector<PairLogits>& pairs, const StatsOptions& options);

// SplitMix64 (Steele, Lea, Flood 2014): small, fast, and the same on every platform, unlike the
// distributions of <random>, so the interval can be recomputed anywhere from the seed.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

// `resamples` win rates of n points (1 win, 0.5 tie, 0 loss) drawn with replacement: resample r takes
// points[next() % n] n times, from one SplitMix64(seed) stream.
std::vector<double> bootstrap_win_rates(const std::vector<double>& points, int resamples, uint64_t seed);

// The q-quantile (0..1) of the values with linear interpolation between order statistics (numpy's default).
double quantile(std::vector<double> values, double q);

}  // namespace pairrm::eval
