// llm-blender's Blender API on top of Context::logits: rank, rank with a reference, best/worst of n,
// conversations. Every function gathers all the forward passes it needs into one Context::logits call;
// since rows never share a computation, results equal one-at-a-time calls bitwise.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pairrm/pairrm.h"

namespace pairrm {

struct RankInput {
  std::string source;
  std::vector<std::string> candidates;  // any number >= 1; lists may differ in length between inputs
};

struct RankResult {
  std::vector<double> scores;  // score[k] = mean over j (diagonal included) of M[k,j] - M[j,k]
  std::vector<int> ranks;      // 1 = best; equal scores share the smallest rank (1, 1, 3)
};

// Every ordered pair i != j is one forward pass: M[i,j] = logit(i over j).
std::vector<RankResult> rank(Scorer& ctx, const std::vector<RankInput>& inputs);

enum class ReferenceMode { kLongest, kShortest, kMedianLength, kFirst, kLast };
// "longest" | "shortest" | "median_length" | "first" | "last"; throws Error otherwise.
ReferenceMode parse_reference_mode(const std::string& name);

// Index of the reference candidate by character length (first maximum/minimum wins; median_length is the
// element at n/2 of a stable sort by length).
size_t reference_index(const std::vector<std::string>& candidates, ReferenceMode mode);

struct RankWithRefResult : RankResult {
  std::string reference;
};
// score(c) = -(logit(ref, c) - logit(c, ref)). `references`, when given, holds one reference text per
// input and replaces `mode`.
std::vector<RankWithRefResult> rank_with_ref(Scorer& ctx, const std::vector<RankInput>& inputs, ReferenceMode mode,
                                             const std::vector<std::string>* references = nullptr);

enum class SelectionMethod { kBubble, kFull };

struct BestOfNOptions {
  SelectionMethod method = SelectionMethod::kBubble;
  bool worst = false;                // get_worst_of_n
  std::optional<uint64_t> seed;      // bubble: a seeded random order; none = the identity order
};

struct BestOfNResult {
  size_t index = 0;                 // into the candidates
  std::vector<size_t> order;        // bubble: the order the candidates were visited in
  std::vector<double> pass_scores;  // bubble: s = logit(cur, nxt) - logit(nxt, cur) of each step
  RankResult ranking;               // full: the ranking it came from
};

// bubble: one pass over the order, comparing neighbours in both orders; the current candidate stays if
// s > 0 (best) / s < 0 (worst), otherwise the later one takes its place (ties go to the later candidate).
// full: rank(), then the best (lowest) / worst (highest) rank, lowest index on ties.
std::vector<BestOfNResult> best_of_n(Scorer& ctx, const std::vector<RankInput>& inputs, const BestOfNOptions& options);

struct Turn {
  std::string role;  // "USER" / "ASSISTANT" (case-insensitive)
  std::string content;
};
using Conversation = std::vector<Turn>;

// The comparison llm-blender builds for two conversations (spec section 5): throws Error naming the problem
// when the turns do not alternate USER/ASSISTANT from a USER turn, the counts are odd or differ, or the
// USER turns differ.
Comparison conversation_comparison(const Conversation& a, const Conversation& b);

std::vector<CompareResult> compare_conversations(Scorer& ctx, const std::vector<std::pair<Conversation, Conversation>>& items,
                                                 CompareMode mode = CompareMode::kBoth);

// Competition ranks of scores (higher is better).
std::vector<int> competition_ranks(const std::vector<double>& scores);

}  // namespace pairrm
