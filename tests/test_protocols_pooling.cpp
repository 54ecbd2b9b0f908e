// The reward-model endpoints of vLLM's pooling API (/classify, /pooling), TEI's /predict and /info, model
// discovery (/v1/models, /version, /ping) and the body-routed generic paths (/, /invocations), against the
// real process on the fixture model. Field names, order and error bodies follow the sources named at each
// test (docs/server.md lists them). Every score is checked against one defined elsewhere and tested against
// the PyTorch reference: /rerank's and /compare's pointwise score (bitwise: the same rows are run), and
// /compare_conversations' score for a multi-turn exchange.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "fixtures.h"
#include "protocol_helpers.h"
#include "server_process.h"

namespace pairrm {
namespace {

using nlohmann::json;
using test::ServerProcess;
using namespace protocol_test;

class Pooling : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new ServerProcess(tiny_args({"--max-candidates", "4"})); }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->stop(), 0);
    delete server_;
  }
  // Every (prompt, answer) of the fixture's rank cases: a non-empty list (test::entries), counted.
  static std::vector<std::pair<std::string, std::string>> pairs() {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& rc : test::entries(test::model_text_cases("tiny"), "rank_cases"))
      for (const auto& text : rc["candidates"]) out.emplace_back(rc["source"], text);
    return out;
  }
  static json chat(const std::string& prompt, const std::string& answer) {
    return json::array({{{"role", "user"}, {"content", prompt}}, {{"role", "assistant"}, {"content", answer}}});
  }
  static ServerProcess* server_;
};
ServerProcess* Pooling::server_ = nullptr;

// vLLM's ClassificationResponse and PoolingResponse (pooling/*/protocol.py): these fields, in this order.
const std::vector<std::string> kPoolingKeys = {"id", "object", "created", "model", "data", "usage"};

// vLLM's ClassificationResponse's values.
void expect_classification_shape(const json& body, size_t n) {
  EXPECT_EQ(body.size(), kPoolingKeys.size()) << body.dump();
  EXPECT_EQ(body["id"].get<std::string>().rfind("classify-", 0), 0u) << body.dump();
  EXPECT_EQ(body["object"], "list");
  EXPECT_TRUE(body["created"].is_number_integer());
  ASSERT_EQ(body["data"].size(), n) << body.dump();
  for (size_t i = 0; i < n; ++i) {
    const json& d = body["data"][i];
    EXPECT_EQ(d.size(), 4u) << d.dump();
    EXPECT_EQ(d["index"], i);
    EXPECT_EQ(d["label"], "LABEL_0");
    EXPECT_EQ(d["num_classes"], 1);
    EXPECT_EQ(d["probs"].size(), 1u) << d.dump();
  }
  const json& u = body["usage"];
  EXPECT_EQ(u.size(), 4u) << u.dump();
  EXPECT_GT(u["prompt_tokens"].get<long>(), 0);
  EXPECT_EQ(u["total_tokens"], u["prompt_tokens"]);
  EXPECT_EQ(u["completion_tokens"], 0);
  EXPECT_TRUE(u["prompt_tokens_details"].is_null());
}

TEST_F(Pooling, ClassifyAChatIsTheRerankScoreOfItsPromptAndAnswer) {
  auto c = server_->client();
  const auto all = pairs();
  ASSERT_GE(all.size(), 3u);
  for (const auto& [prompt, answer] : all) {
    SCOPED_TRACE(prompt + " / " + answer);
    const Answer a = call(c, "/classify", json{{"model", "my-rm"}, {"messages", chat(prompt, answer)}});
    ASSERT_EQ(a.status, 200) << a.body.dump();
    expect_classification_shape(a.body, 1);
    EXPECT_EQ(key_order(c, "/classify", json{{"messages", chat(prompt, answer)}}), kPoolingKeys);
    EXPECT_EQ(a.body["model"], "my-rm");  // echoed, as pairrm's other vLLM endpoints do
    // probs = sigmoid(s) by default; [s] with use_activation false (and verl's "activation": false).
    const double s = pointwise(c, prompt, answer);
    EXPECT_EQ(a.body["data"][0]["probs"][0].get<double>(), sigmoid(s));
    const Answer tei = call(c, "/rerank", json{{"query", prompt}, {"texts", {answer}}});
    EXPECT_EQ(a.body["data"][0]["probs"][0], tei.body[0]["score"]);
    for (const char* off : {"use_activation", "activation"}) {
      const Answer raw = call(c, "/classify", json{{"messages", chat(prompt, answer)}, {off, false}});
      ASSERT_EQ(raw.status, 200) << raw.body.dump();
      EXPECT_EQ(raw.body["data"][0]["probs"][0].get<double>(), s) << off;
    }
  }
}

