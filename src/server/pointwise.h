// The pointwise score of `pairrm serve`: one number per text, for the protocols that ask for one (TEI and
// vLLM/Jina/Cohere rerank, vLLM score, OpenRLHF's remote reward). PairRM itself only compares two answers,
// so a text is scored against a reference answer with the debiased comparison llm-blender's rank_with_ref
// computes:
//     s(text) = logit(text over ref) - logit(ref over text)
// (exactly /compare's default score with candidate_a = text, candidate_b = ref). The reference is the
// request's own (a `reference` / `labels` field), else the server's policy (--reference): a fixed text
// (--reference-text, default "", the empty answer: s then says how much better the text is than saying
// nothing, and does not depend on the other texts of the request), or "others": the texts of a request are
// ranked against each other as /rank does (score = mean over j of M[k,j] - M[j,k]); a text with no other
// text to meet falls back to the fixed text, so one text is never a silent 0.
// Header-only: the server library's source list lives in the top CMakeLists.txt.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "pairrm/pairrm.h"

namespace pairrm::server {

// The label TEI and vLLM report for a one-label model (id2label[0] in transformers' default config).
constexpr char kOneLabel[] = "LABEL_0";

// The longest row PairRM builds (source + two candidates): vLLM's max_model_len, TEI's max_input_length.
inline long longest_row_tokens(const ModelInfo& info) { return info.source_max_tokens + 2L * info.candidate_max_tokens; }

struct ReferencePolicy {
  bool others = false;  // --reference others (else fixed)
  std::string text;     // --reference-text: the fixed reference answer
};

// How the texts of a row are cut, on top of PairRM's own per-segment truncation (source <= S tokens, each
// candidate <= (S + 2C - len(source)) / 2, the model card's rule). Both candidate slots always get the same
// budget, so the two rows of one comparison are mirror images of each other.
struct Truncation {
  bool allowed = true;        // false: a text over its budget is an error instead (TEI's truncate=false)
  bool keep_end = false;      // cut from the start, keeping the end (TEI's truncation_direction=left; vLLM)
  int max_row_tokens = 0;     // > 0: rows of at most this many tokens (vLLM's truncate_prompt_tokens)
  int max_answer_tokens = 0;  // > 0: each answer segment at most this many text tokens (Cohere's max_tokens_per_doc)
};

// A text that does not fit while Truncation::allowed is false.
class TruncationError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Texts answering one prompt. references: empty, or one per text (nullopt: the policy decides).
struct PointwiseGroup {
  std::string prompt;
  std::vector<std::string> texts;
  std::vector<std::optional<std::string>> references;
};

struct PointwiseScores {
  std::vector<std::vector<double>> scores;  // [group][text]
  long tokens = 0;                          // tokens of every forward pass run (the protocols' usage)
};

// A request's items (prompt, answer, reference) gathered into one group per prompt, so that "--reference
// others" ranks the answers of a prompt against each other (GRPO's group); an exchange scored as a whole
// (a conversation's own comparison) is a group of its own. Scores come back in the items' order.
class PointwiseBatch {
 public:
  void add(const std::string& prompt, std::string answer, std::optional<std::string> reference) {
    auto [it, fresh] = group_of_.emplace(prompt, groups_.size());
    if (fresh) groups_.push_back({prompt, {}, {}});
    PointwiseGroup& g = groups_[it->second];
    where_.emplace_back(it->second, g.texts.size());
    g.texts.push_back(std::move(answer));
    g.references.push_back(std::move(reference));
  }
  void add_alone(PointwiseGroup group) {
    where_.emplace_back(groups_.size(), 0);
    groups_.push_back(std::move(group));
  }
  const std::vector<PointwiseGroup>& groups() const { return groups_; }
  std::vector<double> in_order(const PointwiseScores& r) const {
    std::vector<double> out;
    for (const auto& [g, i] : where_) out.push_back(r.scores[g][i]);
    return out;
  }

 private:
  std::vector<PointwiseGroup> groups_;
  std::unordered_map<std::string, size_t> group_of_;
  std::vector<std::pair<size_t, size_t>> where_;  // item -> (group, text)
};

// 1 / (1 + e^-x) without overflow for large |x|: the protocols' 0..1 scores.
inline double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

// The forward passes of one request: each text tokenized once, rows cut per Truncation, one logits() call.
class PassPlan {
 public:
  PassPlan(const Model& model, const Truncation& t) : model_(model), t_(t) {
    const ModelInfo& i = model.info();
    total_ = i.source_max_tokens + 2 * i.candidate_max_tokens;
    source_max_ = i.source_max_tokens;
    if (t.max_row_tokens > 0 && t.max_row_tokens < total_) {
      // A shorter row keeps the model's source share of it; each segment needs its [CLS], prefix and [SEP].
      const long share = static_cast<long>(t.max_row_tokens) * source_max_ / total_;
      total_ = t.max_row_tokens;
      source_max_ = static_cast<int>(std::clamp<long>(share, 3, std::max(3, total_ - 6)));
    }
  }

