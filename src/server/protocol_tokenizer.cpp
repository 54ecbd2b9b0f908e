// The tokenizer endpoints clients budget truncation with, no model pass: TEI's /tokenize and /decode
// (router/src/http/server.rs tokenize/decode, types.rs TokenizeRequest/DecodeRequest/SimpleToken) and vLLM's
// /tokenize and /detokenize (entrypoints/serve/tokenize: protocol.py, serving.py). Both call theirs
// /tokenize; the body tells them apart (`inputs`: TEI's; `prompt` or `messages`: vLLM's), and each answers
// in its own error shape. The tokens are those PairRM scores with (Model::tokenize: the fast tokenizer's ids).
#include <algorithm>

#include "server/endpoints.h"
#include "server/request_fields.h"

namespace pairrm::server {
namespace {

using nlohmann::json;
using jobs::OrderedJson;

// TEI's inputs of /tokenize (TokenizeInput: a string or a list of strings), each non-empty.
std::vector<std::string> tei_texts(const json& body, bool* batch) {
  const json* inputs = present(body, "inputs");
  if (!inputs) throw FieldError("inputs", "missing field `inputs`");
  *batch = inputs->is_array();
  if (!*batch && !inputs->is_string())
    throw FieldError("inputs", "inputs: data did not match any variant of untagged enum TokenizeInput");
  std::vector<std::string> texts = strings(body, "inputs");
  if (*batch && texts.empty()) throw EmptyInput("`inputs` cannot be empty");
  for (const std::string& t : texts)
    if (t.empty()) throw EmptyInput("Input validation error: `inputs` cannot be empty");
  return texts;
}

// TEI's ids of /decode (InputIds: [u32] or [[u32]]), each list non-empty.
std::vector<std::vector<int32_t>> tei_ids(const json& body, bool* batch) {
  const json* ids = present(body, "ids");
  if (!ids) throw FieldError("ids", "missing field `ids`");
  const char* mismatch = "ids: data did not match any variant of untagged enum InputIds";
  if (!ids->is_array()) throw FieldError("ids", mismatch);
  *batch = !ids->empty() && ids->at(0).is_array();
  auto one = [&](const json& list) {
    if (!list.is_array()) throw FieldError("ids", mismatch);
    std::vector<int32_t> out;
    for (const json& v : list) {
      // u32: anything else fails to deserialise; ids past the vocabulary are skipped by decode, as
      // tokenizers does, so an id past int32 (never in the vocabulary) is dropped here.
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 0xFFFFFFFFLL) throw FieldError("ids", mismatch);
      if (v.get<int64_t>() <= INT32_MAX) out.push_back(static_cast<int32_t>(v.get<int64_t>()));
      else out.push_back(-1);
    }
    if (list.empty()) throw EmptyInput("Input validation error: `input_ids` cannot be empty");
    return out;
  };
  std::vector<std::vector<int32_t>> out;
  if (*batch)
    for (const json& list : *ids) out.push_back(one(list));
  else
    out.push_back(one(*ids));
  return out;
}

// transformers' clean_up_tokenization (PairRM's tokenizer_config sets clean_up_tokenization_spaces, so
// its decode(), which vLLM's /detokenize calls, applies it): the spaces before punctuation and English
// contractions go.
std::string clean_up_tokenization(std::string s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
      {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    const std::string f = from, t = to;
    std::string out;
    for (size_t pos = 0;;) {
      const size_t hit = s.find(f, pos);
      out.append(s, pos, hit == std::string::npos ? std::string::npos : hit - pos);
      if (hit == std::string::npos) break;
      out += t;
      pos = hit + f.size();
    }
    s = std::move(out);
  }
  return s;
}

}  // namespace

void Endpoints::add_tokenizer_routes() {
  add("/tokenize", [this](const json& body, Scorer&) { return vllm_tokenize(body); }, ErrorStyle::kVllm,
      [](const json& body) { return body.is_object() && body.contains("inputs") ? " TEI /tokenize" : ""; });
  add_variant(" TEI /tokenize", [this](const json& body, Scorer&) { return tei_tokenize(body); }, ErrorStyle::kTei);
  add("/detokenize", [this](const json& body, Scorer&) { return vllm_detokenize(body); }, ErrorStyle::kVllm);
  add("/decode", [this](const json& body, Scorer&) { return tei_decode(body); }, ErrorStyle::kTei);
}