TEST_F(Pooling, ClassifyInputTextsAreAnswersToNoPromptInOrder) {
  auto c = server_->client();
  const std::vector<std::string> texts = {"Paris is the capital of France.", "I don't know.", "Yes."};
  const Answer a = call(c, "/classify", json{{"input", texts}, {"use_activation", false}});
  ASSERT_EQ(a.status, 200) << a.body.dump();
  expect_classification_shape(a.body, texts.size());
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(a.body["data"][i]["probs"][0].get<double>(), pointwise(c, "", texts[i])) << i;
  // One string is one item; our `reference` field replaces the fixed reference.
  const Answer one = call(c, "/classify", json{{"input", texts[0]}, {"reference", texts[1]}, {"use_activation", false}});
  ASSERT_EQ(one.status, 200) << one.body.dump();
  expect_classification_shape(one.body, 1);
  EXPECT_EQ(one.body["data"][0]["probs"][0].get<double>(), pointwise(c, "", texts[0], texts[1]));
}

TEST_F(Pooling, ClassifyALongerExchangeIsCompareConversationsAgainstTheReference) {
  auto c = server_->client();
  const json turns = json::array({{{"role", "user"}, {"content", "Name a prime."}},
                                  {{"role", "assistant"}, {"content", "7"}},
                                  {{"role", "user"}, {"content", "Another one?"}},
                                  {{"role", "assistant"}, {"content", json::array({{{"type", "text"}, {"text", "11"}}})}}});
  const Answer a = call(c, "/classify", json{{"messages", turns}, {"reference", "13"}, {"use_activation", false}});
  ASSERT_EQ(a.status, 200) << a.body.dump();
  expect_classification_shape(a.body, 1);
  auto conversation = [](const std::string& last) {
    return json::array({{{"role", "USER"}, {"content", "Name a prime."}}, {{"role", "ASSISTANT"}, {"content", "7"}},
                        {{"role", "USER"}, {"content", "Another one?"}}, {{"role", "ASSISTANT"}, {"content", last}}});
  };
  const Answer want = call(c, "/compare_conversations", json{{"conversation_a", conversation("11")}, {"conversation_b", conversation("13")}});
  ASSERT_EQ(want.status, 200) << want.body.dump();
  EXPECT_EQ(a.body["data"][0]["probs"][0].get<double>(), want.body["score"].get<double>());
  // A system message goes before the first user turn's text, a line of its own.
  json with_system = turns;
  with_system.insert(with_system.begin(), json{{"role", "system"}, {"content", "Be brief."}});
  const Answer sys = call(c, "/classify", json{{"messages", with_system}, {"reference", "13"}, {"use_activation", false}});
  json conv_a = conversation("11"), conv_b = conversation("13");
  conv_a[0]["content"] = conv_b[0]["content"] = "Be brief.\nName a prime.";
  const Answer want_sys = call(c, "/compare_conversations", json{{"conversation_a", conv_a}, {"conversation_b", conv_b}});
  ASSERT_EQ(sys.status, 200) << sys.body.dump();
  EXPECT_EQ(sys.body["data"][0]["probs"][0].get<double>(), want_sys.body["score"].get<double>());
}

