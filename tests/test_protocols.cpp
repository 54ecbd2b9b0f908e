// The protocols `pairrm serve` speaks besides its own (docs/server.md): TEI's /rerank, vLLM's /score,
// vLLM/Jina/Cohere rerank and OpenRLHF's remote reward, spoken to over HTTP exactly as their clients build
// requests, against the real process on the fixture model. Every score is checked against the pointwise
// definition recomputed through /compare: s = logit(text, ref) - logit(ref, text) = /compare's score with
// candidate_a = text, candidate_b = ref (bitwise: the rows are the same). The npm clients (cohere-ai,
// openai) run from tests/clients through ProtocolClients.NpmClients.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "fixtures.h"
#include "protocol_helpers.h"
#include "server_process.h"

namespace pairrm {
namespace {

using nlohmann::json;
using test::ServerProcess;
using namespace protocol_test;

// A text of about n tokens whose words all differ (so that cutting it at either end changes it).
std::string words(int n, const std::string& tag) {
  std::string t;
  for (int i = 0; i < n; ++i) t += tag + std::to_string(i) + " ";
  return t;
}

class Protocols : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new ServerProcess(tiny_args()); }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->stop(), 0);
    delete server_;
  }
  static json rank_cases() { return test::entries(test::model_text_cases("tiny"), "rank_cases"); }
  static ServerProcess* server_;
};
ServerProcess* Protocols::server_ = nullptr;

// ---- TEI /rerank ----

TEST_F(Protocols, TeiRerankScoresAreTheSigmoidOfThePointwiseScore) {
  auto c = server_->client();
  for (const auto& rc : rank_cases()) {  // test::entries: a non-empty list, or the test fails
    const std::string q = rc["source"];
    const auto texts = rc["candidates"].get<std::vector<std::string>>();
    const Answer raw = call(c, "/rerank", json{{"query", q}, {"texts", texts}, {"raw_scores", true}, {"return_text", true}});
    const Answer squashed = call(c, "/rerank", json{{"query", q}, {"texts", texts}});
    ASSERT_EQ(raw.status, 200) << raw.body.dump();
    ASSERT_EQ(squashed.status, 200) << squashed.body.dump();
    ASSERT_TRUE(raw.body.is_array());
    ASSERT_EQ(raw.body.size(), texts.size());
    ASSERT_TRUE(squashed.body.is_array());
    ASSERT_EQ(squashed.body.size(), texts.size());
    std::set<size_t> seen;
    for (size_t k = 0; k < texts.size(); ++k) {
      const json& r = raw.body[k];
      const size_t i = r["index"];
      seen.insert(i);
      EXPECT_EQ(r["text"], texts[i]);
      const double s = pointwise(c, q, texts[i]);
      EXPECT_EQ(r["score"].get<double>(), s) << q << " / " << texts[i];  // bitwise: the same rows
      EXPECT_FALSE(squashed.body[k].contains("text"));                    // return_text defaults to false
      const json& sq = squashed.body[k];
      EXPECT_NEAR(sq["score"].get<double>(), sigmoid(pointwise(c, q, texts[sq["index"].get<size_t>()])), 1e-15);
      EXPECT_GT(sq["score"].get<double>(), 0.0);
      EXPECT_LT(sq["score"].get<double>(), 1.0);
      if (k > 0) {
        EXPECT_GE(raw.body[k - 1]["score"].get<double>(), r["score"].get<double>());  // best first
      }
    }
    EXPECT_EQ(seen.size(), texts.size());
  }
}

TEST_F(Protocols, TeiOneTextGetsItsPointwiseScoreNotZero) {
  auto c = server_->client();
  const Answer a = call(c, "/rerank", json{{"query", "hello!"}, {"texts", {"hi!"}}, {"raw_scores", true}});
  ASSERT_EQ(a.status, 200) << a.body.dump();
  ASSERT_EQ(a.body.size(), 1u);
  const double s = pointwise(c, "hello!", "hi!");
  EXPECT_NE(s, 0.0);
  EXPECT_EQ(a.body[0]["score"].get<double>(), s);
  EXPECT_EQ(a.body[0]["index"], 0);
  // A reference given with the request replaces the server's.
  const Answer r = call(c, "/rerank", json{{"query", "hello!"}, {"texts", {"hi!"}}, {"raw_scores", true}, {"reference", "f**k off!"}});
  EXPECT_EQ(r.body[0]["score"].get<double>(), pointwise(c, "hello!", "hi!", "f**k off!"));
}

