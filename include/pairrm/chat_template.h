// Chat-template markup in the texts RL frameworks send a reward model: a prompt rendered with the policy's
// chat template and a generation decoded with its special tokens (OpenRLHF's query, verl's /classify input,
// AReaL's prompt). PairRM was trained on plain text, so the markup is read back into messages and end
// markers are cut off before scoring. ChatML (Qwen, Yi, many fine-tunes) and Llama 3 are understood.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pairrm/ranking.h"

namespace pairrm {

enum class ChatTemplate {
  kNone,    // texts are scored as they are
  kAuto,    // whichever template's markup the text has (none: as it is, less end-of-text strings)
  kChatML,  // <|im_start|>role\n ... <|im_end|>
  kLlama3,  // <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\n ... <|eot_id|>
};
// "none" | "auto" | "chatml" | "llama3"; throws pairrm::Error otherwise.
ChatTemplate parse_chat_template(std::string_view name);
const char* chat_template_name(ChatTemplate kind);

struct ChatTemplateOptions {
  ChatTemplate kind = ChatTemplate::kNone;
  // End-of-text strings cut from the end besides the template's own (<|im_end|>, <|endoftext|>; <|eot_id|>,
  // <|eom_id|>, <|end_of_text|>; and </s> under kAuto): a policy's EOS or pad token.
  std::vector<std::string> eos_strings;
};

struct ChatMessage {
  std::string role;  // as the markup names it ("system", "user", "assistant", "tool", ...); "" for text before the first turn
  std::string content;
  bool closed = false;  // ended by the template's end-of-turn marker (false: the text ended first, a generation)
};

// The messages the markup of `text` delimits, in order, each content trimmed of the whitespace the template
// puts around it and of trailing end-of-text strings. nullopt when the text has no turn of the template
// (under kAuto: of either), and always under kNone.
std::optional<std::vector<ChatMessage>> read_chat_messages(std::string_view text, const ChatTemplateOptions& options);

// The messages as the turns PairRM compares (USER/ASSISTANT alternating from a USER turn): system and
// developer messages go before the first user turn's text, a line each; tool results and text outside the
// turns are input to the next assistant turn, so they join the user's side; consecutive messages of one
// side are joined by a line; an exchange opened by the assistant gets an empty USER turn first. With
// `drop_generation_prompt`, an empty, open assistant turn last (what a prompt rendered with
// add_generation_prompt ends with) is dropped.
Conversation chat_turns(const std::vector<ChatMessage>& messages, bool drop_generation_prompt);

// `text` less the end-of-turn and end-of-text strings at its end (repeated ones too: padding) and the
// whitespace before them; unchanged under kNone or when it ends with none.
std::string strip_end_of_text(std::string_view text, const ChatTemplateOptions& options);

}  // namespace pairrm
