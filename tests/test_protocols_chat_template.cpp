// `pairrm serve --strip-chat-template`: OpenRLHF's queries (openrlhf/utils/agent.py: the prompt rendered with
// the policy's chat template + the generation decoded with its special tokens) and verl's /classify input
// (verl/experimental/reward_loop: apply_chat_template of prompt + response) read back as a prompt and an
// answer. Every reward must equal the one the same prompt and answer get without markup (/compare's
// pointwise score, or /classify's messages for a longer exchange), on texts as the templates render them.
#include <gtest/gtest.h>

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

const std::string kSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

// Qwen2.5's template (its default system message) with add_generation_prompt=True.
std::string chatml_prompt(const std::string& user) {
  return "<|im_start|>system\n" + kSystem + "<|im_end|>\n<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n";
}
// Llama 3's template (no system message) with add_generation_prompt=True.
std::string llama3_prompt(const std::string& user) {
  return "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n" + user +
         "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
}

class ChatTemplateServing : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stripping_ = new ServerProcess(tiny_args({"--strip-chat-template", "auto", "--eos-string", "<pad>"}));
    others_ = new ServerProcess(tiny_args({"--strip-chat-template", "chatml", "--reference", "others"}));
    as_sent_ = new ServerProcess(tiny_args());
  }
  static void TearDownTestSuite() {
    for (ServerProcess* s : {stripping_, others_, as_sent_}) {
      EXPECT_EQ(s->stop(), 0);
      delete s;
    }
  }
  // Every (prompt, answer) of the fixture's rank cases (a non-empty list).
  static std::vector<std::pair<std::string, std::string>> pairs() {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& rc : test::entries(test::model_text_cases("tiny"), "rank_cases"))
      for (const auto& text : rc["candidates"]) out.emplace_back(rc["source"], text);
    return out;
  }
  static ServerProcess* stripping_;
  static ServerProcess* others_;
  static ServerProcess* as_sent_;
};
ServerProcess* ChatTemplateServing::stripping_ = nullptr;
ServerProcess* ChatTemplateServing::others_ = nullptr;
ServerProcess* ChatTemplateServing::as_sent_ = nullptr;

std::vector<double> rewards(httplib::Client& c, const std::vector<std::string>& queries, const std::vector<std::string>& prompts) {
  const Answer a = call(c, "/get_reward", json{{"query", queries}, {"prompts", prompts}});
  if (a.status != 200) throw std::runtime_error("/get_reward: " + a.body.dump());
  return a.body["rewards"].get<std::vector<double>>();
}

TEST_F(ChatTemplateServing, OpenRlhfQueriesScoreTheirPromptAndAnswerWithoutMarkup) {
  auto c = stripping_->client();
  const auto all = pairs();
  ASSERT_GE(all.size(), 3u);
  std::vector<std::string> queries, prompts;
  std::vector<double> want;
  for (const auto& [prompt, answer] : all) {
    // ChatML with Qwen's EOS after the end of turn; Llama 3 with its own; and the --eos-string given.
    queries.push_back(chatml_prompt(prompt) + answer + "<|im_end|><|endoftext|>");
    prompts.push_back(chatml_prompt(prompt));
    want.push_back(pointwise(c, kSystem + "\n" + prompt, answer));
    queries.push_back(llama3_prompt(prompt) + answer + "<|eot_id|><pad><pad>");
    prompts.push_back(llama3_prompt(prompt));
    want.push_back(pointwise(c, prompt, answer));
  }
  EXPECT_EQ(rewards(c, queries, prompts), want);
  // Without the option the markup is text PairRM scores: a different number, which is why it exists.
  auto plain = as_sent_->client();
  EXPECT_NE(rewards(plain, {queries[0]}, {prompts[0]})[0], want[0]);
}

TEST_F(ChatTemplateServing, QueriesWithoutMarkupLoseOnlyTheirEndOfText) {
  auto c = stripping_->client();
  const std::string prompt = "Name a prime.", answer = "Seven.";
  EXPECT_EQ(rewards(c, {prompt + " " + answer + "</s>"}, {prompt}), std::vector<double>{pointwise(c, prompt, " " + answer)});
  EXPECT_EQ(rewards(c, {prompt + answer}, {prompt}), std::vector<double>{pointwise(c, prompt, answer)});
}