TEST_F(Protocols, TeiEqualScoresComeOutHighestIndexFirst) {
  // TEI sorts ascending (stable) and reverses the list.
  auto c = server_->client();
  const Answer a = call(c, "/rerank", json{{"query", "q"}, {"texts", {"same", "same", "same"}}});
  ASSERT_EQ(a.status, 200);
  ASSERT_EQ(a.body.size(), 3u) << a.body.dump();
  EXPECT_EQ(a.body[0]["index"], 2);
  EXPECT_EQ(a.body[1]["index"], 1);
  EXPECT_EQ(a.body[2]["index"], 0);
}

TEST_F(Protocols, TeiTruncateAndTruncationDirection) {
  auto c = server_->client();
  // Two long texts (over a candidate segment's budget) sharing their first half, and two sharing their end.
  const std::string head = words(1200, "h"), tail = words(1200, "t");
  const json same_start = {head + words(50, "a"), head + words(50, "b")};
  const json same_end = {words(50, "a") + tail, words(50, "b") + tail};
  // truncate=false refuses a text that would be cut, TEI's 422 Validation.
  expect_tei_error(call(c, "/rerank", json{{"query", "q"}, {"texts", same_start}, {"truncate", false}}), 422, "Validation");
  // Cut on the right (default): the shared starts are what is scored.
  auto scores = [&](const json& texts, const char* direction) {
    json body = {{"query", "q"}, {"texts", texts}, {"raw_scores", true}, {"truncate", true}};
    if (direction) body["truncation_direction"] = direction;
    const Answer a = call(c, "/rerank", body);
    EXPECT_EQ(a.status, 200) << a.body.dump();
    // Both texts answered, each once: else the pairs compared below would be two untouched NaNs.
    std::vector<double> s(2, std::nan(""));
    EXPECT_EQ(a.body.size(), 2u) << a.body.dump();
    for (const auto& r : a.body) s.at(r["index"].get<size_t>()) = r["score"];
    return s;
  };
  auto right = scores(same_start, nullptr);
  EXPECT_EQ(right[0], right[1]);
  EXPECT_EQ(right, scores(same_start, "Right"));
  auto left = scores(same_start, "left");
  EXPECT_NE(left[0], left[1]);
  auto end_left = scores(same_end, "Left");
  EXPECT_EQ(end_left[0], end_left[1]);
  auto end_right = scores(same_end, "right");
  EXPECT_NE(end_right[0], end_right[1]);
  // Short texts are not affected by truncate=false.
  EXPECT_EQ(call(c, "/rerank", json{{"query", "q"}, {"texts", {"a"}}, {"truncate", false}}).status, 200);
}

TEST_F(Protocols, TeiErrorsHaveTeisBodyAndStatus) {
  auto c = server_->client();
  expect_tei_error(call(c, "/rerank", json{{"query", "q"}, {"texts", json::array()}}), 400, "Empty");
  expect_tei_error(call(c, "/rerank", json{{"query", "q"}}), 422, "Validation");
  expect_tei_error(call(c, "/rerank", json{{"texts", {"a"}}}), 422, "Validation");
  expect_tei_error(call(c, "/rerank", json{{"query", 1}, {"texts", {"a"}}}), 422, "Validation");
  expect_tei_error(call(c, "/rerank", json{{"query", "q"}, {"texts", "a"}}), 422, "Validation");
  expect_tei_error(call(c, "/rerank", json{{"query", "q"}, {"texts", {"a", 2}}}), 422, "Validation");
  expect_tei_error(call(c, "/rerank", json{{"query", "q"}, {"texts", {"a"}}, {"raw_scores", "yes"}}), 422, "Validation");
  expect_tei_error(call(c, "/rerank", json{{"query", "q"}, {"texts", {"a"}}, {"truncation_direction", "up"}}), 422,
                   "Validation");
  expect_tei_error(call(c, "/rerank", std::string("{not json")), 400, "Validation");
  // Over the batch limit (--max-candidates, 32 by default; TEI's max_client_batch_size): 413 Validation.
  const Answer big = call(c, "/rerank", json{{"query", "q"}, {"texts", std::vector<std::string>(33, "x")}});
  expect_tei_error(big, 413, "Validation");
  EXPECT_NE(big.body["error"].get<std::string>().find("batch size 33 > maximum allowed batch size 32"), std::string::npos);
}

