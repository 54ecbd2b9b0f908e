// Reading chat-template markup back into messages (pairrm/chat_template.h). The markers are those the
// templates' Jinja sources write: ChatML "<|im_start|>{role}\n{content}<|im_end|>\n" (Qwen2/2.5/3's
// tokenizer_config.json), Llama 3 "<|start_header_id|>{role}<|end_header_id|>\n\n{content | trim}<|eot_id|>"
// after "<|begin_of_text|>" (Meta-Llama-3/3.1/3.2's).
#include "pairrm/chat_template.h"

#include <algorithm>

#include "pairrm/pairrm.h"

namespace pairrm {
namespace {

struct Markup {
  std::string_view turn_start;               // opens a turn; the role follows
  std::string_view role_end;                 // ends the role; the content follows
  std::vector<std::string_view> turn_ends;   // end a turn's content
  std::vector<std::string_view> text_ends;   // the model's end of text (EOS, padding)
  std::vector<std::string_view> text_starts; // the model's start of text (BOS), before the first turn
};

const Markup kChatML{"<|im_start|>", "\n", {"<|im_end|>"}, {"<|endoftext|>"}, {}};
const Markup kLlama3{"<|start_header_id|>", "<|end_header_id|>", {"<|eot_id|>", "<|eom_id|>"}, {"<|end_of_text|>"},
                     {"<|begin_of_text|>"}};
// Under kAuto, also the EOS of the Llama 2 / Mistral family, which a decoded generation often ends with.
constexpr std::string_view kSentencePieceEos = "</s>";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool ends_with(std::string_view s, std::string_view end) {
  return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}

// The strings strip_end_of_text cuts for `kind`, the caller's included (an empty one would cut nothing).
std::vector<std::string_view> end_strings(ChatTemplate kind, const std::vector<std::string>& extra) {
  std::vector<std::string_view> out;
  auto add = [&](const Markup& m) {
    out.insert(out.end(), m.turn_ends.begin(), m.turn_ends.end());
    out.insert(out.end(), m.text_ends.begin(), m.text_ends.end());
  };
  if (kind == ChatTemplate::kChatML || kind == ChatTemplate::kAuto) add(kChatML);
  if (kind == ChatTemplate::kLlama3 || kind == ChatTemplate::kAuto) add(kLlama3);
  if (kind == ChatTemplate::kAuto) out.push_back(kSentencePieceEos);
  for (const std::string& s : extra)
    if (!s.empty()) out.push_back(s);
  return out;
}

std::string_view trim_end(std::string_view s) {
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string_view cut_end_strings(std::string_view text, const std::vector<std::string_view>& ends) {
  for (bool cut = true; cut;) {
    cut = false;
    const std::string_view trimmed = trim_end(text);
    for (std::string_view end : ends)
      if (ends_with(trimmed, end)) {
        text = trimmed.substr(0, trimmed.size() - end.size());
        cut = true;
        break;
      }
  }
  return text;
}

// Where the first of `needles` occurs in `text` from `from`, and which one; npos if none.
size_t find_first(std::string_view text, const std::vector<std::string_view>& needles, size_t from, size_t* length) {
  size_t best = std::string_view::npos;
  for (std::string_view n : needles) {
    const size_t at = text.find(n, from);
    if (at < best) {
      best = at;
      *length = n.size();
    }
  }
  return best;
}

// Text outside the turns (before the first, between two): kept, as a message of no role, unless it is
// only whitespace and the template's start- or end-of-text strings.
void add_loose_text(std::string_view text, const Markup& m, const std::vector<std::string_view>& ends,
                    std::vector<ChatMessage>& out) {
  std::string_view rest = trim(text);
  for (bool cut = true; cut;) {
    cut = false;
    for (std::string_view s : m.text_starts)
      if (rest.substr(0, s.size()) == s) {
        rest = trim(rest.substr(s.size()));
        cut = true;
      }
  }
  rest = trim(cut_end_strings(rest, ends));
  if (!rest.empty()) out.push_back({"", std::string(rest), false});
}

std::vector<ChatMessage> read_turns(std::string_view text, const Markup& m, const std::vector<std::string_view>& ends) {
  constexpr size_t npos = std::string_view::npos;
  std::vector<ChatMessage> out;
  size_t start = text.find(m.turn_start);
  add_loose_text(text.substr(0, start), m, ends, out);
  while (start != npos) {
    const size_t role_at = start + m.turn_start.size();
    const size_t next_start = text.find(m.turn_start, role_at);
    const size_t role_end = text.find(m.role_end, role_at);
    ChatMessage msg;
    size_t loose_at = npos;  // where the text after this turn's end marker begins
    if (role_end == npos || role_end > next_start) {  // a role and no content
      msg.role = std::string(trim(text.substr(role_at, next_start - role_at)));
    } else {
      msg.role = std::string(trim(text.substr(role_at, role_end - role_at)));
      const size_t content_at = role_end + m.role_end.size();
      size_t end_length = 0;
      const size_t turn_end = find_first(text, m.turn_ends, content_at, &end_length);
      msg.closed = turn_end != npos && turn_end < next_start;
      const size_t content_end = msg.closed ? turn_end : next_start;
      msg.content = std::string(trim(cut_end_strings(text.substr(content_at, content_end - content_at), ends)));
      if (msg.closed) loose_at = turn_end + end_length;
    }
    out.push_back(std::move(msg));
    if (loose_at != npos) add_loose_text(text.substr(loose_at, next_start - loose_at), m, ends, out);
    start = next_start;
  }
  return out;
}

}  // namespace

ChatTemplate parse_chat_template(std::string_view name) {
  if (name == "none") return ChatTemplate::kNone;
  if (name == "auto") return ChatTemplate::kAuto;
  if (name == "chatml") return ChatTemplate::kChatML;
  if (name == "llama3") return ChatTemplate::kLlama3;
  throw Error("unknown chat template '" + std::string(name) + "' (none, auto, chatml, llama3)");
}

const char* chat_template_name(ChatTemplate kind) {
  switch (kind) {
    case ChatTemplate::kAuto: return "auto";
    case ChatTemplate::kChatML: return "chatml";
    case ChatTemplate::kLlama3: return "llama3";
    case ChatTemplate::kNone: break;
  }
  return "none";
}

std::optional<std::vector<ChatMessage>> read_chat_messages(std::string_view text, const ChatTemplateOptions& options) {
  const Markup* markup = nullptr;
  switch (options.kind) {
    case ChatTemplate::kNone: return std::nullopt;
    case ChatTemplate::kChatML: markup = &kChatML; break;
    case ChatTemplate::kLlama3: markup = &kLlama3; break;
    case ChatTemplate::kAuto:  // the template whose turn opens first
      markup = text.find(kChatML.turn_start) <= text.find(kLlama3.turn_start) ? &kChatML : &kLlama3;
      break;
  }
  if (text.find(markup->turn_start) == std::string_view::npos) return std::nullopt;
  return read_turns(text, *markup, end_strings(options.kind, options.eos_strings));
}

Conversation chat_turns(const std::vector<ChatMessage>& messages, bool drop_generation_prompt) {
  size_t n = messages.size();
  if (drop_generation_prompt && n > 0 && messages[n - 1].role == "assistant" && !messages[n - 1].closed &&
      messages[n - 1].content.empty())
    --n;
  std::string system;
  Conversation turns;
  for (size_t i = 0; i < n; ++i) {
    const ChatMessage& m = messages[i];
    if ((m.role == "system" || m.role == "developer") && turns.empty()) {
      system += m.content + "\n";
      continue;
    }
    const char* side = m.role == "assistant" ? "ASSISTANT" : "USER";
    if (turns.empty() && m.role == "assistant") turns.push_back({"USER", ""});
    if (!turns.empty() && turns.back().role == side) {
      turns.back().content += "\n" + m.content;
    } else {
      turns.push_back({side, m.content});
    }
  }
  if (!turns.empty()) turns.front().content = system + turns.front().content;
  else if (!system.empty()) turns.push_back({"USER", system.substr(0, system.size() - 1)});
  return turns;
}

std::string strip_end_of_text(std::string_view text, const ChatTemplateOptions& options) {
  if (options.kind == ChatTemplate::kNone) return std::string(text);
  const std::string_view cut = cut_end_strings(text, end_strings(options.kind, options.eos_strings));
  return std::string(cut.size() == text.size() ? text : trim_end(cut));
}

}  // namespace pairrm
