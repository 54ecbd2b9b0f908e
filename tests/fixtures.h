// Where the tests find the reference fixtures (../shared/fixtures, or $PAIRRM_FIXTURES) and the bundled model.
#pragma once
#include <cstdlib>
#include <fstream>
#include <cmath>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

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

// The fixtures' tolerance for an fp32 logit against the float64 reference (fixtures/README.md): the
// reference's own float32 run differs from float64 by up to 3.9e-6; 1e-3 would be a bug.
inline double logit_tolerance(double reference) { return 1e-4 + 1e-4 * std::abs(reference); }

}  // namespace pairrm::test
