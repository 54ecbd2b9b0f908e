// vLLM: /score and /v1/score (vllm/entrypoints/pooling/score), /classify (pooling/classify), /pooling
// (pooling/pooling), and GET /v1/models (openai/models), /version (serve/instrumentator/basic.py), /ping
// (serve/sagemaker: /health's answer); vLLM's error shape. PairRM is served as vLLM serves a one-label
// classifier: probs = [sigmoid(pointwise)], label LABEL_0.
#include <cstdint>
#include <cstring>
#include <ctime>

#include "server/chat_messages.h"
#include "server/endpoints.h"
#include "server/request_fields.h"
#include "server/vllm_fields.h"

namespace pairrm::server {

using nlohmann::json;
using jobs::OrderedJson;

namespace {

// UsageInfo as vLLM dumps it in full.
OrderedJson usage(long tokens) {
  return {{"prompt_tokens", tokens}, {"total_tokens", tokens}, {"completion_tokens", 0}, {"prompt_tokens_details", nullptr}};
}

// encoding_format "base64": the vector's float32 bytes, little-endian (x86's native order), in base64.
std::string base64_float32(const std::vector<double>& values) {
  std::string bytes;
  for (double v : values) {
    const float f = static_cast<float>(v);
    char b[4];
    std::memcpy(b, &f, 4);
    bytes.append(b, 4);
  }
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t left = bytes.size() - i;  // 1, 2, or 3 and more
    const uint32_t n = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16 |
                       (left > 1 ? static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8 : 0) |
                       (left > 2 ? static_cast<uint8_t>(bytes[i + 2]) : 0);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += left > 1 ? kAlphabet[(n >> 6) & 63] : '=';
    out += left > 2 ? kAlphabet[n & 63] : '=';
  }
  return out;
}

// The pooling parameters current vLLM refuses before anything else (pooling/base/protocol.py
// reject_removed_pooling_parameters).
void reject_removed_parameters(const json& body) {
  if (body.contains("normalize"))
    throw FieldError("normalize", "Parameter `normalize` was removed; use `use_activation` instead.");
  const json* task = present(body, "task");
  if (task && *task == "score") throw FieldError("task", "`score` task was removed; use `classify` instead.");
  if (task && *task == "encode")
    throw FieldError("task", "`encode` task was removed; use `token_embed` or `token_classify` instead.");
}

}  // namespace

bool use_activation(const json& body) {
  for (const char* key : {"softmax", "activation", "use_activation"})
    if (present(body, key)) return optional_bool(body, key, true);
  return true;
}

Truncation vllm_truncation(const json& body, const ModelInfo& info) {
  Truncation t;
  const auto k = optional_int(body, "truncate_prompt_tokens");
  if (!k) return t;
  if (*k < -1) throw FieldError("truncate_prompt_tokens", "truncate_prompt_tokens: Input should be greater than or equal to -1");
  t.keep_end = true;
  if (*k == -1) return t;
  const long max_len = longest_row_tokens(info);
  if (*k > max_len)
    throw std::invalid_argument("truncate_prompt_tokens value (" + std::to_string(*k) + ") is greater than max_model_len (" +
                                std::to_string(max_len) + "). Please, select a smaller truncation size.");
  if (*k < 9)
    throw std::invalid_argument("truncate_prompt_tokens value (" + std::to_string(*k) +
                                ") is below the 9 tokens a PairRM comparison needs ([CLS], prefix and [SEP] per segment)");
  t.max_row_tokens = static_cast<int>(*k);
  return t;
}

void Endpoints::add_vllm_routes() {
  add("/classify", [this](const json& body, Scorer& s) { return vllm_classify(body, s); }, ErrorStyle::kVllm);
  add("/pooling", [this](const json& body, Scorer& s) { return vllm_pooling(body, s); }, ErrorStyle::kVllm);
  add_get("/v1/models", [this] { return Reply{200, dump(vllm_models())}; });
  add_get("/version", [] { return Reply{200, dump(OrderedJson{{"version", version()}})}; });
  add_get("/ping", [] { return Reply{200, ""}; });  // /health's status, no body: vLLM's and TEI's answer
  for (const char* path : {"/score", "/v1/score"})
    add(path, [this](const json& body, Scorer& s) { return vllm_score(body, s); }, ErrorStyle::kVllm);
}