// ---- vLLM /score and /v1/score ----

TEST_F(Protocols, VllmScoreOneToOneOneToNAndNToN) {
  auto c = server_->client();
  const auto rc = rank_cases()[0];
  const std::string q = rc["source"];
  const auto texts = rc["candidates"].get<std::vector<std::string>>();
  for (const char* path : {"/score", "/v1/score"}) {
    // 1:1 with strings: the pointwise score (sigmoid: vLLM's default activation for one label).
    const Answer one = call(c, path, json{{"model", "pairrm"}, {"text_1", q}, {"text_2", texts[0]}});
    ASSERT_EQ(one.status, 200) << one.body.dump();
    EXPECT_EQ(one.body["object"], "list");
    EXPECT_EQ(one.body["model"], "pairrm");
    EXPECT_EQ(one.body["id"].get<std::string>().rfind("score-", 0), 0u);
    EXPECT_TRUE(one.body["created"].is_number_integer());
    ASSERT_EQ(one.body["data"].size(), 1u);
    EXPECT_EQ(one.body["data"][0], (json{{"index", 0}, {"object", "score"}, {"score", one.body["data"][0]["score"]}}));
    const double s0 = pointwise(c, q, texts[0]);
    EXPECT_NEAR(one.body["data"][0]["score"].get<double>(), sigmoid(s0), 1e-15);
    const json& usage = one.body["usage"];
    EXPECT_GT(usage["prompt_tokens"].get<long>(), 0);
    EXPECT_EQ(usage["total_tokens"], usage["prompt_tokens"]);
    EXPECT_EQ(usage["completion_tokens"], 0);
    EXPECT_TRUE(usage.contains("prompt_tokens_details"));

    // 1:N, raw scores: each text's pointwise score, in order; usage adds up the same rows.
    const Answer many = call(c, path, json{{"text_1", {q}}, {"text_2", texts}, {"use_activation", false}});
    ASSERT_EQ(many.status, 200) << many.body.dump();
    ASSERT_EQ(many.body["data"].size(), texts.size()) << many.body.dump();
    long tokens = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      EXPECT_EQ(many.body["data"][i]["index"], i);
      EXPECT_EQ(many.body["data"][i]["score"].get<double>(), pointwise(c, q, texts[i]));
      tokens += call(c, path, json{{"text_1", q}, {"text_2", texts[i]}}).body["usage"]["prompt_tokens"].get<long>();
    }
    EXPECT_EQ(many.body["usage"]["prompt_tokens"], tokens);
    // The model defaults to the served one.
    EXPECT_EQ(many.body["model"], test::model_dir("tiny"));

    // N:N: pair i is text_1[i] with text_2[i]. The deprecated spellings of use_activation still count.
    const json prompts = {q, "I love you!"};
    const json answers = {texts[1], "I hate you!"};
    for (const char* key : {"activation", "softmax"}) {
      const Answer pairs = call(c, path, json{{"text_1", prompts}, {"text_2", answers}, {key, false}});
      ASSERT_EQ(pairs.status, 200) << pairs.body.dump();
      ASSERT_EQ(pairs.body["data"].size(), prompts.size()) << pairs.body.dump();
      for (size_t i = 0; i < prompts.size(); ++i)
        EXPECT_EQ(pairs.body["data"][i]["score"].get<double>(), pointwise(c, prompts[i], answers[i]));
    }
    // The newer field names (queries/documents, data_1/data_2) and a per-request reference.
    const Answer qd = call(c, path, json{{"queries", q}, {"documents", texts}, {"use_activation", false}, {"reference", texts[2]}});
    ASSERT_EQ(qd.status, 200) << qd.body.dump();
    ASSERT_EQ(qd.body["data"].size(), texts.size()) << qd.body.dump();
    EXPECT_EQ(qd.body["data"][0]["score"].get<double>(), pointwise(c, q, texts[0], texts[2]));
    const Answer d12 = call(c, path, json{{"data_1", q}, {"data_2", texts[1]}, {"use_activation", false}});
    EXPECT_EQ(d12.body["data"][0]["score"].get<double>(), pointwise(c, q, texts[1]));
  }
}

