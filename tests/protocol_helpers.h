// Helpers of the protocol tests (test_protocols.cpp, test_protocols_pooling.cpp): a POST and its parsed
// answer, the pointwise score recomputed through /compare, and the protocols' exact error bodies.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "fixtures.h"
#include "server_process.h"

namespace pairrm::protocol_test {

using nlohmann::json;

struct Answer {
  int status = 0;
  json body;
};

inline Answer call(httplib::Client& c, const std::string& path, const std::string& body) {
  auto res = c.Post(path, body, "application/json");
  if (!res) throw std::runtime_error("no response from " + path + ": " + httplib::to_string(res.error()));
  return {res->status, json::parse(res->body)};
}
inline Answer call(httplib::Client& c, const std::string& path, const json& body) { return call(c, path, body.dump()); }

// A POST's JSON answer with its keys in the order the server wrote them (json sorts its keys).
inline nlohmann::ordered_json call_ordered(httplib::Client& c, const std::string& path, const json& body) {
  auto res = c.Post(path, body.dump(), "application/json");
  if (!res) throw std::runtime_error("no response from " + path);
  return nlohmann::ordered_json::parse(res->body);
}
inline std::vector<std::string> keys_of(const nlohmann::ordered_json& object) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : object.items()) keys.push_back(k);
  return keys;
}
// The top-level keys of a POST's JSON answer in the order the server wrote them.
inline std::vector<std::string> key_order(httplib::Client& c, const std::string& path, const json& body) {
  const auto answer = call_ordered(c, path, body);  // named: items() of a temporary dangles
  return keys_of(answer);
}

// The pointwise score of `text` against `ref` as an answer to `prompt`, through /compare.
inline double pointwise(httplib::Client& c, const std::string& prompt, const std::string& text, const std::string& ref = "") {
  const Answer a = call(c, "/compare", json{{"source", prompt}, {"candidate_a", text}, {"candidate_b", ref}});
  if (a.status != 200) throw std::runtime_error("/compare: " + a.body.dump());
  return a.body["score"].get<double>();
}

inline double sigmoid(double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }

inline std::vector<std::string> tiny_args(std::vector<std::string> more = {}) {
  std::vector<std::string> a = {"--model", test::model_dir("tiny"), "--threads", "2"};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

// TEI's error body: exactly {"error": str, "error_type": type}.
inline void expect_tei_error(const Answer& a, int status, const std::string& type) {
  EXPECT_EQ(a.status, status) << a.body.dump();
  ASSERT_TRUE(a.body.is_object()) << a.body.dump();
  EXPECT_EQ(a.body.size(), 2u) << a.body.dump();
  EXPECT_TRUE(a.body["error"].is_string()) << a.body.dump();
  EXPECT_EQ(a.body["error_type"], type) << a.body.dump();
}

// vLLM's error body: exactly {"error": {"message", "type", "param", "code"}}, code = the status.
inline void expect_vllm_error(const Answer& a, int status, const std::string& type, const json& param = nullptr) {
  EXPECT_EQ(a.status, status) << a.body.dump();
  ASSERT_TRUE(a.body.is_object() && a.body.size() == 1 && a.body.contains("error")) << a.body.dump();
  const json& e = a.body["error"];
  EXPECT_EQ(e.size(), 4u) << e.dump();
  EXPECT_TRUE(e["message"].is_string()) << e.dump();
  EXPECT_EQ(e["type"], type) << e.dump();
  EXPECT_EQ(e["param"], param) << e.dump();
  EXPECT_EQ(e["code"], status) << e.dump();
}

}  // namespace pairrm::protocol_test
