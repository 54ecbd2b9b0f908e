#include "server/request_fields.h"

namespace pairrm::server {

using nlohmann::json;

const json& options_of(const json& body) {
  static const json empty = json::object();
  return body.is_object() ? body : empty;
}

bool any_item_has(const json& body, const char* key) {
  const json* items = body.is_array() ? &body : body.is_object() && body.contains("items") ? &body["items"] : nullptr;
  if (!items) return body.is_object() && body.contains(key);
  if (!items->is_array()) return false;  // run_items answers 422 for it
  for (const json& item : *items)
    if (item.is_object() && item.contains(key)) return true;
  return false;
}

void require_object(const json& body) {
  if (!body.is_object()) throw FieldError("", "the body must be a JSON object");
}

const json* present(const json& body, const char* key) {
  auto it = body.find(key);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

std::string required_string(const json& body, const char* key) {
  const json* v = present(body, key);
  if (!v) throw FieldError(key, std::string("field '") + key + "' is required");
  if (!v->is_string()) throw FieldError(key, std::string("field '") + key + "' must be a string");
  return v->get<std::string>();
}

bool optional_bool(const json& body, const char* key, bool fallback) {
  const json* v = present(body, key);
  if (!v) return fallback;
  if (!v->is_boolean()) throw FieldError(key, std::string("field '") + key + "' must be true or false");
  return v->get<bool>();
}

std::optional<long> optional_int(const json& body, const char* key) {
  const json* v = present(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) throw FieldError(key, std::string("field '") + key + "' must be an integer");
  return v->get<long>();
}

std::vector<std::string> strings(const json& body, const char* key) {
  const json* v = present(body, key);
  if (!v) throw FieldError(key, std::string("field '") + key + "' is required");
  if (v->is_string()) return {v->get<std::string>()};
  auto bad = [&] { return FieldError(key, std::string("field '") + key + "' must be a string or a list of strings"); };
  if (v->is_object() && v->contains("content"))
    throw std::invalid_argument("MultiModalParam is not supported for PairRM (text only)");
  if (!v->is_array()) throw bad();
  std::vector<std::string> out;
  for (const json& e : *v) {
    if (e.is_object() && e.contains("content"))
      throw std::invalid_argument("MultiModalParam is not supported for PairRM (text only)");
    if (!e.is_string()) throw bad();
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::vector<std::string> string_list(const json& body, const char* key) {
  const json* v = present(body, key);
  if (!v) throw FieldError(key, std::string("field '") + key + "' is required");
  if (!v->is_array()) throw FieldError(key, std::string("field '") + key + "' must be a list of strings");
  return strings(body, key);
}

std::optional<std::string> label_text(const json& v, const char* key) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  throw FieldError(key, std::string("field '") + key + "' must hold strings, numbers or nulls");
}

std::vector<std::optional<std::string>> references(const json& body, const char* key, size_t n) {
  const json* v = present(body, key);
  if (!v) return {};
  if (!v->is_array()) return std::vector<std::optional<std::string>>(n, label_text(*v, key));
  if (v->size() != n)
    throw std::invalid_argument(std::string("field '") + key + "' has " + std::to_string(v->size()) +
                                " entries for " + std::to_string(n) + " texts");
  std::vector<std::optional<std::string>> out;
  for (const json& e : *v) out.push_back(label_text(e, key));
  return out;
}

}  // namespace pairrm::server
