#include "cli/jsonl_compare.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "cli/jsonl.h"

namespace pairrm::cli {

using nlohmann::json;

bool LineReader::next(std::string& line, bool& too_long) {
  line.clear();
  too_long = false;
  std::streambuf* sb = in_.rdbuf();
  bool any = false;
  for (;;) {
    const int c = sb->sbumpc();
    if (c == std::char_traits<char>::eof()) break;
    any = true;
    if (c == '\n') break;
    if (too_long) continue;
    if (line.size() >= max_) {
      too_long = true;
      line.clear();
      line.shrink_to_fit();
      continue;
    }
    line.push_back(static_cast<char>(c));
  }
  if (!any) return false;
  ++number_;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

namespace {

struct Pending {
  long line = 0;
  std::optional<std::string> error;
  json id;
  Comparison item;
};

std::string required_string(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) throw std::invalid_argument(std::string("missing field '") + key + "'");
  if (!it->is_string()) throw std::invalid_argument(std::string("field '") + key + "' must be a string");
  return it->get<std::string>();
}

Pending parse_line(const std::string& text, long number) {
  Pending p;
  p.line = number;
  try {
    const json j = json::parse(text);
    if (!j.is_object()) throw std::invalid_argument("line is not a JSON object");
    p.id = j.contains("id") ? j["id"] : json(nullptr);
    p.item.source = required_string(j, "source");
    p.item.candidate_a = required_string(j, "candidate_a");
    p.item.candidate_b = required_string(j, "candidate_b");
  } catch (const json::exception& e) {
    p.error = std::string("invalid JSON: ") + e.what();
  } catch (const std::exception& e) {
    p.error = e.what();
  }
  return p;
}

json error_record(long line, const std::string& message) { return json{{"line", line}, {"error", message}}; }

json result_record(const json& id, const CompareResult& r) {
  json o;
  o["id"] = id;
  if (r.has_ab) o["logit_ab"] = r.logit_ab;
  if (r.has_ba) o["logit_ba"] = r.logit_ba;
  o["score"] = r.score;
  o["a_better"] = r.a_better;
  return o;
}

void flush(Context& ctx, std::vector<Pending>& batch, std::ostream& out, const JsonlOptions& opt, JsonlStats& stats) {
  std::vector<Comparison> items;
  std::vector<size_t> index;
  for (size_t i = 0; i < batch.size(); ++i)
    if (!batch[i].error) {
      items.push_back(batch[i].item);
      index.push_back(i);
    }
  std::vector<CompareResult> results;
  try {
    results = ctx.compare(items, opt.mode);
  } catch (const Error&) {
    // One bad item (for example invalid UTF-8) fails the whole call: redo the batch one by one so that
    // only the bad lines report errors.
    results.clear();
    for (size_t k = 0; k < items.size(); ++k) {
      try {
        results.push_back(ctx.compare({items[k]}, opt.mode).at(0));
      } catch (const Error& e) {
        batch[index[k]].error = e.what();
        results.emplace_back();
      }
    }
  }
  size_t k = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const bool was_computed = k < index.size() && index[k] == i;  // parse errors never reach compare()
    const CompareResult* r = was_computed ? &results[k++] : nullptr;
    if (batch[i].error) {
      out << error_record(batch[i].line, *batch[i].error).dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
      ++stats.failed;
    } else {
      out << result_record(batch[i].id, *r).dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
      ++stats.ok;
    }
  }
  out.flush();
  batch.clear();
}

}  // namespace

JsonlStats compare_jsonl(Context& ctx, std::istream& in, std::ostream& out, const JsonlOptions& opt) {
  JsonlStats stats;
  LineReader reader(in, opt.max_line_bytes);
  std::vector<Pending> batch;
  std::string line;
  bool too_long = false;
  while (reader.next(line, too_long)) {
    if (too_long) {
      Pending p;
      p.line = reader.line_number();
      p.error = "line longer than " + std::to_string(opt.max_line_bytes) + " bytes";
      batch.push_back(std::move(p));
    } else if (line.find_first_not_of(" \t") == std::string::npos) {
      continue;
    } else {
      batch.push_back(parse_line(line, reader.line_number()));
    }
    if (batch.size() >= std::max<size_t>(1, opt.batch_lines)) flush(ctx, batch, out, opt, stats);
  }
  if (!batch.empty()) flush(ctx, batch, out, opt, stats);
  return stats;
}

}  // namespace pairrm::cli
