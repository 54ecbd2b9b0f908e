// One classification of what went wrong with a request, and the error body each protocol family gives
// for it: pairrm's {"error", "status"}, TEI's {"error", "error_type"}, vLLM's {"error": {message, type,
// param, code}} (the statuses differ too).
#pragma once
#include <exception>
#include <string>

#include "jobs/commands.h"

namespace pairrm::server {

struct Reply {
  int status = 200;
  std::string body;  // JSON
};

enum class ErrorStyle { kNative, kTei, kVllm };

enum class Kind {
  kSyntax,    // the body is not JSON
  kField,     // a field is missing or has the wrong type
  kEmpty,     // an empty input list
  kValue,     // a field's value is refused (std::invalid_argument)
  kInput,     // the engine refused a text (pairrm::Error: size, UTF-8, conversation shape)
  kServe,     // the server refused or abandoned the work (ServeError: 413, 429, 499, 503, 504)
  kInternal,  // anything else: 500
};

struct Failure {
  Kind kind;
  int status;  // pairrm's own status for it
  std::string message;
  std::string param;  // kField: vLLM's "body.<field>"
};

// What the exception thrown by a handler means (FieldError, EmptyInput, ServeError, pairrm::Error, ...).
Failure classify(std::exception_ptr e);
Reply reply_for(ErrorStyle style, const Failure& f);
// A result as JSON text (invalid UTF-8 replaced, never thrown on).
std::string dump(const jobs::OrderedJson& j);
// {"error": message, "status": status}: pairrm's own error body (also the HTTP layer's: 401, 404, 413).
std::string error_body(int status, const std::string& message);

}  // namespace pairrm::server
