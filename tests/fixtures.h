// Where the tests find the reference fixtures (the repository's tests/fixtures, or $PAIRRM_FIXTURES) and the
// bundled model.
#pragma once
#include <cstdlib>
#include <fstream>
#include <cmath>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "pairrm/pairrm.h"

namespace pairrm::test {

inline std::string fixtures_dir() {
  if (const char* env = std::getenv("PAIRRM_FIXTURES"); env && *env) return env;
  return PAIRRM_FIXTURES_DIR;
}
inline std::string model_dir(const std::string& name) { return fixtures_dir() + "/models/" + name; }
inline std::string bundled_model_dir() { return std::string(PAIRRM_SOURCE_DIR) + "/models/tiny"; }

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open fixture " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

// A whole file's bytes ("" when it does not exist).
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// parent[key], which must be a non-empty array: a renamed or emptied fixture key fails the test instead of
// letting a loop over it pass on zero iterations.
inline nlohmann::json entries(const nlohmann::json& parent, const std::string& key) {
  const nlohmann::json& v = parent.at(key);
  if (!v.is_array() || v.empty()) throw std::runtime_error("fixture key '" + key + "' is not a non-empty array");
  return v;
}

// text_cases.json's values for one model (models.<name>), which must exist.
inline nlohmann::json model_text_cases(const std::string& model) {
  return read_json(fixtures_dir() + "/text_cases.json").at("models").at(model);
}

// Models are loaded once per process and shared, as the library intends.
inline std::shared_ptr<const Model> shared_model(const std::string& name, SpecialTextPolicy policy = SpecialTextPolicy::kLiteral) {
  static std::map<std::pair<std::string, int>, std::shared_ptr<const Model>> cache;
  auto& m = cache[{name, static_cast<int>(policy)}];
  if (!m) {
    LoadOptions o;
    o.tokenizer.special_text = policy;
    m = Model::load(model_dir(name), o);
  }
  return m;
}

// One row of expected.json: the real tokens of a case (right padding removed) and its reference values.
struct FixtureCase {
  PairRow row;
  double logit_f64 = 0;
  int batch = 0;
  nlohmann::json hidden;  // [3][H] last-layer states at the prefix positions
};

inline std::vector<FixtureCase> fixture_cases(const std::string& model) {
  const auto e = read_json(model_dir(model) + "/expected.json");
  std::vector<FixtureCase> out;
  for (const auto& c : entries(e, "cases")) {
    FixtureCase k;
    const int len = c["length"];
    const auto ids = c["input_ids"].get<std::vector<int32_t>>();
    int real = 0;
    for (int m : c["attention_mask"].get<std::vector<int>>()) real += m;
    if (real != len) throw std::runtime_error("fixture case with attention_mask sum != length");
    k.row.ids.assign(ids.begin(), ids.begin() + len);  // right padding: the real tokens come first
    k.row.source_pos = c["prefix_positions"][0];
    k.row.cand1_pos = c["prefix_positions"][1];
    k.row.cand2_pos = c["prefix_positions"][2];
    k.logit_f64 = c["logit_f64"];
    k.batch = c["batch"];
    k.hidden = c["hidden_last_at_prefix"];
    out.push_back(std::move(k));
  }
  return out;
}

// The fixtures' tolerance for an fp32 logit against the float64 reference (fixtures/README.md): the
// reference's own float32 run differs from float64 by up to 3.9e-6; 1e-3 would be a bug.
inline double logit_tolerance(double reference) { return 1e-4 + 1e-4 * std::abs(reference); }

}  // namespace pairrm::test
