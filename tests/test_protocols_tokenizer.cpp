// The tokenizer endpoints clients budget truncation with: TEI's /tokenize and /decode (router/src/http/
// server.rs, types.rs TokenizeRequest, SimpleToken, DecodeRequest) and vLLM's /tokenize and /detokenize
// (vllm/entrypoints/serve/tokenize/protocol.py, serving.py), against the real process on the fixture model.
// The ids must be the ids the model scores with: Model::tokenize/encode, which test_tokenizer.cpp checks
// against the Rust tokenizer on every fixture text.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fixtures.h"
#include "pairrm/pairrm.h"
#include "protocol_helpers.h"
#include "server_process.h"

namespace pairrm {
namespace {

using nlohmann::json;
using test::ServerProcess;
using namespace protocol_test;

class TokenizerEndpoints : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess(tiny_args({"--max-candidates", "3"}));
    model_ = Model::load(test::model_dir("tiny"));
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->stop(), 0);
    delete server_;
    model_.reset();
  }
  // Texts with words, punctuation, several scripts, a special string and unknown characters.
  static std::vector<std::string> texts() {
    std::vector<std::string> out = {"Hello world", "  Spaces,  tabs\tand\nlines. ", "naïve café — ﬁne", "数学は楽しい",
                                    "a <|candidate1|> b [SEP] c", "\xf0\x9f\x98\x80 emoji \xf0\x9f\x98\x80"};
    for (const auto& rc : test::entries(test::model_text_cases("tiny"), "rank_cases")) out.push_back(rc["source"]);
    return out;
  }
  static ServerProcess* server_;
  static std::shared_ptr<const Model> model_;
};
ServerProcess* TokenizerEndpoints::server_ = nullptr;
std::shared_ptr<const Model> TokenizerEndpoints::model_;

std::vector<int32_t> ids_of(const json& tokens) {
  std::vector<int32_t> ids;
  for (const auto& t : tokens) ids.push_back(t.is_object() ? t["id"].get<int32_t>() : t.get<int32_t>());
  return ids;
}

// TEI: [[SimpleToken]] — {id, text, special, start, stop} in this order; text = the input's bytes
// [start, stop), the token's string with null offsets for [CLS]/[SEP] (the post-processor's specials).
TEST_F(TokenizerEndpoints, TeiTokenizeGivesTheScoredIdsWithTheirBytes) {
  auto c = server_->client();
  for (const std::string& text : texts()) {
    SCOPED_TRACE(text);
    const auto a = call_ordered(c, "/tokenize", json{{"inputs", text}});
    ASSERT_TRUE(a.is_array() && a.size() == 1 && a[0].is_array()) << a.dump();
    const auto& tokens = a[0];
    ASSERT_EQ(ids_of(json::parse(tokens.dump())), model_->encode(text));
    for (size_t i = 0; i < tokens.size(); ++i) {
      const auto& t = tokens[i];
      EXPECT_EQ(keys_of(t), (std::vector<std::string>{"id", "text", "special", "start", "stop"})) << t.dump();
      const bool edge = i == 0 || i + 1 == tokens.size();
      EXPECT_EQ(t["special"].get<bool>(), edge) << t.dump();
      if (edge) {
        EXPECT_EQ(t["text"], i == 0 ? "[CLS]" : "[SEP]");
        EXPECT_TRUE(t["start"].is_null() && t["stop"].is_null()) << t.dump();
      } else {
        const size_t start = t["start"], stop = t["stop"];
        ASSERT_LE(start, stop);
        ASSERT_LE(stop, text.size());
        EXPECT_EQ(t["text"], text.substr(start, stop - start));
      }
    }
  }
  // "Hello world": ▁Hello is bytes 0..5, ▁world 5..11 with the space it stands for (the Rust tokenizer's).
  const Answer hello = call(c, "/tokenize", json{{"inputs", "Hello world"}});
  EXPECT_EQ(hello.body[0][1]["text"], "Hello");
  EXPECT_EQ(hello.body[0][2]["text"], " world");
  EXPECT_EQ(hello.body[0][2]["start"], 5);
  EXPECT_EQ(hello.body[0][2]["stop"], 11);
}

