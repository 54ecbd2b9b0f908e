// OpenRLHF's remote reward model: /get_reward and / (openrlhf/utils/agent.py posts, openrlhf/cli/serve_rm.py
// answers), pairrm's own error body.
#include "server/chat_messages.h"
#include "server/endpoints.h"
#include "server/request_fields.h"

namespace pairrm::server {
namespace {

using nlohmann::json;
using jobs::OrderedJson;

// OpenRLHF's query is the decoded prompt + response: the response is what follows the prompt. When the
// decoded text does not start with the prompt exactly (a tokenizer round trip changed it, or the prompt was
// cut), what follows their longest common prefix (at a UTF-8 character boundary) is taken.
std::string response_of(const std::string& query, const std::string& prompt, bool* matched) {
  *matched = query.compare(0, prompt.size(), prompt) == 0;
  if (*matched) return query.substr(prompt.size());
  size_t n = 0;
  while (n < query.size() && n < prompt.size() && query[n] == prompt[n]) ++n;
  while (n > 0 && n < query.size() && (static_cast<unsigned char>(query[n]) & 0xC0) == 0x80) --n;
  return query.substr(n);
}

// POST / and /invocations are also TEI's and SageMaker's generic paths: the body says which protocol it is
// (TEI routes them by model type, vLLM's /invocations tries the request shapes in turn). "": OpenRLHF's.
std::string generic_path_route(const json& body) {
  if (!body.is_object()) return "";
  auto has = [&](const char* key) { return body.contains(key); };
  if (has("inputs")) return "/predict";                                    // TEI predict
  if (has("query") && has("texts")) return "/rerank";                      // TEI rerank
  if (has("query") && has("documents")) return "/v1/rerank";               // vLLM/Jina/Cohere rerank
  if (has("input") || has("messages")) return "/classify";                 // vLLM classify
  if ((has("text_1") && has("text_2")) || (has("data_1") && has("data_2"))) return "/score";  // vLLM score
  return "";  // OpenRLHF: {query: [...], prompts: [...]}, and its errors for anything else
}

}  // namespace

void Endpoints::add_openrlhf_routes() {
  // OpenRLHF posts to the URL it is given (--remote_rm_url): its reference server's path, or the bare URL.
  add("/get_reward", [this](const json& body, Scorer& s) { return openrlhf_reward(body, s); });
  for (const char* path : {"/", "/invocations"})
    add(path, [this](const json& body, Scorer& s) { return openrlhf_reward(body, s); }, ErrorStyle::kNative,
        generic_path_route);
}

// OpenRLHF's remote reward model (openrlhf/utils/agent.py posts, openrlhf/cli/serve_rm.py answers):
// {query: [prompt + response], prompts: [prompt], labels?: [label]} -> {rewards, scores, extra_logs}, one
// value per query. reward = the response's pointwise score against its label (else the policy's
// reference), scores = sigmoid(reward) (OpenRLHF's 0..1 score for dynamic filtering). Under
// --strip-chat-template a query with the template's markup is read as its turns: the last assistant turn is
// the response, the turns before it the prompt (one user turn: a prompt and its answer, else the exchange
// as compare_conversations builds it); a query without markup loses its end-of-text strings only.
OrderedJson Endpoints::openrlhf_reward(const json& body, Scorer& scorer) const {
  require_object(body);
  const std::vector<std::string> queries = strings(body, "query");
  const std::vector<std::string> prompts = strings(body, "prompts");
  if (prompts.size() != queries.size())
    throw std::invalid_argument(std::to_string(queries.size()) + " queries but " + std::to_string(prompts.size()) +
                                " prompts: give one prompt per query");
  check_batch(queries.size(), options_.max_items, "--max-items");
  const auto labels = references(body, "labels", queries.size());
  // Queries sharing a prompt form one group, so that "--reference others" ranks a prompt's samples
  // against each other (GRPO-style); with a label or a fixed reference the grouping changes nothing.
  PointwiseBatch batch;
  OrderedJson matched = OrderedJson::array();
  for (size_t q = 0; q < queries.size(); ++q) {
    bool exact = false;
    std::string response = response_of(queries[q], prompts[q], &exact);
    matched.push_back(exact ? 1.0 : 0.0);
    const std::optional<std::string> label = labels.empty() ? std::nullopt : labels[q];
    std::optional<ChatAnswer> turns;
    try {
      turns = templated_answer(queries[q], chat_template_);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("query[" + std::to_string(q) + "]: " + e.what());
    }
    if (turns) add_answer(batch, *turns, label, policy_.text);
    else batch.add(prompts[q], strip_end_of_text(response, chat_template_), label);
  }
  // Under "--reference others" a group is ranked all-pairs: bounded like any ranking (--max-candidates).
  if (policy_.others)
    for (const PointwiseGroup& g : batch.groups()) check_batch(g.texts.size(), options_.max_candidates, "--max-candidates");
  OrderedJson rewards = OrderedJson::array(), scores = OrderedJson::array();
  for (double r : batch.in_order(pointwise_scores(scorer, batch.groups(), policy_))) {
    rewards.push_back(r);
    scores.push_back(sigmoid(r));
  }
  return OrderedJson{{"rewards", std::move(rewards)},
                     {"scores", std::move(scores)},
                     {"extra_logs", {{"pairrm_prompt_match", std::move(matched)}}}};
}

}  // namespace pairrm::server