// vLLM's /score and /v1/score (entrypoints/pooling/score: ScoreRequest, ScoreResponse): text_1 the prompt(s),
// text_2 the answer(s), 1:1, 1:N or N:N -> {id, object: "list", created, model, data: [{index, object:
// "score", score}], usage}. score = sigmoid(pointwise) unless use_activation is false.
OrderedJson Endpoints::vllm_score(const json& body, Scorer& scorer) const {
  require_object(body);
  // Newer vLLM also names the pair queries/documents, queries/items or data_1/data_2.
  std::pair<const char*, const char*> keys{"text_1", "text_2"};
  for (auto k : {std::pair{"queries", "documents"}, std::pair{"queries", "items"}, std::pair{"data_1", "data_2"}})
    if (present(body, k.first) && present(body, k.second)) keys = k;
  const std::vector<std::string> t1 = strings(body, keys.first);
  const std::vector<std::string> t2 = strings(body, keys.second);
  const std::string model = model_name(body);
  const bool activation = use_activation(body);
  const Truncation t = vllm_truncation(body, model_->info());
  // vLLM's _validate_score_input_lens, in its order.
  if (t1.size() > 1 && t1.size() != t2.size()) throw std::invalid_argument("Input lengths must be either 1:1, 1:N or N:N");
  if (t1.empty()) throw EmptyInput("At least one text element must be given");
  if (t2.empty()) throw EmptyInput("At least one text_pair element must be given");
  check_batch(t2.size(), t1.size() == 1 ? options_.max_candidates : options_.max_items,
              t1.size() == 1 ? "--max-candidates" : "--max-items");
  const auto refs = references(body, "reference", t2.size());
  std::vector<PointwiseGroup> groups;
  if (t1.size() == 1) {
    groups.push_back({t1[0], t2, refs});
  } else {  // N:N: each pair alone
    for (size_t i = 0; i < t2.size(); ++i) {
      groups.push_back({t1[i], {t2[i]}, {}});
      if (!refs.empty()) groups.back().references.push_back(refs[i]);
    }
  }
  const PointwiseScores r = pointwise_scores(scorer, groups, policy_, t);
  OrderedJson data = OrderedJson::array();
  for (const auto& g : r.scores)
    for (double s : g) data.push_back({{"index", data.size()}, {"object", "score"}, {"score", activation ? sigmoid(s) : s}});
  return OrderedJson{{"id", "score-" + std::to_string(++ids_)},
                     {"object", "list"},
                     {"created", static_cast<long>(std::time(nullptr))},
                     {"model", model},
                     {"data", std::move(data)},
                     {"usage",
                      {{"prompt_tokens", r.tokens}, {"total_tokens", r.tokens}, {"completion_tokens", 0},
                       {"prompt_tokens_details", nullptr}}}};
}

}  // namespace pairrm::server