TEST_F(Pooling, ClassifyRefusesWhatItCannotScoreInVllmsShape) {
  auto c = server_->client();
  // The schema's errors: 400 "Bad Request" with the field (vLLM's RequestValidationError handler).
  expect_vllm_error(call(c, "/classify", json{{"model", "m"}}), 400, "Bad Request", "body.input");
  expect_vllm_error(call(c, "/classify", json{{"input", "a"}, {"normalize", true}}), 400, "Bad Request", "body.normalize");
  expect_vllm_error(call(c, "/classify", json{{"input", 5}}), 400, "Bad Request", "body.input");
  expect_vllm_error(call(c, "/classify", json{{"input", {"a", 5}}}), 400, "Bad Request", "body.input");
  // More texts than --max-items (64 by default): 413, as every limit here.
  expect_vllm_error(call(c, "/classify", json{{"input", std::vector<std::string>(65, "a")}}), 413, "Request Entity Too Large");
  // Values the serving code refuses: 400 BadRequestError, no param.
  for (const json& body : {json{{"input", json::array()}},                                   // no prompt
                           json{{"input", {1, 2, 3}}},                                       // token ids
                           json{{"messages", json::array()}},                                // no messages
                           json{{"messages", json::array({{{"role", "user"}, {"content", "q"}}})}},  // no answer
                           json{{"messages", json::array({{{"role", "assistant"}, {"content", "a"}}})}},  // no user turn
                           json{{"messages", chat("q", "a")}, {"truncate_prompt_tokens", 100000}}})
    expect_vllm_error(call(c, "/classify", body), 400, "BadRequestError");
  // One bad request leaves the server serving the next.
  EXPECT_EQ(call(c, "/classify", json{{"input", "fine"}}).status, 200);
}

TEST_F(Pooling, PoolingIsClassifysScoreAsAVector) {
  auto c = server_->client();
  const json body = {{"messages", chat("What is 2+2?", "4")}};
  const Answer classify = call(c, "/classify", body);
  const Answer pooled = call(c, "/pooling", body);
  ASSERT_EQ(pooled.status, 200) << pooled.body.dump();
  EXPECT_EQ(key_order(c, "/pooling", body), kPoolingKeys);
  EXPECT_EQ(pooled.body["id"].get<std::string>().rfind("pooling-", 0), 0u);  // current vLLM's prefix
  ASSERT_EQ(pooled.body["data"].size(), 1u);
  const json& d = pooled.body["data"][0];
  EXPECT_EQ(d, (json{{"index", 0}, {"object", "pooling"}, {"data", classify.body["data"][0]["probs"]}}));
  EXPECT_EQ(pooled.body["usage"], classify.body["usage"]);
  // base64: the float32 bytes, little-endian, of the same value.
  const Answer b64 = call(c, "/pooling", json{{"messages", chat("What is 2+2?", "4")}, {"encoding_format", "base64"}});
  ASSERT_EQ(b64.status, 200) << b64.body.dump();
  const std::string text = b64.body["data"][0]["data"];
  ASSERT_EQ(text.size(), 8u) << text;  // 4 bytes -> 8 base64 characters with "==" padding
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint64_t bits = 0;  // 36 bits: a 32-bit word would lose the first byte's top bits
  for (int k = 0; k < 6; ++k) bits = bits << 6 | static_cast<uint64_t>(alphabet.find(text[k]));
  EXPECT_EQ(text.substr(6), "==");
  const uint64_t word = bits >> 4;  // the last 4 bits are padding
  const unsigned char bytes[4] = {static_cast<unsigned char>(word >> 24), static_cast<unsigned char>(word >> 16),
                                  static_cast<unsigned char>(word >> 8), static_cast<unsigned char>(word)};
  float f = 0;
  std::memcpy(&f, bytes, 4);
  EXPECT_EQ(f, static_cast<float>(classify.body["data"][0]["probs"][0].get<double>()));
  // What vLLM refuses (pooling/pooling/serving.py _verify_pooling_task; base/protocol.py).
  expect_vllm_error(call(c, "/pooling", json{{"input", "a"}, {"task", "embed"}}), 400, "Bad Request", "body.task");
  expect_vllm_error(call(c, "/pooling", json{{"input", "a"}, {"task", "score"}}), 400, "Bad Request", "body.task");
  expect_vllm_error(call(c, "/pooling", json{{"input", "a"}, {"dimensions", 8}}), 400, "Bad Request", "body.dimensions");
  expect_vllm_error(call(c, "/pooling", json{{"input", "a"}, {"encoding_format", "bytes"}}), 400, "Bad Request",
                    "body.encoding_format");
  EXPECT_EQ(call(c, "/pooling", json{{"input", "a"}, {"task", "classify"}}).status, 200);
}