TEST_F(Protocols, VllmScoreErrorsHaveVllmsErrorObject) {
  auto c = server_->client();
  expect_vllm_error(call(c, "/score", json{{"text_1", {"a", "b", "c"}}, {"text_2", {"x", "y"}}}), 400, "BadRequestError");
  const Answer mismatch = call(c, "/v1/score", json{{"text_1", {"a", "b", "c"}}, {"text_2", {"x", "y"}}});
  EXPECT_EQ(mismatch.body["error"]["message"], "Input lengths must be either 1:1, 1:N or N:N");
  const Answer no_pair = call(c, "/score", json{{"text_1", "a"}, {"text_2", json::array()}});
  expect_vllm_error(no_pair, 400, "BadRequestError");
  EXPECT_EQ(no_pair.body["error"]["message"], "At least one text_pair element must be given");
  expect_vllm_error(call(c, "/score", json{{"text_1", json::array()}, {"text_2", "x"}}), 400, "BadRequestError");
  // Schema errors: pydantic's, 400 "Bad Request" with the field's place.
  expect_vllm_error(call(c, "/score", json{{"text_2", "x"}}), 400, "Bad Request", "body.text_1");
  expect_vllm_error(call(c, "/score", json{{"text_1", "a"}, {"text_2", 5}}), 400, "Bad Request", "body.text_2");
  expect_vllm_error(call(c, "/score", json{{"text_1", "a"}, {"text_2", "b"}, {"truncate_prompt_tokens", -2}}), 400,
                    "Bad Request", "body.truncate_prompt_tokens");
  expect_vllm_error(call(c, "/score", std::string("[1,")), 400, "Bad Request");
  const Answer too_long = call(c, "/score", json{{"text_1", "a"}, {"text_2", "b"}, {"truncate_prompt_tokens", 99999}});
  expect_vllm_error(too_long, 400, "BadRequestError");
  EXPECT_EQ(too_long.body["error"]["message"],
            "truncate_prompt_tokens value (99999) is greater than max_model_len (2048). Please, select a smaller truncation size.");
  expect_vllm_error(call(c, "/score", json{{"text_1", "a"}, {"text_2", json::array({json{{"content", json::array()}}})}}), 400,
                    "BadRequestError");
  expect_vllm_error(call(c, "/score", json{{"text_1", "q"}, {"text_2", std::vector<std::string>(33, "x")}}), 413,
                    "Request Entity Too Large");
}

TEST_F(Protocols, VllmTruncatePromptTokensKeepsTheEnds) {
  auto c = server_->client();
  const std::string tail = words(60, "t");
  const json texts = {words(60, "a") + tail, words(60, "b") + tail};
  auto scores = [&](const json& extra) {
    json body = {{"text_1", words(80, "q")}, {"text_2", texts}, {"use_activation", false}};
    body.update(extra);
    const Answer a = call(c, "/score", body);
    EXPECT_EQ(a.status, 200) << a.body.dump();
    EXPECT_EQ(a.body["data"].size(), 2u) << a.body.dump();
    if (a.body["data"].size() != 2) return std::pair{std::nan(""), std::nan("")};  // compare unequal below
    return std::pair{a.body["data"][0]["score"].get<double>(), a.body["data"][1]["score"].get<double>()};
  };
  const auto whole = scores(json::object());
  EXPECT_NE(whole.first, whole.second);
  const auto cut = scores(json{{"truncate_prompt_tokens", 64}});  // rows of 64 tokens: only the shared ends stay
  EXPECT_EQ(cut.first, cut.second);
  EXPECT_EQ(scores(json{{"truncate_prompt_tokens", -1}}), whole);  // the model's length: nothing to cut here
}

// ---- vLLM/Jina /rerank, /v1/rerank and Cohere /v1/rerank, /v2/rerank ----

