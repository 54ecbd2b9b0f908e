// Reading the protocols' request bodies: typed fields with the errors each protocol maps to its own shape
// (server/error_replies.h), shared by every protocol family's endpoints.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "server/scheduler.h"

namespace pairrm::server {

// A request over one of the size limits (items, candidates) is refused with 413 like the scheduler's refusals.
using BadRequest = ServeError;

// A field that is missing or has the wrong type: a schema error (pydantic's in vLLM: 400 "Bad Request" with
// `param`; serde's through axum in TEI: 422). `param` is vLLM's spelling of the place: "body.<field>".
class FieldError : public std::invalid_argument {
 public:
  FieldError(const std::string& field, const std::string& message)
      : std::invalid_argument(message), param_(field.empty() ? "body" : "body." + field) {}
  const std::string& param() const { return param_; }

 private:
  std::string param_;
};

// An empty list of inputs: TEI's ErrorType::Empty (400).
class EmptyInput : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// The object holding a request's options: the body itself (one item, or {"items": [...], options...}).
const nlohmann::json& options_of(const nlohmann::json& body);

// Option `key` of the body as T; `fallback` when it is missing or null.
template <typename T>
T option(const nlohmann::json& body, const char* key, T fallback) {
  const nlohmann::json& o = options_of(body);
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw std::invalid_argument(std::string("field '") + key + "' has the wrong type");
  }
}

// Whether the body (one item), or any item of {"items": [...]} or of a bare array, has the field.
bool any_item_has(const nlohmann::json& body, const char* key);
void require_object(const nlohmann::json& body);
// The value of `key`, or nullptr when it is missing or null (the protocols' optional fields).
const nlohmann::json* present(const nlohmann::json& body, const char* key);
std::string required_string(const nlohmann::json& body, const char* key);
bool optional_bool(const nlohmann::json& body, const char* key, bool fallback);
std::optional<long> optional_int(const nlohmann::json& body, const char* key);
// A string, or a list of strings (the protocols' `str | list[str]` fields); vLLM's multimodal content
// objects ({"content": [...]}) are refused: PairRM scores text only.
std::vector<std::string> strings(const nlohmann::json& body, const char* key);
// A list of strings (TEI's Vec<String>).
std::vector<std::string> string_list(const nlohmann::json& body, const char* key);
// A reference answer or label as text: a string, or a number/boolean written as JSON (OpenRLHF's labels
// may be numeric answers); null: none.
std::optional<std::string> label_text(const nlohmann::json& v, const char* key);
// The request's references for n texts: absent or null -> none; one value -> every text's; a list -> one
// per text.
std::vector<std::optional<std::string>> references(const nlohmann::json& body, const char* key, size_t n);

}  // namespace pairrm::server
