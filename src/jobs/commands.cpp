#include "jobs/commands.h"

#include <set>
#include <stdexcept>

namespace pairrm::jobs {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& message) { throw std::invalid_argument(message); }


std::vector<std::string> text_list(const json& j, const char* key, size_t max_items) {
  auto it = j.find(key);
  if (it == j.end()) bad(std::string("missing field '") + key + "'");
  if (!it->is_array()) bad(std::string("field '") + key + "' must be a list of strings");
  if (it->empty()) bad(std::string("field '") + key + "' is empty");
  if (it->size() > max_items)
    bad(std::string("field '") + key + "' has " + std::to_string(it->size()) + " entries, over the limit of " +
        std::to_string(max_items) + " (--max-candidates)");
  std::vector<std::string> out;
  for (const auto& e : *it) {
    if (!e.is_string()) bad(std::string("field '") + key + "' must be a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

Conversation conversation_field(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) bad(std::string("missing field '") + key + "'");
  if (!it->is_array()) bad(std::string("field '") + key + "' must be a list of {\"role\", \"content\"} turns");
  Conversation conv;
  for (const auto& t : *it) {
    if (!t.is_object() || !t.contains("role") || !t.contains("content") || !t["role"].is_string() ||
        !t["content"].is_string())
      bad(std::string("field '") + key + "': every turn must be {\"role\": str, \"content\": str}");
    conv.push_back({t["role"].get<std::string>(), t["content"].get<std::string>()});
  }
  return conv;
}

OrderedJson compare_record(const CompareResult& r) {
  OrderedJson o;
  if (r.has_ab) o["logit_ab"] = r.logit_ab;
  if (r.has_ba) o["logit_ba"] = r.logit_ba;
  o["score"] = r.score;
  o["a_better"] = r.a_better;
  return o;
}

std::vector<OrderedJson> compare_records(const std::vector<CompareResult>& results) {
  std::vector<OrderedJson> out;
  for (const auto& r : results) out.push_back(compare_record(r));
  return out;
}

struct RankItem {
  RankInput input;
  std::string reference;  // "given" mode
};

}  // namespace

std::unique_ptr<JsonlJob> make_compare_job(CompareMode mode) {
  return std::make_unique<TypedJob<Comparison>>(
      [](const json& j) { return Comparison{string_field(j, "source"), string_field(j, "candidate_a"), string_field(j, "candidate_b")}; },
      [mode](Scorer& ctx, const std::vector<Comparison>& items) { return compare_records(pairrm::compare(ctx, items, mode)); });
}

std::unique_ptr<JsonlJob> make_rank_job(const std::optional<std::string>& reference_mode, InputLimits limits) {
  const bool given = reference_mode && *reference_mode == "given";
  std::optional<ReferenceMode> mode;
  if (reference_mode && !given) mode = parse_reference_mode(*reference_mode);
  return std::make_unique<TypedJob<RankItem>>(
      [given, limits](const json& j) {
        RankItem item{{string_field(j, "source"), text_list(j, "candidates", limits.max_candidates)}, ""};
        if (given) item.reference = string_field(j, "reference");
        return item;
      },
      [given, mode](Scorer& ctx, const std::vector<RankItem>& items) {
        std::vector<RankInput> inputs;
        std::vector<std::string> refs;
        for (const auto& it : items) {
          inputs.push_back(it.input);
          refs.push_back(it.reference);
        }
        std::vector<OrderedJson> out;
        if (!given && !mode) {
          for (const auto& r : rank(ctx, inputs)) out.push_back(OrderedJson{{"scores", r.scores}, {"ranks", r.ranks}});
        } else {
          for (const auto& r : rank_with_ref(ctx, inputs, mode.value_or(ReferenceMode::kFirst), given ? &refs : nullptr))
            out.push_back(OrderedJson{{"scores", r.scores}, {"ranks", r.ranks}, {"reference", r.reference}});
        }
        return out;
      });
}

std::unique_ptr<JsonlJob> make_best_of_n_job(BestOfNOptions options, bool return_all, InputLimits limits) {
  return std::make_unique<TypedJob<RankInput>>(
      [limits](const json& j) { return RankInput{string_field(j, "source"), text_list(j, "candidates", limits.max_candidates)}; },
      [options, return_all](Scorer& ctx, const std::vector<RankInput>& items) {
        const std::string kind = options.worst ? "worst" : "best";
        std::vector<OrderedJson> out;
        const auto results = best_of_n(ctx, items, options);
        for (size_t k = 0; k < items.size(); ++k) {
          const auto& r = results[k];
          OrderedJson o;
          o[kind + "_index"] = r.index;
          o[kind] = items[k].candidates[r.index];
          if (return_all) {
            if (options.method == SelectionMethod::kBubble) {
              o["order"] = r.order;              // the visiting order
              o["pass_scores"] = r.pass_scores;  // s of each step
            } else {
              o["scores"] = r.ranking.scores;
              o["ranks"] = r.ranking.ranks;
            }
          }
          out.push_back(std::move(o));
        }
        return out;
      });
}

std::unique_ptr<JsonlJob> make_conversations_job(CompareMode mode) {
  return std::make_unique<TypedJob<Comparison>>(
      [](const json& j) {
        return conversation_comparison(conversation_field(j, "conversation_a"), conversation_field(j, "conversation_b"));
      },
      [mode](Scorer& ctx, const std::vector<Comparison>& items) { return compare_records(pairrm::compare(ctx, items, mode)); });
}

std::unique_ptr<JsonlJob> make_dpo_job(InputLimits limits) {
  return std::make_unique<TypedJob<RankInput>>(
      [limits](const json& j) { return RankInput{string_field(j, "prompt"), text_list(j, "responses", limits.max_candidates)}; },
      [](Scorer& ctx, const std::vector<RankInput>& items) {
        // Only prompts with two distinct responses need the network.
        std::vector<RankInput> to_rank;
        std::vector<size_t> where(items.size(), SIZE_MAX);
        for (size_t k = 0; k < items.size(); ++k)
          if (std::set<std::string>(items[k].candidates.begin(), items[k].candidates.end()).size() >= 2) {
            where[k] = to_rank.size();
            to_rank.push_back(items[k]);
          }
        const auto ranked = rank(ctx, to_rank);
        std::vector<OrderedJson> out;
        for (size_t k = 0; k < items.size(); ++k) {
          OrderedJson o{{"prompt", items[k].source}};
          if (where[k] == SIZE_MAX) {
            o["skipped"] = "fewer than 2 distinct responses";
            out.push_back(std::move(o));
            continue;
          }
          const RankResult& r = ranked[where[k]];
          size_t best = 0, worst = 0;  // lowest index on ties
          for (size_t i = 1; i < r.ranks.size(); ++i) {
            if (r.ranks[i] < r.ranks[best]) best = i;
            if (r.ranks[i] > r.ranks[worst]) worst = i;
          }
          if (r.ranks[best] == r.ranks[worst]) {
            o["skipped"] = "all responses score the same";
          } else {
            o["chosen"] = items[k].candidates[best];
            o["rejected"] = items[k].candidates[worst];
            o["chosen_score"] = r.scores[best];
            o["rejected_score"] = r.scores[worst];
          }
          out.push_back(std::move(o));
        }
        return out;
      });
}

namespace {

std::unique_ptr<JsonlJob> make_selection_job(const JobSpec& spec) {
  if (spec.method != "bubble" && spec.method != "full") bad("method must be 'bubble' or 'full'");
  BestOfNOptions o;
  o.worst = spec.command == "worst-of-n";
  o.method = spec.method == "full" ? SelectionMethod::kFull : SelectionMethod::kBubble;
  o.seed = spec.seed;
  return make_best_of_n_job(o, spec.return_all, spec.limits);
}

// Every JSONL job by its command name: the one table the CLI, the server, the Python module and Dask reach
// the jobs through.
using JobFactory = std::unique_ptr<JsonlJob> (*)(const JobSpec&);
const std::pair<const char*, JobFactory> kJobs[] = {
    {"compare", [](const JobSpec& s) { return make_compare_job(parse_compare_mode(s.mode)); }},
    {"rank", [](const JobSpec& s) { return make_rank_job(s.with_ref, s.limits); }},
    {"best-of-n", make_selection_job},
    {"worst-of-n", make_selection_job},
    {"compare-conversations", [](const JobSpec& s) { return make_conversations_job(parse_compare_mode(s.mode)); }},
    {"dpo", [](const JobSpec& s) { return make_dpo_job(s.limits); }},
};

}  // namespace

std::unique_ptr<JsonlJob> make_job(const JobSpec& spec) {
  std::string names;
  for (const auto& [name, factory] : kJobs) {
    if (spec.command == name) return factory(spec);
    names += std::string(names.empty() ? "" : ", ") + name;
  }
  bad("unknown command '" + spec.command + "' (" + names + ")");
}

}  // namespace pairrm::jobs