TEST_F(Protocols, RerankDocumentsTopNAndReturnDocuments) {
  auto c = server_->client();
  const auto rc = rank_cases()[2];  // five candidates
  const std::string q = rc["source"];
  const auto docs = rc["candidates"].get<std::vector<std::string>>();
  std::vector<double> want;
  for (const auto& d : docs) want.push_back(sigmoid(pointwise(c, q, d)));
  for (const char* path : {"/rerank", "/v1/rerank", "/v2/rerank"}) {
    SCOPED_TRACE(path);
    const Answer a = call(c, path, json{{"model", "rerank-x"}, {"query", q}, {"documents", docs}, {"top_n", 3}});
    ASSERT_EQ(a.status, 200) << a.body.dump();
    EXPECT_EQ(a.body["model"], "rerank-x");
    EXPECT_EQ(a.body["id"].get<std::string>().rfind("rerank-", 0), 0u);
    EXPECT_GT(a.body["usage"]["total_tokens"].get<long>(), 0);
    EXPECT_EQ(a.body["usage"]["prompt_tokens"], a.body["usage"]["total_tokens"]);
    EXPECT_EQ(a.body["meta"]["api_version"]["version"], std::string(path) == "/v2/rerank" ? "2" : "1");
    EXPECT_EQ(a.body["meta"]["billed_units"]["search_units"], 1);
    const json& results = a.body["results"];
    ASSERT_EQ(results.size(), 3u);  // top_n
    std::vector<double> sorted = want;
    std::sort(sorted.rbegin(), sorted.rend());
    for (size_t k = 0; k < 3; ++k) {
      const size_t i = results[k]["index"];
      EXPECT_NEAR(results[k]["relevance_score"].get<double>(), want[i], 1e-15);
      EXPECT_NEAR(results[k]["relevance_score"].get<double>(), sorted[k], 1e-15);  // the best three, best first
      EXPECT_EQ(results[k]["document"]["text"], docs[i]);  // vLLM and Jina show the documents by default
    }
    // return_documents false (Cohere, Jina), top_n 0 (all), raw scores (use_activation false).
    const Answer bare = call(c, path, json{{"query", q}, {"documents", docs}, {"return_documents", false}, {"use_activation", false}});
    ASSERT_EQ(bare.body["results"].size(), docs.size());
    for (const auto& r : bare.body["results"]) {
      EXPECT_FALSE(r.contains("document"));
      EXPECT_EQ(r["relevance_score"].get<double>(), pointwise(c, q, docs[r["index"].get<size_t>()]));
    }
  }
  // One document: its pointwise score, never 0.5 (a silent 0).
  const Answer one = call(c, "/v2/rerank", json{{"model", "m"}, {"query", "hello!"}, {"documents", {"hi!"}}});
  ASSERT_EQ(one.body["results"].size(), 1u) << one.body.dump();
  EXPECT_NEAR(one.body["results"][0]["relevance_score"].get<double>(), sigmoid(pointwise(c, "hello!", "hi!")), 1e-15);
}

TEST_F(Protocols, CohereV1ObjectDocumentsAndMaxTokensPerDoc) {
  auto c = server_->client();
  // Cohere v1: documents may be objects, scored by "text" or by rank_fields ("field: value" lines).
  const json docs = {{{"text", "Paris"}, {"title", "Capital"}}, {{"text", "Berlin"}, {"title", "City"}}};
  const Answer a = call(c, "/v1/rerank", json{{"query", "capital of France?"}, {"documents", docs}, {"use_activation", false}});
  ASSERT_EQ(a.status, 200) << a.body.dump();
  ASSERT_EQ(a.body["results"].size(), docs.size()) << a.body.dump();
  for (const auto& r : a.body["results"]) {
    const size_t i = r["index"];
    EXPECT_EQ(r["document"], docs[i]);
    EXPECT_EQ(r["relevance_score"].get<double>(), pointwise(c, "capital of France?", docs[i]["text"]));
  }
  const Answer fields = call(c, "/v1/rerank", json{{"query", "q"}, {"documents", docs}, {"rank_fields", {"title", "text"}},
                                                     {"use_activation", false}});
  ASSERT_EQ(fields.status, 200) << fields.body.dump();
  ASSERT_EQ(fields.body["results"].size(), docs.size()) << fields.body.dump();
  for (const auto& r : fields.body["results"]) {
    const json& d = docs[r["index"].get<size_t>()];
    const std::string text = "title: " + d["title"].get<std::string>() + "\ntext: " + d["text"].get<std::string>();
    EXPECT_EQ(r["relevance_score"].get<double>(), pointwise(c, "q", text));
  }
  // Cohere v2's max_tokens_per_doc cuts each document (and the reference, the other side of the comparison).
  const std::string head = words(100, "h");
  const json long_docs = {head + "apples", head + "oranges"};
  auto scores = [&](const json& extra) {
    json body = {{"model", "m"}, {"query", "q"}, {"documents", long_docs}, {"return_documents", false}};
    body.update(extra);
    const Answer r = call(c, "/v2/rerank", body);
    EXPECT_EQ(r.status, 200) << r.body.dump();
    std::vector<double> s(2, std::nan(""));  // a document not answered stays NaN: unequal to everything
    EXPECT_EQ(r.body["results"].size(), 2u) << r.body.dump();
    for (const auto& x : r.body["results"]) s.at(x["index"].get<size_t>()) = x["relevance_score"];
    return s;
  };
  const auto whole = scores(json::object());
  EXPECT_NE(whole[0], whole[1]);
  const auto cut = scores(json{{"max_tokens_per_doc", 20}});
  EXPECT_EQ(cut[0], cut[1]);
}

