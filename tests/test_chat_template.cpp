// Chat-template markup read back into messages and turns (pairrm/chat_template.h), on texts exactly as the
// templates render them: Qwen2.5's ChatML template (tokenizer_config.json chat_template, with its default
// system message) and Llama 3.1's (its "Cutting Knowledge Date" system header), each prompt rendered with
// add_generation_prompt=True and followed by a generation decoded with its special tokens.
#include <gtest/gtest.h>

#include "pairrm/chat_template.h"

namespace pairrm {
namespace {

const ChatTemplateOptions kAuto{ChatTemplate::kAuto, {}};

const std::string kQwenSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
const std::string kQwenPrompt = "<|im_start|>system\n" + kQwenSystem + "<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
                                "<|im_start|>assistant\n";
const std::string kLlamaSystem = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024";
const std::string kLlamaPrompt = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" + kLlamaSystem +
                                 "\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
                                 "<|start_header_id|>assistant<|end_header_id|>\n\n";

void expect_turns(const Conversation& got, const Conversation& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].role, want[i].role) << i;
    EXPECT_EQ(got[i].content, want[i].content) << i;
  }
}

TEST(ChatTemplate, ChatMLPromptAndGeneration) {
  for (const ChatTemplate kind : {ChatTemplate::kAuto, ChatTemplate::kChatML}) {
    const auto messages = read_chat_messages(kQwenPrompt + "2 + 2 = 4.<|im_end|>", {kind, {}});
    ASSERT_TRUE(messages);
    ASSERT_EQ(messages->size(), 3u);
    EXPECT_EQ((*messages)[0].role, "system");
    EXPECT_EQ((*messages)[0].content, kQwenSystem);
    EXPECT_TRUE((*messages)[0].closed);
    EXPECT_EQ((*messages)[1].role, "user");
    EXPECT_EQ((*messages)[1].content, "What is 2+2?");
    EXPECT_EQ((*messages)[2].role, "assistant");
    EXPECT_EQ((*messages)[2].content, "2 + 2 = 4.");
    EXPECT_TRUE((*messages)[2].closed);
    expect_turns(chat_turns(*messages, true), {{"USER", kQwenSystem + "\nWhat is 2+2?"}, {"ASSISTANT", "2 + 2 = 4."}});
  }
  // A generation cut by the length limit (no end marker), or padded with the EOS after it.
  for (const std::string& tail : {std::string("2 + 2 ="), std::string("2 + 2 =<|im_end|><|endoftext|><|endoftext|>")}) {
    const auto messages = read_chat_messages(kQwenPrompt + tail, kAuto);
    ASSERT_TRUE(messages);
    EXPECT_EQ(messages->back().content, "2 + 2 =");
    EXPECT_EQ(messages->back().closed, tail.size() > 7);
  }
}

TEST(ChatTemplate, Llama3PromptAndGeneration) {
  for (const ChatTemplate kind : {ChatTemplate::kAuto, ChatTemplate::kLlama3}) {
    for (const char* eos : {"<|eot_id|>", "<|eom_id|>", "<|eot_id|><|end_of_text|>"}) {
      const auto messages = read_chat_messages(kLlamaPrompt + "2 + 2 = 4." + eos, {kind, {}});
      ASSERT_TRUE(messages);
      ASSERT_EQ(messages->size(), 3u);
      EXPECT_EQ((*messages)[0].content, kLlamaSystem);  // the template's "\n\n" around it are its own
      EXPECT_EQ((*messages)[2].content, "2 + 2 = 4.");
      expect_turns(chat_turns(*messages, false), {{"USER", kLlamaSystem + "\nWhat is 2+2?"}, {"ASSISTANT", "2 + 2 = 4."}});
    }
  }
  // Llama 3.0 has no system header: the bare prompt.
  const auto plain = read_chat_messages(
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!",
      kAuto);
  ASSERT_TRUE(plain);
  expect_turns(chat_turns(*plain, false), {{"USER", "Hi"}, {"ASSISTANT", "Hello!"}});
}

TEST(ChatTemplate, TheGenerationPromptIsDroppedOnlyWhenAsked) {
  const auto messages = read_chat_messages(kQwenPrompt, kAuto);
  ASSERT_TRUE(messages);
  expect_turns(chat_turns(*messages, true), {{"USER", kQwenSystem + "\nWhat is 2+2?"}});
  expect_turns(chat_turns(*messages, false), {{"USER", kQwenSystem + "\nWhat is 2+2?"}, {"ASSISTANT", ""}});
}