TEST_F(ChatTemplateServing, AMultiTurnQueryIsScoredAsItsConversation) {
  auto c = stripping_->client();
  const std::string prompt =
      "<|im_start|>user\nName a prime.<|im_end|>\n<|im_start|>assistant\n7<|im_end|>\n<|im_start|>user\nAnother one?<|im_end|>\n"
      "<|im_start|>assistant\n";
  const std::vector<double> got = rewards(c, {prompt + "11<|im_end|>"}, {prompt});
  const json messages = json::array({{{"role", "user"}, {"content", "Name a prime."}}, {{"role", "assistant"}, {"content", "7"}},
                                     {{"role", "user"}, {"content", "Another one?"}}, {{"role", "assistant"}, {"content", "11"}}});
  const Answer want = call(c, "/classify", json{{"messages", messages}, {"use_activation", false}});
  ASSERT_EQ(want.status, 200) << want.body.dump();
  EXPECT_EQ(got, std::vector<double>{want.body["data"][0]["probs"][0].get<double>()});
}

TEST_F(ChatTemplateServing, ReferenceOthersGroupsTheSamplesOfOnePrompt) {
  // OpenRLHF sends a prompt's samples in one request when its batch holds them (--reference others then
  // ranks them as TEI's /rerank ranks the same texts); a lone sample falls back to the fixed reference.
  auto c = others_->client();
  const std::string p1 = "What is the capital of France?", p2 = "Name a prime.";
  const std::vector<std::string> queries = {chatml_prompt(p1) + "Paris.<|im_end|>", chatml_prompt(p2) + "7<|im_end|>",
                                            chatml_prompt(p1) + "Lyon.<|im_end|>", chatml_prompt(p1) + "I don't know.<|im_end|>"};
  const std::vector<double> got = rewards(c, queries, {chatml_prompt(p1), chatml_prompt(p2), chatml_prompt(p1), chatml_prompt(p1)});
  const Answer group = call(c, "/rerank", json{{"query", kSystem + "\n" + p1}, {"texts", {"Paris.", "Lyon.", "I don't know."}},
                                               {"raw_scores", true}});
  ASSERT_EQ(group.status, 200) << group.body.dump();
  std::vector<double> want(3);
  for (const auto& r : group.body) want[r["index"].get<size_t>()] = r["score"].get<double>();
  EXPECT_EQ(got[0], want[0]);
  EXPECT_EQ(got[2], want[1]);
  EXPECT_EQ(got[3], want[2]);
  EXPECT_EQ(got[1], pointwise(c, kSystem + "\n" + p2, "7"));  // alone: against the fixed reference ""
}

TEST_F(ChatTemplateServing, ClassifyInputIsReadAsPromptAndAnswer) {
  // verl's discriminative reward loop: input = the chat-templated prompt + response; it reads
  // data[-1].probs[-1].
  auto c = stripping_->client();
  std::vector<std::string> inputs;
  std::vector<double> want;
  for (const auto& [prompt, answer] : pairs()) {
    inputs.push_back(chatml_prompt(prompt) + answer + "<|im_end|>\n");
    want.push_back(sigmoid(pointwise(c, kSystem + "\n" + prompt, answer)));
  }
  inputs.push_back("A plain answer.<|endoftext|>");  // no markup: an answer to no prompt, less its EOS
  want.push_back(sigmoid(pointwise(c, "", "A plain answer.")));
  const Answer a = call(c, "/classify", json{{"model", "rm"}, {"input", inputs}});
  ASSERT_EQ(a.status, 200) << a.body.dump();
  ASSERT_EQ(a.body["data"].size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(a.body["data"][i]["probs"][0].get<double>(), want[i]) << i;
}

TEST_F(ChatTemplateServing, MarkupWithoutAnAnswerIsRefusedInTheProtocolsShape) {
  auto c = stripping_->client();
  const std::string no_answer = "<|im_start|>user\nHello<|im_end|>\n";
  const Answer classify = call(c, "/classify", json{{"input", {"fine", no_answer}}});
  expect_vllm_error(classify, 400, "BadRequestError");
  EXPECT_NE(classify.body["error"]["message"].get<std::string>().find("input[1]"), std::string::npos) << classify.body.dump();
  const Answer reward = call(c, "/get_reward", json{{"query", {no_answer}}, {"prompts", {no_answer}}});
  EXPECT_EQ(reward.status, 422) << reward.body.dump();
  EXPECT_NE(reward.body["error"].get<std::string>().find("query[0]"), std::string::npos) << reward.body.dump();
  // The server still answers the next request.
  EXPECT_EQ(call(c, "/classify", json{{"input", "fine"}}).status, 200);
}

}  // namespace
}  // namespace pairrm
