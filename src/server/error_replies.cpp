#include "server/error_replies.h"

#include <nlohmann/json.hpp>

#include "pairrm/pairrm.h"
#include "server/request_fields.h"

namespace pairrm::server {
namespace {

using nlohmann::json;
using jobs::OrderedJson;

// TEI (router/src/lib.rs ErrorType, serialized by serde as the variant name; router/src/http/server.rs maps
// Empty -> 400, Validation/Tokenizer -> 422, Overloaded -> 429, Unhealthy -> 503, Backend -> 424). A body
// that axum cannot parse is 400 (syntax) or 422 (a missing or mistyped field) there, as here.
Reply tei_reply(const Failure& f) {
  int status = f.status;
  const char* type = "Validation";
  switch (f.kind) {
    case Kind::kSyntax: status = 400; break;
    case Kind::kField:
    case Kind::kValue: status = 422; break;
    case Kind::kEmpty:
      status = 400;
      type = "Empty";
      break;
    case Kind::kInput:
      status = 422;
      type = "Tokenizer";
      break;
    case Kind::kServe:
      type = f.status == 429 ? "Overloaded" : f.status == 503 ? "Unhealthy" : f.status == 413 ? "Validation" : "Backend";
      break;
    case Kind::kInternal: type = "Backend"; break;
  }
  return {status, dump(OrderedJson{{"error", f.message}, {"error_type", type}})};
}

// The reason phrase of a status, as Python's http.HTTPStatus spells it (vLLM's type for HTTP-level errors).
const char* phrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 413: return "Request Entity Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 499: return "Client Closed Request";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Internal Server Error";
  }
}

// vLLM (entrypoints/openai/engine/protocol.py ErrorResponse/ErrorInfo): {"error": {message, type, param,
// code}} with code = the HTTP status. Schema errors (the body, a missing or mistyped field) go through
// its RequestValidationError handler: 400, type "Bad Request", param = the field's place; a refused value
// is a ValueError in the serving code: 400 "BadRequestError", param null (serve/exception_handling).
Reply vllm_reply(const Failure& f) {
  int status = 400;
  std::string type = "BadRequestError";
  json param = nullptr;
  switch (f.kind) {
    case Kind::kSyntax: type = phrase(400); break;
    case Kind::kField:
      type = phrase(400);
      if (!f.param.empty()) param = f.param;
      break;
    case Kind::kEmpty:
    case Kind::kValue:
    case Kind::kInput: break;
    case Kind::kServe:
      status = f.status;
      type = phrase(f.status);
      break;
    case Kind::kInternal:
      status = 500;
      type = "InternalServerError";
      break;
  }
  const OrderedJson error{{"message", f.message}, {"type", type}, {"param", param}, {"code", status}};
  return {status, dump(OrderedJson{{"error", error}})};
}

}  // namespace

Failure classify(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const ServeError& x) {
    return {Kind::kServe, x.status(), x.what(), ""};
  } catch (const FieldError& x) {
    return {Kind::kField, 422, x.what(), x.param()};
  } catch (const EmptyInput& x) {
    return {Kind::kEmpty, 422, x.what(), ""};
  } catch (const std::invalid_argument& x) {  // a field's type or value (the JSONL parsers' errors)
    return {Kind::kValue, 422, x.what(), ""};
  } catch (const json::exception& x) {
    return {Kind::kField, 422, std::string("bad field: ") + x.what(), ""};
  } catch (const Error& x) {
    return {Kind::kInput, 422, x.what(), ""};
  } catch (const std::exception& x) {
    return {Kind::kInternal, 500, x.what(), ""};
  }
}

std::string dump(const OrderedJson& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Reply reply_for(ErrorStyle style, const Failure& f) {
  switch (style) {
    case ErrorStyle::kTei: return tei_reply(f);
    case ErrorStyle::kVllm: return vllm_reply(f);
    case ErrorStyle::kNative: break;
  }
  return {f.status, error_body(f.status, f.message)};
}

std::string error_body(int status, const std::string& message) {
  return json{{"error", message}, {"status", status}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace pairrm::server