TEST_F(Protocols, RerankErrorsHaveVllmsErrorObject) {
  auto c = server_->client();
  for (const char* path : {"/rerank", "/v1/rerank", "/v2/rerank"}) {
    SCOPED_TRACE(path);
    const Answer empty = call(c, path, json{{"query", "q"}, {"documents", json::array()}});
    expect_vllm_error(empty, 400, "BadRequestError");
    EXPECT_EQ(empty.body["error"]["message"], "At least one text_pair element must be given");
    expect_vllm_error(call(c, path, json{{"query", 3}, {"documents", {"a"}}}), 400, "Bad Request", "body.query");
    expect_vllm_error(call(c, path, json{{"query", "q"}, {"documents", {"a"}}, {"top_n", "two"}}), 400, "Bad Request",
                      "body.top_n");
    expect_vllm_error(call(c, path, json{{"query", "q"}, {"documents", {1}}}), 400, "Bad Request", "body.documents");
  }
  expect_vllm_error(call(c, "/v1/rerank", json{{"documents", {"a"}}}), 400, "Bad Request", "body.query");
  expect_vllm_error(call(c, "/v2/rerank", json{{"query", "q"}}), 400, "Bad Request", "body.documents");
  expect_vllm_error(call(c, "/v2/rerank", std::string("{")), 400, "Bad Request");
}

// ---- OpenRLHF remote reward ----

TEST_F(Protocols, OpenRlhfRewardsArePointwiseScoresAgainstTheLabels) {
  auto c = server_->client();
  // As openrlhf/utils/agent.py builds it: query = decoded prompt + response; prompts; labels.
  const std::vector<std::string> prompts = {"hello!", "I love you!", "hello!"};
  const std::vector<std::string> responses = {"hi!", "I hate you!", " f**k off!"};
  const json labels = {"hi there!", nullptr, 42};
  json query = json::array();
  for (size_t i = 0; i < prompts.size(); ++i) query.push_back(prompts[i] + responses[i]);
  for (const char* path : {"/get_reward", "/"}) {
    SCOPED_TRACE(path);
    const Answer a = call(c, path, json{{"query", query}, {"prompts", prompts}, {"labels", labels}});
    ASSERT_EQ(a.status, 200) << a.body.dump();
    ASSERT_EQ(a.body["rewards"].size(), 3u);
    ASSERT_EQ(a.body["scores"].size(), 3u);
    const std::vector<std::string> refs = {"hi there!", "", "42"};  // null: the server's reference ("")
    for (size_t i = 0; i < 3; ++i) {
      const double want = pointwise(c, prompts[i], responses[i], refs[i]);
      EXPECT_EQ(a.body["rewards"][i].get<double>(), want) << i;  // = /compare of the response against its label
      EXPECT_NEAR(a.body["scores"][i].get<double>(), sigmoid(want), 1e-15) << i;
      EXPECT_EQ(a.body["extra_logs"]["pairrm_prompt_match"][i], 1.0);
    }
  }
  // One query per request (what OpenRLHF sends now), no labels at all.
  const Answer one = call(c, "/get_reward", json{{"query", {"hello!hi!"}}, {"prompts", {"hello!"}}});
  ASSERT_EQ(one.body["rewards"].size(), 1u) << one.body.dump();
  EXPECT_EQ(one.body["rewards"][0].get<double>(), pointwise(c, "hello!", "hi!"));
  // A query that does not start with its prompt: what follows their common prefix, flagged in extra_logs.
  const Answer off = call(c, "/get_reward", json{{"query", {"hello?hi!"}}, {"prompts", {"hello!"}}, {"labels", {nullptr}}});
  ASSERT_EQ(off.body["rewards"].size(), 1u) << off.body.dump();
  EXPECT_EQ(off.body["rewards"][0].get<double>(), pointwise(c, "hello!", "?hi!"));
  EXPECT_EQ(off.body["extra_logs"]["pairrm_prompt_match"][0], 0.0);
  // An empty batch is an empty answer.
  const Answer none = call(c, "/get_reward", json{{"query", json::array()}, {"prompts", json::array()}});
  EXPECT_EQ(none.status, 200);
  EXPECT_EQ(none.body["rewards"], json::array());
}