// TEI's /predict (router/src/http/types.rs PredictInput, server.rs predict).
TEST_F(Pooling, TeiPredictPairsAreRerankScoresAndBatchesKeepTheirOrder) {
  auto c = server_->client();
  const auto all = pairs();
  ASSERT_GE(all.size(), 3u);
  json batch = json::array();
  std::vector<json> singles;
  for (const auto& [prompt, answer] : all) {
    const Answer a = call(c, "/predict", json{{"inputs", {prompt, answer}}});
    ASSERT_EQ(a.status, 200) << a.body.dump();
    ASSERT_TRUE(a.body.is_array() && a.body.size() == 1) << a.body.dump();  // every label: one here
    EXPECT_EQ(a.body[0].size(), 2u);
    EXPECT_EQ(a.body[0]["label"], "LABEL_0");
    EXPECT_EQ(a.body[0]["score"].get<double>(), sigmoid(pointwise(c, prompt, answer)));
    const Answer raw = call(c, "/predict", json{{"inputs", {prompt, answer}}, {"raw_scores", true}});
    EXPECT_EQ(raw.body[0]["score"].get<double>(), pointwise(c, prompt, answer));
    singles.push_back(a.body);
    if (batch.size() < 4) batch.push_back({prompt, answer});  // --max-candidates 4: TEI's max_client_batch_size
  }
  // A text alone (a string, or a list of one) is an answer to no prompt; a batch mixes both forms.
  const std::string alone = "Paris.";
  const Answer text = call(c, "/predict", json{{"inputs", alone}});
  EXPECT_EQ(text.body, call(c, "/predict", json{{"inputs", {alone}}}).body);
  EXPECT_EQ(text.body[0]["score"].get<double>(), sigmoid(pointwise(c, "", alone)));
  batch.back() = {alone};
  const Answer b = call(c, "/predict", json{{"inputs", batch}});
  ASSERT_EQ(b.status, 200) << b.body.dump();
  ASSERT_EQ(b.body.size(), batch.size());
  for (size_t i = 0; i + 1 < batch.size(); ++i) EXPECT_EQ(b.body[i], singles[i]) << i;
  EXPECT_EQ(b.body.back(), text.body);
}

TEST_F(Pooling, TeiPredictRefusesInTeisShape) {
  auto c = server_->client();
  expect_tei_error(call(c, "/predict", json{{"inputs", {"a", "b", "c"}}}), 422, "Validation");  // invalid length 3
  expect_tei_error(call(c, "/predict", json{{"inputs", json::array()}}), 422, "Validation");    // invalid length 0
  expect_tei_error(call(c, "/predict", json{{"inputs", json::array({json::array({"a"}), "b"})}}), 422, "Validation");
  expect_tei_error(call(c, "/predict", json{{"texts", {"a"}}}), 422, "Validation");             // no inputs
  expect_tei_error(call(c, "/predict", json{{"inputs", ""}}), 400, "Empty");
  json five = json::array();
  for (int i = 0; i < 5; ++i) five.push_back({"q", "a" + std::to_string(i)});
  const Answer over = call(c, "/predict", json{{"inputs", five}});
  expect_tei_error(over, 413, "Validation");
  EXPECT_NE(over.body["error"].get<std::string>().find("batch size 5 > maximum allowed batch size 4"), std::string::npos);
  EXPECT_EQ(call(c, "/predict", json{{"inputs", "fine"}}).status, 200);
}

// POST / and /invocations: each body shape is answered as the endpoint it belongs to would answer it.
TEST_F(Pooling, GenericPathsRouteByTheBody) {
  auto c = server_->client();
  const std::vector<std::pair<std::string, json>> shapes = {
      {"/predict", {{"inputs", {"q", "a"}}}},
      {"/rerank", {{"query", "q"}, {"texts", {"a", "b"}}}},
      {"/v1/rerank", {{"query", "q"}, {"documents", {"a", "b"}}}},
      {"/classify", {{"messages", chat("q", "a")}}},
      {"/score", {{"text_1", "q"}, {"text_2", {"a", "b"}}}},
      {"/get_reward", {{"query", {"q a"}}, {"prompts", {"q"}}}},
  };
  // Fields that differ from call to call: the ids, and the clock.
  auto steady = [](json j) {
    if (j.is_object()) j.erase("id"), j.erase("created");
    return j;
  };
  for (const auto& [path, body] : shapes)
    for (const char* generic : {"/", "/invocations"}) {
      const Answer want = call(c, path, body), got = call(c, generic, body);
      ASSERT_EQ(got.status, 200) << generic << " " << body.dump() << ": " << got.body.dump();
      EXPECT_EQ(steady(got.body), steady(want.body)) << generic << " as " << path;
    }
  // The errors are those of the protocol the body belongs to.
  expect_tei_error(call(c, "/", json{{"inputs", {"a", "b", "c"}}}), 422, "Validation");
  expect_vllm_error(call(c, "/invocations", json{{"messages", json::array()}}), 400, "BadRequestError");
}

