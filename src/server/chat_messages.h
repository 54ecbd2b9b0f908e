// A chat request's messages (vLLM's `messages`: [{role, content}], content a string or a list of text
// parts) as what PairRM scores: the last message is the answer (role "assistant"), the turns before it its
// prompt. One user turn and its answer score as /rerank scores that prompt and answer; a longer exchange is
// built as compare_conversations builds one (spec section 5), the reference taking the last answer's place.
// System (and developer) messages go before the first user turn's text, a line each.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "pairrm/chat_template.h"
#include "pairrm/ranking.h"
#include "server/pointwise.h"

namespace pairrm::server {

struct ChatAnswer {
  Conversation turns;  // USER/ASSISTANT alternating from a USER turn; the last is the answer scored

  // The pointwise group that scores the answer against `reference` (nullopt: the server's policy decides;
  // a longer exchange needs the text itself, `fixed_reference`, in the answer's place).
  PointwiseGroup group(const std::optional<std::string>& reference, const std::string& fixed_reference) const;
};

// Throws std::invalid_argument naming the message at fault (no messages, a role PairRM cannot place, a
// non-text part, no assistant answer last, turns that do not alternate).
ChatAnswer chat_answer(const nlohmann::json& messages);

// A chat-templated text (the server's --strip-chat-template: OpenRLHF's query, an /classify input) read
// back as an answer: its turns as chat_turns() folds them, the last (the assistant's, open or closed) the
// answer. nullopt when the template is off or the text has no turn of it; throws std::invalid_argument
// when it has turns but no assistant turn last.
std::optional<ChatAnswer> templated_answer(std::string_view text, const ChatTemplateOptions& options);

// Adds `answer` to `batch` with `reference`: a prompt and its answer as one text of the prompt's group, a
// longer exchange as a group of its own (its conversation against the reference, else `fixed_reference`).
void add_answer(PointwiseBatch& batch, const ChatAnswer& answer, const std::optional<std::string>& reference,
                const std::string& fixed_reference);

}  // namespace pairrm::server
