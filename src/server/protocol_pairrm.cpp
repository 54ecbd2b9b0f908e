// pairrm's own endpoints: the CLI's JSONL jobs (/compare, /rank, /best_of_n, /compare_conversations), one
// item or {"items": [...]} per request, pairrm's own error body.
#include "server/endpoints.h"
#include "server/request_fields.h"

namespace pairrm::server {

using nlohmann::json;
using jobs::OrderedJson;

void Endpoints::add_pairrm_routes() {
  add("/compare", [this](const json& body, Scorer& s) {
    auto job = jobs::make_job({.command = "compare", .mode = option<std::string>(body, "mode", "both")});
    return run_items(*job, body, s);
  });
  add("/rank", [this](const json& body, Scorer& s) {
    std::optional<std::string> ref;
    const json& o = options_of(body);
    if (o.contains("with_ref") && o["with_ref"].is_boolean()) {
      if (o["with_ref"].get<bool>()) ref = "longest";
    } else if (o.contains("with_ref") && !o["with_ref"].is_null()) {
      ref = option<std::string>(body, "with_ref", "longest");
      parse_reference_mode(*ref);  // 422 for an unknown mode, before any work
    }
    // A reference given with the item (the body, or any of its items) ranks against it: leaving it out
    // unless the body also had one at the top would silently rank those items without their reference.
    if (!ref && any_item_has(body, "reference")) ref = "given";
    auto job = jobs::make_job({.command = "rank", .with_ref = ref, .limits = limits()});
    return run_items(*job, body, s);
  });
  add("/best_of_n", [this](const json& body, Scorer& s) {
    jobs::JobSpec spec{.command = option<bool>(body, "worst", false) ? "worst-of-n" : "best-of-n",
                      .method = option<std::string>(body, "method", "bubble"),
                      .return_all = option<bool>(body, "return_all", false),
                      .limits = limits()};
    const json& seed = option<json>(body, "seed", nullptr);
    if (!seed.is_null() && !seed.is_number_unsigned()) throw std::invalid_argument("seed must be an integer >= 0");
    if (!seed.is_null()) spec.seed = seed.get<uint64_t>();
    auto job = jobs::make_job(spec);
    return run_items(*job, body, s);
  });
  add("/compare_conversations", [this](const json& body, Scorer& s) {
    auto job = jobs::make_job({.command = "compare-conversations", .mode = option<std::string>(body, "mode", "both")});
    return run_items(*job, body, s);
  });

}

// One item (the body), or {"items": [...]} / a bare array -> {"results": [...]}.
OrderedJson Endpoints::run_items(jobs::JsonlJob& job, const json& body, Scorer& scorer) const {
  const bool list = body.is_array() || (body.is_object() && body.contains("items"));
  const json& items = body.is_array() ? body : list ? body["items"] : body;
  if (list && !items.is_array()) throw std::invalid_argument("field 'items' must be a list");
  if (!list && !items.is_object()) throw std::invalid_argument("the body must be a JSON object or a list of them");
  if (list && items.empty()) throw std::invalid_argument("no items");
  if (list && items.size() > options_.max_items)
    throw BadRequest(413, std::to_string(items.size()) + " items, over the limit of " +
                              std::to_string(options_.max_items) + " per request (--max-items)");
  const size_t n = list ? items.size() : 1;
  for (size_t k = 0; k < n; ++k) {
    const json& item = list ? items[k] : items;
    if (!item.is_object()) throw std::invalid_argument("item " + std::to_string(k) + " must be a JSON object");
    try {
      job.add(item);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(list ? "item " + std::to_string(k) + ": " + e.what() : e.what());
    }
  }
  const std::vector<OrderedJson> records = job.run(scorer);
  auto with_id = [&](size_t k) {
    const json& item = list ? items[k] : items;
    if (!item.contains("id")) return records[k];
    OrderedJson o{{"id", item["id"]}};
    for (const auto& [key, value] : records[k].items()) o[key] = value;
    return o;
  };
  if (!list) return with_id(0);
  OrderedJson out{{"results", OrderedJson::array()}};
  for (size_t k = 0; k < n; ++k) out["results"].push_back(with_id(k));
  return out;
}

}  // namespace pairrm::server
