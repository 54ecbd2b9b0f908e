// Every POST endpoint of `pairrm serve` on arbitrary bodies (endpoint chosen by the first byte's low bits,
// the pointwise reference policy by its top bit): the answer is always JSON with a 200 or a client-error
// status, never a crash or a 500.
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "fake_scorer.h"
#include "server/endpoints.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using namespace pairrm;
  static server::ServerOptions options = [] {
    server::ServerOptions o;
    o.max_candidates = 8;
    o.max_items = 8;
    o.max_passes = 256;
    return o;
  }();
  static server::ServerOptions others = [] {
    server::ServerOptions o = options;
    o.reference = "others";  // the texts of a request ranked against each other (/rerank, /score, rewards)
    o.reference_text = "a fixed reference";
    return o;
  }();
  static server::Endpoints fixed_endpoints(fuzz::tiny_model(), options);
  static server::Endpoints others_endpoints(fuzz::tiny_model(), others);
  const server::Endpoints& endpoints = data[0] & 0x80 ? others_endpoints : fixed_endpoints;
  static const std::vector<std::string> paths = fixed_endpoints.paths();
  const std::string& path = paths[(data[0] & 0x7f) % paths.size()];
  fuzz::FakeScorer scorer;
  const server::Reply r = endpoints.respond(path, std::string(reinterpret_cast<const char*>(data) + 1, size - 1), scorer);
  if (r.status != 200 && r.status != 400 && r.status != 413 && r.status != 422) std::abort();
  if (!nlohmann::json::accept(r.body)) std::abort();
  return 0;
}
