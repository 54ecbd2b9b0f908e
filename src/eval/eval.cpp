#include "eval/eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "jobs/progress.h"

namespace pairrm::eval {
namespace {

using nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

OrderedJson summary_json(const Summary& s) {
  return OrderedJson{{"n", s.n},
                     {"wins", s.wins},
                     {"ties", s.ties},
                     {"losses", s.losses},
                     {"win_rate", s.win_rate},
                     {"ci_low", s.ci_low},
                     {"ci_high", s.ci_high},
                     {"position_consistency", s.position_consistency},
                     {"mean_score", s.mean_score}};
}

const char* outcome_name(Outcome o) { return o == Outcome::kWin ? "win" : o == Outcome::kTie ? "tie" : "loss"; }

// Both passes of every item, in chunks (progress between them); an item the engine refuses (invalid UTF-8,
// a text over the size limit) is found by redoing its chunk item by item.
std::vector<PairLogits> score_items(Scorer& scorer, const std::vector<EvalItem>& items, size_t chunk, bool quiet,
                                    std::vector<InputProblem>& problems, std::vector<bool>& usable) {
  std::vector<PairLogits> out(items.size());
  usable.assign(items.size(), true);
  jobs::Progress progress("pairrm eval", static_cast<long>(items.size()), quiet);
  for (size_t start = 0; start < items.size(); start += chunk) {
    const size_t end = std::min(items.size(), start + chunk);
    std::vector<Comparison> batch;
    for (size_t i = start; i < end; ++i) batch.push_back({items[i].prompt, items[i].a, items[i].b});
    auto keep = [&](size_t i, const CompareResult& r) { out[i] = {r.logit_ab, r.logit_ba}; };
    try {
      const auto results = compare(scorer, batch, CompareMode::kBoth);
      for (size_t i = start; i < end; ++i) keep(i, results[i - start]);
    } catch (const Error&) {
      for (size_t i = start; i < end; ++i) {
        try {
          keep(i, compare(scorer, {batch[i - start]}, CompareMode::kBoth).at(0));
        } catch (const Error& e) {
          problems.push_back({items[i].where, e.what()});
          usable[i] = false;
        }
      }
    }
    progress.advance(static_cast<long>(end));
  }
  progress.finish(std::to_string(items.size()) + " prompts scored");
  return out;
}

// Bin edges for a histogram of the scores: symmetric around 0 (0 is an edge), a round bin width, <= 24 bins.
std::vector<double> histogram_edges(const std::vector<double>& scores) {
  double m = 0;
  for (double s : scores) m = std::max(m, std::fabs(s));
  if (m == 0) m = 1;
  const double raw = 2 * m / 24;
  const double decade = std::pow(10.0, std::floor(std::log10(raw)));
  double width = decade * 10;
  for (double f : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (f * decade >= raw) {
      width = f * decade;
      break;
    }
  const int half = static_cast<int>(std::ceil(m / width - 1e-9));
  std::vector<double> edges;
  for (int k = -half; k <= half; ++k) edges.push_back(k * width);
  return edges;
}

OrderedJson histogram_json(const std::vector<double>& scores) {
  const auto edges = histogram_edges(scores);
  std::vector<long> counts(edges.size() - 1, 0);
  const double width = edges[1] - edges[0];
  for (double s : scores) {
    long bin = static_cast<long>(std::floor((s - edges.front()) / width));
    bin = std::clamp<long>(bin, 0, static_cast<long>(counts.size()) - 1);
    ++counts[static_cast<size_t>(bin)];
  }
  return OrderedJson{{"edges", edges}, {"counts", counts}};
}

OrderedJson listed(const EvalItem& item, const PairLogits& p) {
  return OrderedJson{{"id", item.id},         {"where", item.where},        {"category", item.category},
                     {"prompt", item.prompt}, {"a", item.a},                {"b", item.b},
                     {"logit_ab", p.logit_ab}, {"logit_ba", p.logit_ba}, {"score", p.score()}};
}

// The `top` indices with the largest key (ties: input order).
template <typename Key>
std::vector<size_t> top_by(const std::vector<size_t>& candidates, size_t top, Key key) {
  std::vector<size_t> v = candidates;
  std::stable_sort(v.begin(), v.end(), [&](size_t x, size_t y) { return key(x) > key(y); });
  if (v.size() > top) v.resize(top);
  return v;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot open for writing");
  out << text;
  out.flush();
  if (!out) throw Error(path + ": writing failed");
}

}  // namespace

std::string percent(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", 100 * x);
  return buf;
}

nlohmann::ordered_json run_eval(Scorer& scorer, const EvalOptions& o) {
  if (o.stats.bootstrap < 1) throw Error("--bootstrap must be at least 1");
  if (!(o.stats.confidence > 0 && o.stats.confidence < 1)) throw Error("--confidence must be in (0, 1)");
  if (!(o.stats.tie_threshold >= 0)) throw Error("--tie-threshold must be >= 0");
  EvalInput input = o.input.empty() ? read_response_files(o.file_a, o.file_b, o.max_line_bytes)
                                    : read_pair_file(o.input, o.max_line_bytes);
  std::vector<bool> usable;
  const auto logits = score_items(scorer, input.items, std::max<size_t>(1, o.chunk), o.quiet, input.problems, usable);
  if (!input.problems.empty() && !o.skip_bad) {
    std::string message = std::to_string(input.problems.size()) + " unusable input line(s) (--skip-bad-lines "
                          "reports them and evaluates the rest):";
    for (size_t k = 0; k < input.problems.size() && k < 10; ++k)
      message += "\n  " + input.problems[k].where + ": " + input.problems[k].message;
    throw Error(message);
  }

  std::vector<size_t> used;
  std::map<std::string, std::vector<size_t>> by_category;
  bool any_category = false;
  for (size_t i = 0; i < input.items.size(); ++i) {
    if (!usable[i]) continue;
    used.push_back(i);
    by_category[input.items[i].category].push_back(i);
    any_category |= !input.items[i].category.empty();
  }
  auto logits_of = [&](const std::vector<size_t>& idx) {
    std::vector<PairLogits> v;
    for (size_t i : idx) v.push_back(logits[i]);
    return v;
  };

  OrderedJson report;
  report["systems"] = OrderedJson{{"a", o.name_a}, {"b", o.name_b}};
  report["model"] = o.model_label;
  report["settings"] = OrderedJson{{"score", "logit(A, B) - logit(B, A)"},
                                   {"tie_threshold", o.stats.tie_threshold},
                                   {"bootstrap", o.stats.bootstrap},
                                   {"seed", o.stats.seed},
                                   {"confidence", o.stats.confidence}};
  report["overall"] = summary_json(summarize(logits_of(used), o.stats));
  report["categories"] = OrderedJson::array();
  if (any_category)
    for (const auto& [category, idx] : by_category) {
      OrderedJson c{{"category", category.empty() ? "(none)" : category}};
      const OrderedJson summary = summary_json(summarize(logits_of(idx), o.stats));  // a named object: items()
      for (auto& [k, v] : summary.items()) c[k] = v;                                  // refers into it
      report["categories"].push_back(std::move(c));
    }
  std::vector<double> scores;
  for (size_t i : used) scores.push_back(logits[i].score());
  report["histogram"] = histogram_json(scores);

  std::vector<size_t> inconsistent;
  for (size_t i : used)
    if (!logits[i].position_consistent()) inconsistent.push_back(i);
  auto list = [&](const std::vector<size_t>& idx) {
    OrderedJson arr = OrderedJson::array();
    for (size_t i : idx) arr.push_back(listed(input.items[i], logits[i]));
    return arr;
  };
  // The two passes contradict each other, each of them confidently: min(|ab|, |ba|) is large.
  report["most_confident_position_disagreements"] = list(top_by(inconsistent, o.top, [&](size_t i) {
    return std::min(std::fabs(logits[i].logit_ab), std::fabs(logits[i].logit_ba));
  }));
  std::vector<size_t> wins_a, wins_b;
  for (size_t i : used) {
    const Outcome outcome = outcome_of(logits[i].score(), o.stats.tie_threshold);
    if (outcome == Outcome::kWin) wins_a.push_back(i);
    if (outcome == Outcome::kLoss) wins_b.push_back(i);
  }
  report["largest_wins_a"] = list(top_by(wins_a, o.top, [&](size_t i) { return logits[i].score(); }));
  report["largest_wins_b"] = list(top_by(wins_b, o.top, [&](size_t i) { return -logits[i].score(); }));

  report["skipped"] = OrderedJson::array();
  for (const auto& p : input.problems) report["skipped"].push_back(OrderedJson{{"where", p.where}, {"error", p.message}});
  report["pairs"] = OrderedJson::array();
  for (size_t i : used) {
    const PairLogits& p = logits[i];
    report["pairs"].push_back(OrderedJson{{"id", input.items[i].id},
                                          {"category", input.items[i].category},
                                          {"logit_ab", p.logit_ab},
                                          {"logit_ba", p.logit_ba},
                                          {"score", p.score()},
                                          {"outcome", outcome_name(outcome_of(p.score(), o.stats.tie_threshold))},
                                          {"position_consistent", p.position_consistent()}});
  }

  if (!o.json_out.empty()) write_file(o.json_out, report.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  if (!o.html_out.empty()) write_file(o.html_out, html_report(report));
  return report;
}

std::string text_summary(const nlohmann::ordered_json& r) {
  std::ostringstream out;
  const auto& st = r["settings"];
  out << "A = " << r["systems"]["a"].get<std::string>() << ", B = " << r["systems"]["b"].get<std::string>()
      << "; score = logit(A,B) - logit(B,A), tie when |score| <= " << st["tie_threshold"].get<double>() << "; "
      << percent(st["confidence"].get<double>()) << " % bootstrap interval (" << st["bootstrap"].get<int>()
      << " resamples, seed " << st["seed"].get<uint64_t>() << ")\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-20s %6s %6s %6s %6s %11s %17s %12s\n", "", "n", "win", "tie", "loss",
                "win rate A", "interval", "consistency");
  out << line;
  auto row = [&](const std::string& label, const nlohmann::ordered_json& s) {
    const std::string interval = "[" + percent(s["ci_low"].get<double>()) + ", " + percent(s["ci_high"].get<double>()) + "]";
    std::snprintf(line, sizeof line, "%-20.20s %6ld %6ld %6ld %6ld %9s %% %17s %10s %%\n", label.c_str(),
                  s["n"].get<long>(), s["wins"].get<long>(), s["ties"].get<long>(), s["losses"].get<long>(),
                  percent(s["win_rate"].get<double>()).c_str(), interval.c_str(),
                  percent(s["position_consistency"].get<double>()).c_str());
    out << line;
  };
  row("overall", r["overall"]);
  for (const auto& c : r["categories"]) row(c["category"].get<std::string>(), c);
  if (!r["skipped"].empty()) out << r["skipped"].size() << " input line(s) skipped (listed in the JSON report)\n";
  return out.str();
}

}  // namespace pairrm::eval