TEST_F(Protocols, OpenRlhfBadRequestsGetPairrmsErrors) {
  auto c = server_->client();
  for (const json& body : {json{{"prompts", {"p"}}}, json{{"query", {"pq"}}}, json{{"query", {"pq"}}, {"prompts", {"p", "x"}}},
                           json{{"query", {"pq"}}, {"prompts", {"p"}}, {"labels", {"a", "b"}}},
                           json{{"query", {"pq"}}, {"prompts", {"p"}}, {"labels", {json::object()}}}, json{{"query", {1}}, {"prompts", {"p"}}}}) {
    const Answer a = call(c, "/get_reward", body);
    EXPECT_EQ(a.status, 422) << body.dump();
    EXPECT_EQ(a.body["status"], 422);
    EXPECT_TRUE(a.body["error"].is_string());
  }
  EXPECT_EQ(call(c, "/get_reward", std::string("nope")).status, 400);
}

// ---- --reference others and --reference-text ----

TEST(ProtocolsPolicy, OthersRanksTheTextsOfARequestAsRankDoes) {
  ServerProcess server(tiny_args({"--reference", "others", "--reference-text", "I don't know."}));
  auto c = server.client();
  for (const auto& rc : test::entries(test::model_text_cases("tiny"), "rank_cases")) {
    const auto texts = rc["candidates"].get<std::vector<std::string>>();
    const std::string q = rc["source"];
    const Answer rank = call(c, "/rank", json{{"source", q}, {"candidates", texts}});
    const Answer tei = call(c, "/rerank", json{{"query", q}, {"texts", texts}, {"raw_scores", true}});
    ASSERT_EQ(rank.status, 200) << rank.body.dump();
    ASSERT_EQ(rank.body["scores"].size(), texts.size()) << rank.body.dump();
    ASSERT_EQ(tei.status, 200) << tei.body.dump();
    ASSERT_EQ(tei.body.size(), texts.size()) << tei.body.dump();
    for (const auto& r : tei.body) {
      const size_t i = r["index"];
      if (texts.size() > 1)
        EXPECT_EQ(r["score"], rank.body["scores"][i]);  // bitwise /rank
      else  // one text has no other to meet: the fixed text, never 0
        EXPECT_EQ(r["score"].get<double>(), pointwise(c, q, texts[i], "I don't know."));
    }
  }
  // OpenRLHF: the samples of one prompt are ranked against each other; a labelled one uses its label.
  const Answer a = call(c, "/get_reward", json{{"query", {"hello!hi!", "hello!bye!", "hello!yo", "x?y"}},
                                               {"prompts", {"hello!", "hello!", "hello!", "x?"}},
                                               {"labels", {nullptr, nullptr, "hey", nullptr}}});
  ASSERT_EQ(a.status, 200) << a.body.dump();
  ASSERT_EQ(a.body["rewards"].size(), 4u) << a.body.dump();
  const Answer rank = call(c, "/rank", json{{"source", "hello!"}, {"candidates", {"hi!", "bye!"}}});
  ASSERT_EQ(rank.body["scores"].size(), 2u) << rank.body.dump();
  EXPECT_EQ(a.body["rewards"][0], rank.body["scores"][0]);
  EXPECT_EQ(a.body["rewards"][1], rank.body["scores"][1]);
  EXPECT_EQ(a.body["rewards"][2].get<double>(), pointwise(c, "hello!", "yo", "hey"));
  EXPECT_EQ(a.body["rewards"][3].get<double>(), pointwise(c, "x?", "y", "I don't know."));
  // A group is ranked all-pairs under "others": more samples of one prompt than --max-candidates (32) is a 413,
  // as for any ranking (64 would cost 64·63 passes).
  json many_q = json::array(), many_p = json::array();
  for (int i = 0; i < 33; ++i) {
    many_q.push_back("hello!" + std::to_string(i));
    many_p.push_back("hello!");
  }
  EXPECT_EQ(call(c, "/get_reward", json{{"query", many_q}, {"prompts", many_p}}).status, 413);
  auto info = c.Get("/info");
  ASSERT_TRUE(info);
  EXPECT_EQ(json::parse(info->body)["pointwise_reference"], (json{{"policy", "others"}, {"text", "I don't know."}}));
  EXPECT_EQ(server.stop(), 0);
}