// TEI: {inputs, add_special_tokens = true, prompt_name} -> [[{id, text, special, start, stop}, ...], ...], a
// list per input even for one; text = the input's bytes [start, stop) (the tokenizer's offsets), the token's
// own string for the [CLS]/[SEP] added around it (special, no offsets). Never truncated.
OrderedJson Endpoints::tei_tokenize(const json& body) const {
  require_object(body);
  bool batch = false;
  const std::vector<std::string> texts = tei_texts(body, &batch);
  if (batch) check_batch(texts.size(), options_.max_candidates, "--max-candidates");
  if (const json* name = present(body, "prompt_name"))
    throw std::invalid_argument("Input validation error: `prompt_name` is set to `" +
                                (name->is_string() ? name->get<std::string>() : name->dump()) +
                                "` but no prompts were found in the Sentence Transformers configuration");
  const bool specials = optional_bool(body, "add_special_tokens", true);
  OrderedJson out = OrderedJson::array();
  for (const std::string& text : texts) {
    OrderedJson tokens = OrderedJson::array();
    for (const TextToken& t : model_->tokenize(text, specials)) {
      if (t.added)
        tokens.push_back({{"id", t.id}, {"text", model_->token_string(t.id)}, {"special", true}, {"start", nullptr}, {"stop", nullptr}});
      else
        tokens.push_back({{"id", t.id}, {"text", text.substr(t.begin, t.end - t.begin)}, {"special", false},
                          {"start", t.begin}, {"stop", t.end}});
    }
    out.push_back(std::move(tokens));
  }
  return out;
}

// TEI: {ids: [u32] | [[u32]], skip_special_tokens = true} -> [text, ...], a text per list.
OrderedJson Endpoints::tei_decode(const json& body) const {
  require_object(body);
  bool batch = false;
  const auto lists = tei_ids(body, &batch);
  if (batch) check_batch(lists.size(), options_.max_candidates, "--max-candidates");
  const bool skip = optional_bool(body, "skip_special_tokens", true);
  OrderedJson out = OrderedJson::array();
  for (const auto& ids : lists) out.push_back(model_->decode(ids, skip));
  return out;
}

// vLLM: {prompt, add_special_tokens = true, return_token_strs = false, model} -> {count, max_model_len,
// tokens, token_strs (null unless asked)}. The chat form (messages) needs the tokenizer's chat template,
// which PairRM's has none of: vLLM refuses it for such a model with 400, so does this.
OrderedJson Endpoints::vllm_tokenize(const json& body) const {
  require_object(body);
  model_name(body);  // a model that is not a string is a schema error; any name is served
  if (present(body, "messages"))
    throw std::invalid_argument("this model's tokenizer has no chat template (PairRM's has none): send `prompt`");
  const json* prompt = present(body, "prompt");
  if (!prompt) throw FieldError("prompt", "Field required");
  if (!prompt->is_string()) throw FieldError("prompt", "Input should be a valid string");
  const std::vector<TextToken> tokens = model_->tokenize(prompt->get<std::string>(), optional_bool(body, "add_special_tokens", true));
  OrderedJson ids = OrderedJson::array(), strs = nullptr;
  for (const TextToken& t : tokens) ids.push_back(t.id);
  if (optional_bool(body, "return_token_strs", false)) {
    strs = OrderedJson::array();
    for (const TextToken& t : tokens) strs.push_back(model_->token_string(t.id));
  }
  return {{"count", tokens.size()}, {"max_model_len", longest_row_tokens(model_->info())}, {"tokens", ids}, {"token_strs", strs}};
}

// vLLM: {tokens: [int >= 0], model} -> {prompt}: the tokenizer's decode with the special tokens kept.
OrderedJson Endpoints::vllm_detokenize(const json& body) const {
  require_object(body);
  model_name(body);
  const json* tokens = present(body, "tokens");
  if (!tokens) throw FieldError("tokens", "Field required");
  if (!tokens->is_array()) throw FieldError("tokens", "Input should be a valid list");
  std::vector<int32_t> ids;
  for (size_t i = 0; i < tokens->size(); ++i) {
    const json& v = tokens->at(i);
    const std::string place = "tokens." + std::to_string(i);
    if (!v.is_number_integer()) throw FieldError(place, "Input should be a valid integer");
    if (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0)
      throw FieldError(place, "Input should be greater than or equal to 0");
    const uint64_t id = v.get<uint64_t>();
    // vLLM's input processor refuses an id past the vocabulary (v1/engine: "Token id ... is out of vocabulary").
    if (id >= static_cast<uint64_t>(model_->vocab_size()))
      throw std::invalid_argument("Token id " + std::to_string(id) + " is out of vocabulary");
    ids.push_back(static_cast<int32_t>(id));
  }
  return {{"prompt", clean_up_tokenization(model_->decode(ids, false))}};
}

}  // namespace pairrm::server
