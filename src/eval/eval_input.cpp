// Reading the inputs of `pairrm eval`: one pair file, or two response files joined on id.
#include <fstream>
#include <map>

#include "jobs/jsonl.h"
#include "eval/eval.h"

namespace pairrm::eval {
namespace {

using nlohmann::json;


// Calls f(where, object) for every non-blank line; a line that is not a JSON object is a problem.
template <typename F>
void for_each_line(const std::string& path, size_t max_line_bytes, EvalInput& into, F&& f) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  jobs::LineReader reader(in, max_line_bytes);
  std::string line;
  bool too_long = false;
  while (reader.next(line, too_long)) {
    const std::string where = path + ":" + std::to_string(reader.line_number());
    if (too_long) {
      into.problems.push_back({where, "line longer than " + std::to_string(max_line_bytes) + " bytes"});
      continue;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const json j = json::parse(line);
      if (!j.is_object()) throw std::invalid_argument("line is not a JSON object");
      f(where, j);
    } catch (const json::exception& e) {
      into.problems.push_back({where, std::string("invalid JSON: ") + e.what()});
    } catch (const std::exception& e) {
      into.problems.push_back({where, e.what()});
    }
  }
}

struct Response {
  json id;
  std::string where, prompt, response, category;
};

// id -> response of one file; ids must be strings or integers and unique.
std::map<std::string, Response> read_responses(const std::string& path, size_t max_line_bytes, EvalInput& into,
                                               std::vector<std::string>* order) {
  std::map<std::string, Response> out;
  for_each_line(path, max_line_bytes, into, [&](const std::string& where, const json& j) {
    auto it = j.find("id");
    if (it == j.end() || !(it->is_string() || it->is_number_integer()))
      throw std::invalid_argument("field 'id' (a string or an integer) is needed to join the two files");
    Response r{*it, where, jobs::string_field(j, "prompt", true), jobs::string_field(j, "response", true),
               jobs::string_field(j, "category", false)};
    const std::string key = it->dump();
    if (out.count(key)) throw std::invalid_argument("id " + key + " again (first at " + out[key].where + ")");
    if (order) order->push_back(key);
    out.emplace(key, std::move(r));
  });
  return out;
}

}  // namespace

EvalInput read_pair_file(const std::string& path, size_t max_line_bytes) {
  EvalInput input;
  for_each_line(path, max_line_bytes, input, [&](const std::string& where, const json& j) {
    EvalItem item{j.contains("id") ? j["id"] : json(nullptr), where, jobs::string_field(j, "prompt", true),
                  jobs::string_field(j, "a", true), jobs::string_field(j, "b", true), jobs::string_field(j, "category", false)};
    input.items.push_back(std::move(item));
  });
  return input;
}

EvalInput read_response_files(const std::string& path_a, const std::string& path_b, size_t max_line_bytes) {
  EvalInput input;
  std::vector<std::string> order;
  auto a = read_responses(path_a, max_line_bytes, input, &order);
  auto b = read_responses(path_b, max_line_bytes, input, nullptr);
  for (const std::string& key : order) {
    const Response& ra = a.at(key);
    auto it = b.find(key);
    if (it == b.end()) {
      input.problems.push_back({ra.where, "id " + key + " is not in " + path_b});
      continue;
    }
    const Response& rb = it->second;
    if (ra.prompt != rb.prompt) {
      input.problems.push_back({ra.where, "id " + key + " has another prompt in " + rb.where});
      continue;
    }
    if (!ra.category.empty() && !rb.category.empty() && ra.category != rb.category) {
      input.problems.push_back({ra.where, "id " + key + " has another category in " + rb.where});
      continue;
    }
    input.items.push_back({ra.id, ra.where, ra.prompt, ra.response, rb.response,
                           ra.category.empty() ? rb.category : ra.category});
  }
  for (const auto& [key, rb] : b)
    if (!a.count(key)) input.problems.push_back({rb.where, "id " + key + " is not in " + path_a});
  return input;
}

}  // namespace pairrm::eval