  // The pass logit(a over b) as an answer to `source`; returns its index.
  size_t add(const std::string& source, const std::string& a, const std::string& b) {
    const auto& s = tokens(source, "the prompt");
    const auto& ta = tokens(a, "a text");
    const auto& tb = tokens(b, "a text");
    const int source_keep = source_max_ - 3;
    const int source_len = std::min<int>(static_cast<int>(s.size()), source_keep) + 3;
    int answer_keep = (total_ - source_len) / 2 - 3;
    if (t_.max_answer_tokens > 0) answer_keep = std::min(answer_keep, t_.max_answer_tokens);
    if (!t_.allowed) {
      check_fits(s.size(), source_keep, "the query");
      check_fits(std::max(ta.size(), tb.size()), answer_keep, "a text (or the reference)");
    }
    rows_.push_back(model_.build_row(cut(s, source_keep), cut(ta, answer_keep), cut(tb, answer_keep)));
    tokens_ += static_cast<long>(rows_.back().ids.size());
    return rows_.size() - 1;
  }

  void run(Scorer& scorer) {
    if (!rows_.empty()) logits_ = scorer.logits(rows_);
  }
  double operator[](size_t i) const { return logits_.at(i); }
  long tokens() const { return tokens_; }

 private:
  const std::vector<int32_t>& tokens(const std::string& text, const char* what) {
    auto it = cache_.find(text);
    if (it == cache_.end()) it = cache_.emplace(text, model_.text_tokens(text, what)).first;
    return it->second;
  }
  std::vector<int32_t> cut(const std::vector<int32_t>& ids, int keep) const {
    const size_t n = std::min(ids.size(), static_cast<size_t>(std::max(0, keep)));
    return t_.keep_end ? std::vector<int32_t>(ids.end() - static_cast<long>(n), ids.end())
                       : std::vector<int32_t>(ids.begin(), ids.begin() + static_cast<long>(n));
  }
  static void check_fits(size_t have, int keep, const char* what) {
    if (have > static_cast<size_t>(std::max(0, keep)))
      throw TruncationError(std::string("Input validation error: ") + what + " has " + std::to_string(have) +
                            " tokens, over the " + std::to_string(std::max(0, keep)) +
                            " its segment of the comparison holds (truncate is false)");
  }

  const Model& model_;
  Truncation t_;
  int total_ = 0, source_max_ = 0;
  std::unordered_map<std::string, std::vector<int32_t>> cache_;
  std::vector<PairRow> rows_;
  std::vector<double> logits_;
  long tokens_ = 0;
};

// The pointwise scores of every text of every group (see the top of this file), with one batched call.
inline PointwiseScores pointwise_scores(Scorer& scorer, const std::vector<PointwiseGroup>& groups,
                                        const ReferencePolicy& policy, const Truncation& truncation = {}) {
  PassPlan plan(scorer.model(), truncation);
  struct Against {  // the passes of one text against one reference
    size_t over, under;
  };
  // Per group: each text's passes against a reference, or its place among the ranked texts.
  std::vector<std::vector<std::optional<Against>>> vs_ref(groups.size());
  std::vector<std::vector<size_t>> ranked(groups.size());               // text indices ranked together
  std::vector<std::vector<size_t>> matrix(groups.size());               // pass of (ranked[i], ranked[j])
  for (size_t g = 0; g < groups.size(); ++g) {
    const PointwiseGroup& grp = groups[g];
    if (!grp.references.empty() && grp.references.size() != grp.texts.size())
      throw std::logic_error("pointwise_scores: references must be empty or one per text");
    vs_ref[g].resize(grp.texts.size());
    std::vector<size_t> free;
    for (size_t i = 0; i < grp.texts.size(); ++i) {
      if (!grp.references.empty() && grp.references[i])
        vs_ref[g][i] = Against{plan.add(grp.prompt, grp.texts[i], *grp.references[i]),
                               plan.add(grp.prompt, *grp.references[i], grp.texts[i])};
      else
        free.push_back(i);
    }
    if (policy.others && free.size() >= 2) {
      const size_t m = free.size();
      ranked[g] = free;
      matrix[g].assign(m * m, SIZE_MAX);
      for (size_t i = 0; i < m; ++i)
        for (size_t j = 0; j < m; ++j)
          if (i != j) matrix[g][i * m + j] = plan.add(grp.prompt, grp.texts[free[i]], grp.texts[free[j]]);
    } else {
      for (size_t i : free)
        vs_ref[g][i] = Against{plan.add(grp.prompt, grp.texts[i], policy.text), plan.add(grp.prompt, policy.text, grp.texts[i])};
    }
  }
  plan.run(scorer);

  PointwiseScores out;
  out.tokens = plan.tokens();
  out.scores.resize(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    out.scores[g].assign(groups[g].texts.size(), 0.0);
    for (size_t i = 0; i < vs_ref[g].size(); ++i)
      if (vs_ref[g][i]) out.scores[g][i] = plan[vs_ref[g][i]->over] - plan[vs_ref[g][i]->under];
    // "others": /rank's formula in /rank's summation order (diagonal terms included as 0), so the scores
    // are bitwise /rank's.
    const size_t m = ranked[g].size();
    auto M = [&](size_t i, size_t j) { return i == j ? 0.0 : plan[matrix[g][i * m + j]]; };
    for (size_t i = 0; i < m; ++i) {
      double sum = 0;
      for (size_t j = 0; j < m; ++j) sum += M(i, j) - M(j, i);
      out.scores[g][ranked[g][i]] = sum / static_cast<double>(m);
    }
  }
  return out;
}

}  // namespace pairrm::server