// vLLM's GET /v1/models (openai/models/serving.py ModelList/ModelCard), /version, /ping; TEI's /info fields.
TEST(Discovery, ModelsVersionPingAndTeiInfo) {
  ServerProcess server(tiny_args({"--served-model-name", "pairrm-test", "--api-key", "k"}));
  auto c = server.client();
  // /ping is a health check: no key, 200, no body (TEI's public route; vLLM's /health answer), GET and POST.
  auto ping = c.Get("/ping");
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->status, 200);
  EXPECT_EQ(ping->body, "");
  auto post_ping = c.Post("/ping", "", "application/json");
  ASSERT_TRUE(post_ping);
  EXPECT_EQ(post_ping->status, 200);
  EXPECT_EQ(c.Get("/v1/models")->status, 401);  // /v1 is guarded in vLLM too
  c.set_bearer_token_auth("k");
  auto models = c.Get("/v1/models");
  ASSERT_TRUE(models);
  ASSERT_EQ(models->status, 200) << models->body;
  EXPECT_EQ(models->get_header_value("Content-Type"), "application/json");  // the openai SDK parses only JSON
  const json list = json::parse(models->body);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list["object"], "list");
  ASSERT_EQ(list["data"].size(), 1u);
  const json& card = list["data"][0];
  const auto ordered = nlohmann::ordered_json::parse(models->body);
  std::vector<std::string> keys;
  for (const auto& [k, v] : ordered["data"][0].items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"id", "object", "created", "owned_by", "root", "parent", "max_model_len", "permission"}));
  EXPECT_EQ(card["id"], "pairrm-test");
  EXPECT_EQ(card["object"], "model");
  EXPECT_EQ(card["root"], test::model_dir("tiny"));
  EXPECT_TRUE(card["parent"].is_null());
  const json info = json::parse(c.Get("/info")->body);
  const long max_len = info["model"]["source_max_tokens"].get<long>() + 2 * info["model"]["candidate_max_tokens"].get<long>();
  EXPECT_EQ(card["max_model_len"], max_len);
  ASSERT_EQ(card["permission"].size(), 1u);
  EXPECT_EQ(card["permission"][0]["object"], "model_permission");
  // /version: vLLM's {"version"}, the server's version.
  EXPECT_EQ(json::parse(c.Get("/version")->body), (json{{"version", info["version"]}}));
  // TEI's Info fields beside pairrm's own.
  EXPECT_EQ(info["model_id"], "pairrm-test");
  EXPECT_EQ(info["served_model_name"], "pairrm-test");
  EXPECT_EQ(info["model_dtype"], "float32");
  EXPECT_EQ(info["model_type"], (json{{"reranker", {{"id2label", {{"0", "LABEL_0"}}}, {"label2id", {{"LABEL_0", 0}}}}}}));
  EXPECT_EQ(info["max_input_length"], max_len);
  EXPECT_EQ(info["max_client_batch_size"], info["limits"]["max_candidates"]);
  EXPECT_EQ(info["auto_truncate"], true);
  for (const char* k : {"model_sha", "max_batch_requests", "sha", "docker_label"}) EXPECT_TRUE(info[k].is_null()) << k;
  // The name is what the protocols answer with when a request names none.
  const Answer classify = call(c, "/classify", json{{"input", "a"}});
  EXPECT_EQ(classify.body["model"], "pairrm-test");
  EXPECT_EQ(server.stop(), 0);
}

}  // namespace
}  // namespace pairrm