namespace pairrm::server {

using nlohmann::json;
using jobs::OrderedJson;

// /classify and /pooling (ClassificationCompletionRequest | ClassificationChatRequest): `messages`, one
// conversation whose last message is the answer (server/chat_messages.h); or `input`, a text or a list of
// texts, each an answer with no prompt, scored under the server's --reference policy (the texts of one
// request together under "others"), or, under --strip-chat-template, a templated text read as its turns
// (as OpenRLHF's queries are). Our `reference` field gives the reference answer instead.
std::vector<double> Endpoints::classify_scores(const json& body, Scorer& scorer, long* tokens) const {
  require_object(body);
  reject_removed_parameters(body);
  const Truncation t = vllm_truncation(body, model_->info());
  PointwiseBatch batch;
  if (present(body, "messages")) {
    const auto refs = references(body, "reference", 1);
    batch.add_alone(chat_answer(body["messages"]).group(refs.empty() ? std::nullopt : refs[0], policy_.text));
  } else {
    const json* input = present(body, "input");
    if (!input) throw FieldError("input", "field 'input' (or 'messages') is required");
    const bool token_ids = input->is_array() && !input->empty() && (input->at(0).is_number() || input->at(0).is_array());
    if (token_ids) throw std::invalid_argument("token id inputs cannot be scored: PairRM needs the text (give input as text)");
    const std::vector<std::string> texts = strings(body, "input");
    if (texts.empty()) throw EmptyInput("You must pass at least one prompt");
    check_batch(texts.size(), policy_.others ? options_.max_candidates : options_.max_items,
                policy_.others ? "--max-candidates" : "--max-items");
    const auto refs = references(body, "reference", texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::optional<std::string> ref = refs.empty() ? std::nullopt : refs[i];
      // Under --strip-chat-template a templated text (verl's prompt + response) carries its own prompt.
      std::optional<ChatAnswer> turns;
      try {
        turns = templated_answer(texts[i], chat_template_);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("input[" + std::to_string(i) + "]: " + e.what());
      }
      if (turns) add_answer(batch, *turns, ref, policy_.text);
      else batch.add("", strip_end_of_text(texts[i], chat_template_), ref);
    }
  }
  const PointwiseScores r = pointwise_scores(scorer, batch.groups(), policy_, t);
  *tokens = r.tokens;
  std::vector<double> scores = batch.in_order(r);
  if (use_activation(body))
    for (double& s : scores) s = sigmoid(s);
  return scores;
}

// vLLM's ClassificationResponse: {id, object: "list", created, model, data: [{index, label, probs,
// num_classes}], usage}, probs = [score] (one label).
OrderedJson Endpoints::vllm_classify(const json& body, Scorer& scorer) const {
  long tokens = 0;
  const std::vector<double> scores = classify_scores(body, scorer, &tokens);
  const std::string model = model_name(body);
  OrderedJson data = OrderedJson::array();
  for (double s : scores)
    data.push_back({{"index", data.size()}, {"label", kOneLabel}, {"probs", {s}}, {"num_classes", 1}});
  return OrderedJson{{"id", "classify-" + std::to_string(++ids_)}, {"object", "list"},
                     {"created", static_cast<long>(std::time(nullptr))}, {"model", model},
                     {"data", std::move(data)}, {"usage", usage(tokens)}};
}

// vLLM's PoolingResponse for a classify model: {id, object: "list", created, model, data: [{index, object:
// "pooling", data: [score] | base64}], usage}. task: null or "classify" (the only pooling task served);
// encoding_format: "float" or "base64" (float32); dimensions: refused as vLLM refuses it.
OrderedJson Endpoints::vllm_pooling(const json& body, Scorer& scorer) const {
  require_object(body);
  reject_removed_parameters(body);
  if (const json* task = present(body, "task"); task && *task != "classify")
    throw FieldError("task", "Unsupported task: '" + (task->is_string() ? task->get<std::string>() : task->dump()) +
                                 "' Supported tasks: ['classify']");
  if (present(body, "dimensions")) throw FieldError("dimensions", "dimensions is currently not supported");
  const json* format = present(body, "encoding_format");
  const std::string encoding = format && format->is_string() ? format->get<std::string>() : format ? "?" : "float";
  if (encoding != "float" && encoding != "base64")
    throw FieldError("encoding_format", "encoding_format must be 'float' or 'base64' here (the binary formats are not served)");
  if (const json* dtype = present(body, "embed_dtype"); dtype && *dtype != "float32")
    throw FieldError("embed_dtype", "embed_dtype must be 'float32' here");
  long tokens = 0;
  const std::vector<double> scores = classify_scores(body, scorer, &tokens);
  const std::string model = model_name(body);
  OrderedJson data = OrderedJson::array();
  for (double s : scores) {
    OrderedJson item{{"index", data.size()}, {"object", "pooling"}};
    if (encoding == "base64") item["data"] = base64_float32({s});
    else item["data"] = {s};
    data.push_back(std::move(item));
  }
  return OrderedJson{{"id", "pooling-" + std::to_string(++ids_)}, {"object", "list"},
                     {"created", static_cast<long>(std::time(nullptr))}, {"model", model},
                     {"data", std::move(data)}, {"usage", usage(tokens)}};
}

// GET /v1/models: vLLM's ModelList with the one ModelCard it serves (openai/models/serving.py).
OrderedJson Endpoints::vllm_models() const {
  const long now = static_cast<long>(std::time(nullptr));
  const ModelInfo& i = model_->info();
  const OrderedJson permission{{"id", "modelperm-pairrm"}, {"object", "model_permission"}, {"created", now},
                               {"allow_create_engine", false}, {"allow_sampling", true}, {"allow_logprobs", true},
                               {"allow_search_indices", false}, {"allow_view", true}, {"allow_fine_tuning", false},
                               {"organization", "*"}, {"group", nullptr}, {"is_blocking", false}};
  const OrderedJson card{{"id", served_model_name()}, {"object", "model"}, {"created", now}, {"owned_by", "pairrm"},
                         {"root", i.directory}, {"parent", nullptr},
                         {"max_model_len", longest_row_tokens(i)},
                         {"permission", OrderedJson::array({permission})}};
  return OrderedJson{{"object", "list"}, {"data", OrderedJson::array({card})}};
}

}  // namespace pairrm::server
