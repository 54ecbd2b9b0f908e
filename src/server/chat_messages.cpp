#include "server/chat_messages.h"

#include <stdexcept>

namespace pairrm::server {
namespace {

using nlohmann::json;

// A message's text: a string, or the OpenAI content parts [{type: "text", text}, ...] joined (images and
// other parts are refused: PairRM scores text).
std::string content_text(const json& content, const std::string& where) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_null()) return "";
  if (!content.is_array()) throw std::invalid_argument(where + ": content must be a string or a list of text parts");
  std::string text;
  for (const json& part : content) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
      throw std::invalid_argument(where + ": only text content parts ({\"type\": \"text\", \"text\": ...}) can be scored");
    text += part["text"].get<std::string>();
  }
  return text;
}

}  // namespace

ChatAnswer chat_answer(const json& messages) {
  if (!messages.is_array()) throw std::invalid_argument("messages must be a list of {role, content} objects");
  if (messages.empty()) throw std::invalid_argument("messages is empty: PairRM scores an assistant answer");
  std::string system;
  ChatAnswer out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string where = "messages[" + std::to_string(i) + "]";
    const json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw std::invalid_argument(where + " must be an object with a string role");
    const std::string role = m["role"].get<std::string>();
    const std::string text = content_text(m.contains("content") ? m["content"] : json(), where);
    if (role == "system" || role == "developer") {
      if (!out.turns.empty()) throw std::invalid_argument(where + ": a " + role + " message after the conversation began");
      system += text + "\n";
      continue;
    }
    const bool user_turn = out.turns.size() % 2 == 0;
    if (role != (user_turn ? "user" : "assistant"))
      throw std::invalid_argument(where + ": role '" + role + "', expected '" + (user_turn ? "user" : "assistant") +
                                  "' (the turns alternate user, assistant, from a user turn)");
    out.turns.push_back({user_turn ? "USER" : "ASSISTANT", out.turns.empty() ? system + text : text});
  }
  if (out.turns.empty() || out.turns.size() % 2 != 0)
    throw std::invalid_argument("the last message must be the assistant's answer: PairRM scores an answer to a prompt");
  return out;
}

PointwiseGroup ChatAnswer::group(const std::optional<std::string>& reference, const std::string& fixed_reference) const {
  if (turns.size() == 2) return {turns[0].content, {turns[1].content}, {reference}};
  Conversation against = turns;
  against.back().content = reference.value_or(fixed_reference);
  const Comparison c = conversation_comparison(turns, against);
  return {c.source, {c.candidate_a}, {c.candidate_b}};
}

std::optional<ChatAnswer> templated_answer(std::string_view text, const ChatTemplateOptions& options) {
  const auto messages = read_chat_messages(text, options);
  if (!messages) return std::nullopt;
  ChatAnswer out{chat_turns(*messages, false)};
  if (out.turns.empty() || out.turns.back().role != "ASSISTANT")
    throw std::invalid_argument(std::string("the text has ") + chat_template_name(options.kind) +
                                " chat markup but no assistant turn last: PairRM scores an answer to a prompt");
  return out;
}

void add_answer(PointwiseBatch& batch, const ChatAnswer& answer, const std::optional<std::string>& reference,
                const std::string& fixed_reference) {
  if (answer.turns.size() == 2) batch.add(answer.turns[0].content, answer.turns[1].content, reference);
  else batch.add_alone(answer.group(reference, fixed_reference));
}

}  // namespace pairrm::server