TEST_F(TokenizerEndpoints, TeiTokenizeBatchesAndSpecialTokens) {
  auto c = server_->client();
  const Answer batch = call(c, "/tokenize", json{{"inputs", {"one two", "three"}}, {"add_special_tokens", false}});
  ASSERT_EQ(batch.status, 200) << batch.body.dump();
  ASSERT_EQ(batch.body.size(), 2u);
  EXPECT_EQ(ids_of(batch.body[0]), model_->text_tokens("one two"));
  EXPECT_EQ(ids_of(batch.body[1]), model_->text_tokens("three"));
  for (const auto& list : batch.body)
    for (const auto& t : list) EXPECT_FALSE(t["special"].get<bool>()) << t.dump();
  // The generic paths route TEI's body here too (TEI's /invocations is predict; "/" is OpenRLHF's here).
  EXPECT_EQ(call(c, "/tokenize", json{{"inputs", "x"}, {"add_special_tokens", true}}).body[0].size(), model_->encode("x").size());
}

TEST_F(TokenizerEndpoints, TeiTokenizeErrorsInTeisShape) {
  auto c = server_->client();
  expect_tei_error(call(c, "/tokenize", json{{"inputs", ""}}), 400, "Empty");
  expect_tei_error(call(c, "/tokenize", json{{"inputs", {"fine", ""}}}), 400, "Empty");
  expect_tei_error(call(c, "/tokenize", json{{"inputs", json::array()}}), 400, "Empty");
  expect_tei_error(call(c, "/tokenize", json{{"inputs", 7}}), 422, "Validation");
  expect_tei_error(call(c, "/tokenize", json{{"inputs", {"a", 7}}}), 422, "Validation");
  expect_tei_error(call(c, "/tokenize", json{{"inputs", "a"}, {"add_special_tokens", "yes"}}), 422, "Validation");
  expect_tei_error(call(c, "/tokenize", json{{"inputs", "a"}, {"prompt_name", "query"}}), 422, "Validation");
  // More inputs than the batch limit (--max-candidates 3 here): TEI's 413 for max_client_batch_size.
  expect_tei_error(call(c, "/tokenize", json{{"inputs", {"a", "b", "c", "d"}}}), 413, "Validation");
}

// TEI: [text] per id list; skip_special_tokens defaults to true.
TEST_F(TokenizerEndpoints, TeiDecode) {
  auto c = server_->client();
  const auto ids = model_->encode("Hello world");
  Answer a = call(c, "/decode", json{{"ids", ids}});
  ASSERT_EQ(a.status, 200) << a.body.dump();
  EXPECT_EQ(a.body, json::array({"Hello world"}));
  a = call(c, "/decode", json{{"ids", {ids, model_->encode("Bonjour")}}, {"skip_special_tokens", false}});
  ASSERT_EQ(a.status, 200) << a.body.dump();
  EXPECT_EQ(a.body, json::array({"[CLS] Hello world[SEP]", "[CLS] Bonjour[SEP]"}));
  for (const std::string& text : texts()) {  // tokenize then decode: the text as the tokenizer normalizes it
    const Answer tokens = call(c, "/tokenize", json{{"inputs", text}});
    const Answer back = call(c, "/decode", json{{"ids", ids_of(tokens.body[0])}});
    ASSERT_EQ(back.status, 200) << back.body.dump();
    EXPECT_EQ(back.body[0], model_->decode(model_->encode(text), true)) << text;
  }
  expect_tei_error(call(c, "/decode", json{{"ids", json::array()}}), 400, "Empty");
  expect_tei_error(call(c, "/decode", json{{"ids", {json::array({1}), json::array()}}}), 400, "Empty");
  expect_tei_error(call(c, "/decode", json{{"ids", {1, -2}}}), 422, "Validation");
  expect_tei_error(call(c, "/decode", json{{"ids", {1, "2"}}}), 422, "Validation");
  expect_tei_error(call(c, "/decode", json{{"ids", "1 2"}}), 422, "Validation");
  expect_tei_error(call(c, "/decode", json{{"text", "1 2"}}), 422, "Validation");
  expect_tei_error(call(c, "/decode", json{{"ids", {json::array({1}), json::array({1}), json::array({1}), json::array({1})}}}),
                   413, "Validation");
}

