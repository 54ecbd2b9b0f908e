#include "pairrm/ranking.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <unordered_map>

namespace pairrm {
namespace {

// Collects forward passes (pairs of texts under one source) and runs them in one Scorer::logits call.
// Each distinct text is tokenized once (a ranking of n candidates uses each of them in 2(n-1) rows).
class PassBatch {
 public:
  explicit PassBatch(Scorer& ctx) : ctx_(ctx) {}
  size_t add(const std::string& source, const std::string& first, const std::string& second) {
    rows_.push_back(ctx_.model().build_row(tokens(source, "source"), tokens(first, "candidate"),
                                           tokens(second, "candidate")));
    return rows_.size() - 1;
  }
  void run() { logits_ = ctx_.logits(rows_); }
  double operator[](size_t i) const { return logits_.at(i); }

 private:
  const std::vector<int32_t>& tokens(const std::string& text, const char* what) {
    auto it = tokens_.find(text);
    if (it == tokens_.end()) it = tokens_.emplace(text, ctx_.model().text_tokens(text, what)).first;
    return it->second;
  }

  Scorer& ctx_;
  std::unordered_map<std::string, std::vector<int32_t>> tokens_;
  std::vector<PairRow> rows_;
  std::vector<double> logits_;
};

void require_candidates(const RankInput& in, size_t i) {
  if (in.candidates.empty()) throw Error("input " + std::to_string(i) + ": no candidates");
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

size_t char_length(const std::string& s) {  // code points, as Python's len()
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

std::vector<int> competition_ranks(const std::vector<double>& scores) {
  std::vector<int> ranks(scores.size(), 1);
  for (size_t i = 0; i < scores.size(); ++i)
    for (size_t j = 0; j < scores.size(); ++j) ranks[i] += scores[j] > scores[i];
  return ranks;
}

std::vector<RankResult> rank(Scorer& ctx, const std::vector<RankInput>& inputs) {
  PassBatch batch(ctx);
  std::vector<std::vector<size_t>> pass(inputs.size());  // pass[input][i*n + j]
  for (size_t k = 0; k < inputs.size(); ++k) {
    const RankInput& in = inputs[k];
    require_candidates(in, k);
    const size_t n = in.candidates.size();
    pass[k].assign(n * n, SIZE_MAX);
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j)
        if (i != j) pass[k][i * n + j] = batch.add(in.source, in.candidates[i], in.candidates[j]);
  }
  batch.run();
  std::vector<RankResult> out(inputs.size());
  for (size_t k = 0; k < inputs.size(); ++k) {
    const size_t n = inputs[k].candidates.size();
    auto M = [&](size_t i, size_t j) { return i == j ? 0.0 : batch[pass[k][i * n + j]]; };
    RankResult& r = out[k];
    r.scores.assign(n, 0.0);
    for (size_t i = 0; i < n; ++i) {
      double sum = 0;
      for (size_t j = 0; j < n; ++j) sum += M(i, j) - M(j, i);
      r.scores[i] = sum / static_cast<double>(n);
    }
    r.ranks = competition_ranks(r.scores);
  }
  return out;
}

ReferenceMode parse_reference_mode(const std::string& name) {
  if (name == "longest") return ReferenceMode::kLongest;
  if (name == "shortest") return ReferenceMode::kShortest;
  if (name == "median_length") return ReferenceMode::kMedianLength;
  if (name == "first") return ReferenceMode::kFirst;
  if (name == "last") return ReferenceMode::kLast;
  throw Error("unknown reference mode '" + name + "' (longest, shortest, median_length, first, last)");
}

size_t reference_index(const std::vector<std::string>& c, ReferenceMode mode) {
  if (c.empty()) throw Error("no candidates to take a reference from");
  switch (mode) {
    case ReferenceMode::kFirst: return 0;
    case ReferenceMode::kLast: return c.size() - 1;
    case ReferenceMode::kLongest:
    case ReferenceMode::kShortest: {
      size_t best = 0;
      for (size_t i = 1; i < c.size(); ++i) {
        const size_t a = char_length(c[i]), b = char_length(c[best]);
        if (mode == ReferenceMode::kLongest ? a > b : a < b) best = i;
      }
      return best;
    }
    case ReferenceMode::kMedianLength: {
      std::vector<size_t> order(c.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t a, size_t b) { return char_length(c[a]) < char_length(c[b]); });
      return order[c.size() / 2];
    }
  }
  return 0;
}

std::vector<RankWithRefResult> rank_with_ref(Scorer& ctx, const std::vector<RankInput>& inputs, ReferenceMode mode,
                                             const std::vector<std::string>* references) {
  if (references && references->size() != inputs.size())
    throw Error("rank_with_ref: " + std::to_string(references->size()) + " references for " +
                std::to_string(inputs.size()) + " inputs");
  PassBatch batch(ctx);
  std::vector<RankWithRefResult> out(inputs.size());
  std::vector<std::vector<std::pair<size_t, size_t>>> pass(inputs.size());
  for (size_t k = 0; k < inputs.size(); ++k) {
    const RankInput& in = inputs[k];
    require_candidates(in, k);
    out[k].reference = references ? (*references)[k] : in.candidates[reference_index(in.candidates, mode)];
    for (const std::string& c : in.candidates)
      pass[k].emplace_back(batch.add(in.source, out[k].reference, c), batch.add(in.source, c, out[k].reference));
  }
  batch.run();
  for (size_t k = 0; k < inputs.size(); ++k) {
    for (const auto& [ref_over_c, c_over_ref] : pass[k]) out[k].scores.push_back(-(batch[ref_over_c] - batch[c_over_ref]));
    out[k].ranks = competition_ranks(out[k].scores);
  }
  return out;
}

std::vector<BestOfNResult> best_of_n(Scorer& ctx, const std::vector<RankInput>& inputs, const BestOfNOptions& opt) {
  std::vector<BestOfNResult> out(inputs.size());
  if (opt.method == SelectionMethod::kFull) {
    const auto ranked = rank(ctx, inputs);
    for (size_t k = 0; k < inputs.size(); ++k) {
      const auto& r = ranked[k].ranks;
      size_t pick = 0;
      for (size_t i = 1; i < r.size(); ++i)
        if (opt.worst ? r[i] > r[pick] : r[i] < r[pick]) pick = i;
      out[k].index = pick;
      out[k].ranking = ranked[k];
    }
    return out;
  }
  // Bubble: the pass is sequential (which candidate is "current" depends on earlier results), so inputs
  // advance together, one step per batched call.
  std::mt19937_64 rng(opt.seed.value_or(0));
  size_t longest = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    require_candidates(inputs[k], k);
    auto& order = out[k].order;
    order.resize(inputs[k].candidates.size());
    std::iota(order.begin(), order.end(), 0);
    if (opt.seed)  // Fisher-Yates with a fixed engine: the same seed gives the same order everywhere
      for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
    out[k].index = order[0];
    longest = std::max(longest, order.size());
  }
  for (size_t step = 1; step < longest; ++step) {
    PassBatch batch(ctx);
    std::vector<std::pair<size_t, size_t>> pass(inputs.size(), {SIZE_MAX, SIZE_MAX});
    for (size_t k = 0; k < inputs.size(); ++k) {
      if (step >= out[k].order.size()) continue;
      const auto& c = inputs[k].candidates;
      const std::string& cur = c[out[k].index];
      const std::string& nxt = c[out[k].order[step]];
      pass[k] = {batch.add(inputs[k].source, cur, nxt), batch.add(inputs[k].source, nxt, cur)};
    }
    batch.run();
    for (size_t k = 0; k < inputs.size(); ++k) {
      if (pass[k].first == SIZE_MAX) continue;
      const double s = batch[pass[k].first] - batch[pass[k].second];
      out[k].pass_scores.push_back(s);
      const bool keep = opt.worst ? s < 0 : s > 0;
      if (!keep) out[k].index = out[k].order[step];
    }
  }
  return out;
}

Comparison conversation_comparison(const Conversation& a, const Conversation& b) {
  if (a.size() != b.size())
    throw Error("conversations have different lengths (" + std::to_string(a.size()) + " and " +
                std::to_string(b.size()) + " turns)");
  if (a.empty() || a.size() % 2 != 0)
    throw Error("a conversation needs an even, non-zero number of turns (USER, ASSISTANT, ...); got " +
                std::to_string(a.size()));
  Comparison cmp;
  cmp.source = "Finish the following coversation in each i-th turn by filling in <Response i> with your response.";
  for (size_t t = 0; t < a.size(); ++t) {
    const std::string want = t % 2 == 0 ? "user" : "assistant";
    for (const Conversation* conv : {&a, &b})
      if (lower((*conv)[t].role) != want)
        throw Error(std::string("conversation ") + (conv == &a ? "a" : "b") + " turn " + std::to_string(t) +
                    ": role '" + (*conv)[t].role + "', expected " + (t % 2 == 0 ? "USER" : "ASSISTANT"));
    const std::string k = std::to_string(t / 2 + 1);
    if (t % 2 == 0) {
      if (a[t].content != b[t].content)
        throw Error("turn " + std::to_string(t) + ": the USER turns of the two conversations differ");
      cmp.source += (t ? "\n" : "") + ("USER: " + a[t].content + "\nAssistant: <Response " + k + ">");
    } else {
      const std::string sep = t > 1 ? "\n" : "";
      cmp.candidate_a += sep + "<Response " + k + ">: " + a[t].content;
      cmp.candidate_b += sep + "<Response " + k + ">: " + b[t].content;
    }
  }
  return cmp;
}

std::vector<CompareResult> compare_conversations(Scorer& ctx, const std::vector<std::pair<Conversation, Conversation>>& items,
                                                 CompareMode mode) {
  std::vector<Comparison> cmp;
  cmp.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    try {
      cmp.push_back(conversation_comparison(items[i].first, items[i].second));
    } catch (const Error& e) {
      throw Error("conversation pair " + std::to_string(i) + ": " + e.what());
    }
  }
  return compare(ctx, cmp, mode);
}

}  // namespace pairrm