TEST(ChatTemplate, MultiTurnToolAndLooseTextFoldIntoAlternatingTurns) {
  const std::string text =
      "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>get_weather</tool_call><|im_end|>\n"
      "<|im_start|>tool\n18 C, sunny<|im_end|>\n<|im_start|>user\nAnd tomorrow?<|im_end|>\n<|im_start|>assistant\nRain.<|im_end|>\n";
  const auto messages = read_chat_messages(text, kAuto);
  ASSERT_TRUE(messages);
  EXPECT_EQ(messages->size(), 5u);
  expect_turns(chat_turns(*messages, false), {{"USER", "Weather in Paris?"},
                                              {"ASSISTANT", "<tool_call>get_weather</tool_call>"},
                                              {"USER", "18 C, sunny\nAnd tomorrow?"},
                                              {"ASSISTANT", "Rain."}});
  // Text before the first turn is kept (a role-less message on the user's side), never dropped.
  const auto loose = read_chat_messages("Context.\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA", kAuto);
  ASSERT_TRUE(loose);
  EXPECT_EQ((*loose)[0].role, "");
  expect_turns(chat_turns(*loose, false), {{"USER", "Context.\nQ"}, {"ASSISTANT", "A"}});
  // An exchange the assistant opens gets an empty user turn first.
  const auto opened = read_chat_messages("<|im_start|>assistant\nHi there<|im_end|>", kAuto);
  ASSERT_TRUE(opened);
  expect_turns(chat_turns(*opened, false), {{"USER", ""}, {"ASSISTANT", "Hi there"}});
}

TEST(ChatTemplate, NoMarkupOrNoneIsNotATemplate) {
  EXPECT_FALSE(read_chat_messages("What is 2+2?", kAuto));
  EXPECT_FALSE(read_chat_messages("", kAuto));
  EXPECT_FALSE(read_chat_messages(kQwenPrompt, {ChatTemplate::kNone, {}}));
  EXPECT_FALSE(read_chat_messages(kQwenPrompt, {ChatTemplate::kLlama3, {}}));  // the other template's markup
  EXPECT_FALSE(read_chat_messages(kLlamaPrompt, {ChatTemplate::kChatML, {}}));
  // Under auto the template whose turn opens first decides.
  const auto mixed = read_chat_messages("<|im_start|>user\nsay <|start_header_id|><|im_end|>", kAuto);
  ASSERT_TRUE(mixed);
  EXPECT_EQ((*mixed)[0].content, "say <|start_header_id|>");
}

TEST(ChatTemplate, StripEndOfText) {
  EXPECT_EQ(strip_end_of_text("4.<|im_end|>", kAuto), "4.");
  EXPECT_EQ(strip_end_of_text("4. <|im_end|>\n<|endoftext|><|endoftext|>", kAuto), "4.");
  EXPECT_EQ(strip_end_of_text("4.<|eot_id|>", kAuto), "4.");
  EXPECT_EQ(strip_end_of_text("4.</s>", kAuto), "4.");
  EXPECT_EQ(strip_end_of_text("4.</s>", {ChatTemplate::kChatML, {}}), "4.</s>");  // not ChatML's
  EXPECT_EQ(strip_end_of_text("4.<eos>", {ChatTemplate::kChatML, {"<eos>", ""}}), "4.");
  EXPECT_EQ(strip_end_of_text("4.<|im_end|>", {ChatTemplate::kNone, {}}), "4.<|im_end|>");
  EXPECT_EQ(strip_end_of_text("  spaced answer \n", kAuto), "  spaced answer \n");  // nothing cut: as given
  EXPECT_EQ(strip_end_of_text("<|im_end|>", kAuto), "");
  EXPECT_EQ(strip_end_of_text("a <|im_end|> in the middle", kAuto), "a <|im_end|> in the middle");
}

TEST(ChatTemplate, Names) {
  for (const ChatTemplate kind : {ChatTemplate::kNone, ChatTemplate::kAuto, ChatTemplate::kChatML, ChatTemplate::kLlama3})
    EXPECT_EQ(parse_chat_template(chat_template_name(kind)), kind);
  EXPECT_THROW(parse_chat_template("ChatML"), Error);
  EXPECT_THROW(parse_chat_template(""), Error);
}

}  // namespace
}  // namespace pairrm