// vLLM's TokenizeResponse: {count, max_model_len, tokens, token_strs}, token_strs null unless asked.
TEST_F(TokenizerEndpoints, VllmTokenize) {
  auto c = server_->client();
  for (const std::string& text : texts()) {
    SCOPED_TRACE(text);
    const auto a = call_ordered(c, "/tokenize", json{{"model", "any"}, {"prompt", text}});
    EXPECT_EQ(keys_of(a), (std::vector<std::string>{"count", "max_model_len", "tokens", "token_strs"})) << a.dump();
    const auto want = model_->encode(text);
    EXPECT_EQ(a["tokens"].get<std::vector<int32_t>>(), want);
    EXPECT_EQ(a["count"], want.size());
    EXPECT_TRUE(a["token_strs"].is_null());
    // The longest row the model takes: PairRM's model card limits, in the one place they are reported.
    // The longest row PairRM builds (source + two candidates), as /v1/models reports it.
    EXPECT_EQ(a["max_model_len"], model_->info().source_max_tokens + 2L * model_->info().candidate_max_tokens);
  }
  const Answer strs = call(c, "/tokenize", json{{"prompt", "Hello world"}, {"return_token_strs", true}, {"add_special_tokens", false}});
  ASSERT_EQ(strs.status, 200) << strs.body.dump();
  EXPECT_EQ(strs.body["token_strs"], json::array({"\xe2\x96\x81Hello", "\xe2\x96\x81world"}));
  EXPECT_EQ(strs.body["tokens"].get<std::vector<int32_t>>(), model_->text_tokens("Hello world"));
  expect_vllm_error(call(c, "/tokenize", json{{"model", "m"}}), 400, "Bad Request", "body.prompt");
  expect_vllm_error(call(c, "/tokenize", json{{"prompt", 5}}), 400, "Bad Request", "body.prompt");
  expect_vllm_error(call(c, "/tokenize", json{{"prompt", "a"}, {"model", 5}}), 400, "Bad Request", "body.model");
  // No chat template in PairRM's tokenizer: vLLM refuses the chat form for such a model.
  expect_vllm_error(call(c, "/tokenize", json{{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}}), 400,
                    "BadRequestError");
}

// vLLM's DetokenizeResponse: {prompt}, the tokenizer's decode with the specials kept and transformers'
// clean_up_tokenization (PairRM's tokenizer_config sets it).
TEST_F(TokenizerEndpoints, VllmDetokenize) {
  auto c = server_->client();
  Answer a = call(c, "/detokenize", json{{"model", "m"}, {"tokens", model_->encode("Hello world")}});
  ASSERT_EQ(a.status, 200) << a.body.dump();
  EXPECT_EQ(a.body, (json{{"prompt", "[CLS] Hello world[SEP]"}}));
  a = call(c, "/detokenize", json{{"tokens", model_->text_tokens("It is n't over , is it ?")}});
  EXPECT_EQ(a.body["prompt"], "It isn't over, is it?");
  a = call(c, "/detokenize", json{{"tokens", json::array()}});
  EXPECT_EQ(a.body, (json{{"prompt", ""}}));
  expect_vllm_error(call(c, "/detokenize", json{{"model", "m"}}), 400, "Bad Request", "body.tokens");
  expect_vllm_error(call(c, "/detokenize", json{{"tokens", "1 2"}}), 400, "Bad Request", "body.tokens");
  expect_vllm_error(call(c, "/detokenize", json{{"tokens", {1, "x"}}}), 400, "Bad Request", "body.tokens.1");
  expect_vllm_error(call(c, "/detokenize", json{{"tokens", {1, 2, -3}}}), 400, "Bad Request", "body.tokens.2");
  const Answer past = call(c, "/detokenize", json{{"tokens", {1, model_->vocab_size()}}});
  expect_vllm_error(past, 400, "BadRequestError");
  EXPECT_EQ(past.body["error"]["message"], "Token id " + std::to_string(model_->vocab_size()) + " is out of vocabulary");
}

}  // namespace
}  // namespace pairrm