// ---- the bundled random-weight model ----

// Runs `pairrm serve` with args, its stderr in a file, and returns (/info, stderr).
std::pair<json, std::string> info_and_stderr(const std::vector<std::string>& args) {
  char path[] = "/tmp/pairrm_serve_stderr_XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) throw std::runtime_error("mkstemp");
  fflush(stderr);
  const int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);  // the server inherits it
  std::unique_ptr<ServerProcess> server;
  try {
    server = std::make_unique<ServerProcess>(args);
  } catch (...) {
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    throw;
  }
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fd);
  auto c = server->client();
  auto res = c.Get("/info");
  const json info = res ? json::parse(res->body) : json();
  EXPECT_EQ(server->stop(), 0);  // everything it wrote is in the file once it exited
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::filesystem::remove(path);
  return {info, ss.str()};
}

TEST(ProtocolsModel, TheBundledRandomWeightModelIsFlaggedOnStderrAndInInfo) {
  // No --model: the bundled model (with $PAIRRM_MODEL unset for the child).
  const char* env = std::getenv("PAIRRM_MODEL");
  const std::string saved_env = env ? env : "";
  unsetenv("PAIRRM_MODEL");
  auto [info, err] = info_and_stderr({"--threads", "1"});
  if (env) setenv("PAIRRM_MODEL", saved_env.c_str(), 1);
  EXPECT_EQ(info["random_weights"], true) << info.dump();
  EXPECT_NE(info["warning"].get<std::string>().find("RANDOM-WEIGHT"), std::string::npos);
  EXPECT_NE(err.find("pairrm serve: warning: this server runs the bundled tiny RANDOM-WEIGHT test model"), std::string::npos)
      << err;
  // Named explicitly, it is the same model.
  auto [named, named_err] = info_and_stderr({"--model", test::bundled_model_dir(), "--threads", "1"});
  EXPECT_EQ(named["random_weights"], true);
  EXPECT_NE(named_err.find("RANDOM-WEIGHT"), std::string::npos) << named_err;
  // Any other model: no warning.
  auto [other, other_err] = info_and_stderr(tiny_args());
  EXPECT_EQ(other["random_weights"], false);
  EXPECT_FALSE(other.contains("warning"));
  EXPECT_EQ(other_err.find("RANDOM-WEIGHT"), std::string::npos) << other_err;
}

// ---- the real client libraries (tests/clients: cohere-ai, openai from npm) ----

TEST(ProtocolClients, NpmClients) {
  const std::string dir = std::string(PAIRRM_SOURCE_DIR) + "/tests/clients";
  const char* ci = std::getenv("CI");
  const bool in_ci = ci && *ci;  // any non-empty CI, as every other set-up check in the tests reads it
  const bool ready = std::system("node --version > /dev/null 2>&1") == 0 &&
                     std::filesystem::exists(dir + "/node_modules/cohere-ai/package.json") &&
                     std::filesystem::exists(dir + "/node_modules/openai/package.json");
  if (!ready) {
    const std::string why = "node or tests/clients/node_modules missing: run `npm ci --prefix tests/clients` (scripts/setup.sh --dev does)";
    if (in_ci) FAIL() << why;  // CI installs them: their absence is a broken set-up, not a skip
    GTEST_SKIP() << why;
  }
  // With an API key: the clients must send it as their own APIs expect (Authorization: Bearer).
  ServerProcess server(tiny_args({"--api-key", "client-key"}));
  const std::string cmd = "cd '" + dir + "' && PAIRRM_URL=http://127.0.0.1:" + std::to_string(server.port()) +
                          " PAIRRM_API_KEY=client-key node --test --test-reporter=spec protocols.test.mjs 2>&1";
  const int rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << "node --test failed (its output is above)";
  EXPECT_EQ(server.stop(), 0);
}

}  // namespace
}  // namespace pairrm
