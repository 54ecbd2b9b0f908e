#include "generate/chat_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "pairrm/pairrm.h"

namespace pairrm::generate {
namespace {

using nlohmann::json;

struct Response {
  long status = 0;
  std::string body;
  std::optional<double> retry_after_s;
  CURLcode curl = CURLE_OK;
  std::string curl_error;
  bool too_large = false;
};

struct Transfer {
  Response* response;
  size_t limit;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (t->response->body.size() + n > t->limit) {
    t->response->too_large = true;
    return 0;  // aborts the transfer
  }
  t->response->body.append(data, n);
  return n;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* r = static_cast<Response*>(user);
  const size_t n = size * count;
  std::string line(data, n);
  std::string lower = line;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower.rfind("retry-after:", 0) == 0) {
    try {
      r->retry_after_s = std::stod(line.substr(12));  // seconds; an HTTP date is ignored (we back off instead)
    } catch (const std::exception&) {
    }
  }
  return n;
}

Response post(const std::string& url, const std::string& api_key, const std::string& body, const ChatOptions& o) {
  Response r;
  Transfer t{&r, o.max_response_bytes};
  CURL* h = curl_easy_init();
  if (!h) throw FatalEndpointError("libcurl could not start a transfer");
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Accept: application/json");
  const std::string auth = "Authorization: Bearer " + api_key;
  if (!api_key.empty()) headers = curl_slist_append(headers, auth.c_str());
  char error[CURL_ERROR_SIZE] = {0};
  const std::string agent = std::string("pairrm.cpp/") + version();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_USERAGENT, agent.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(o.timeout_s * 1000));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for timeouts
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  r.curl = curl_easy_perform(h);
  if (r.curl == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  r.curl_error = error[0] ? error : curl_easy_strerror(r.curl);
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  return r;
}

// The server's own message from an error body ({"error": {"message"}}, {"error": "..."}, {"detail"}), clipped.
std::string server_message(const std::string& body) {
  std::string m;
  try {
    const json j = json::parse(body);
    if (j.contains("error") && j["error"].is_object() && j["error"].contains("message")) m = j["error"]["message"].dump();
    else if (j.contains("error")) m = j["error"].dump();
    else if (j.contains("detail")) m = j["detail"].dump();
  } catch (const json::exception&) {
  }
  if (m.empty()) m = body;
  if (m.size() > 300) m = m.substr(0, 300) + "...";
  return m;
}

bool passing_failure(long status) { return status == 408 || status == 409 || status == 429 || status >= 500; }

}  // namespace

ChatClient::ChatClient(ChatOptions options) : options_(std::move(options)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  url_ = options_.endpoint;
  while (!url_.empty() && url_.back() == '/') url_.pop_back();
  if (url_.empty()) throw Error("--endpoint is empty");
  const std::string tail = "/chat/completions";
  if (url_.size() < tail.size() || url_.compare(url_.size() - tail.size(), tail.size(), tail) != 0) url_ += tail;
}

std::vector<std::string> ChatClient::sample(const std::string& prompt, const std::string& system, int n) const {
  std::vector<std::string> samples;
  thread_local std::mt19937_64 jitter(std::random_device{}());
  int empty_rounds = 0;
  while (static_cast<int>(samples.size()) < n) {
    json body{{"messages", json::array()}, {"n", n - static_cast<int>(samples.size())}};
    if (!system.empty()) body["messages"].push_back({{"role", "system"}, {"content", system}});
    body["messages"].push_back({{"role", "user"}, {"content", prompt}});
    if (!options_.model.empty()) body["model"] = options_.model;
    if (options_.temperature) body["temperature"] = *options_.temperature;
    if (options_.top_p) body["top_p"] = *options_.top_p;
    if (options_.max_tokens) body["max_tokens"] = *options_.max_tokens;
    if (options_.seed) body["seed"] = *options_.seed + static_cast<long>(samples.size());
    const std::string text = body.dump();

    Response r;
    for (int attempt = 0;; ++attempt) {
      r = post(url_, options_.api_key, text, options_);
      if (r.too_large)
        throw PromptError("the response is over " + std::to_string(options_.max_response_bytes) + " bytes");
      const bool retry = r.curl != CURLE_OK || passing_failure(r.status);
      if (!retry) break;
      if (attempt >= options_.retries) {
        if (r.curl != CURLE_OK) throw FatalEndpointError("cannot reach " + url_ + ": " + r.curl_error);
        throw PromptError("HTTP " + std::to_string(r.status) + " after " + std::to_string(attempt + 1) +
                          " tries: " + server_message(r.body));
      }
      double wait = std::min(30.0, options_.backoff_s * std::pow(2.0, attempt));
      wait *= std::uniform_real_distribution<double>(0.5, 1.0)(jitter);  // spread the clients out
      if (r.retry_after_s) wait = std::clamp(*r.retry_after_s, 0.0, 60.0);
      std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    }
    if (r.status == 401 || r.status == 403)
      throw FatalEndpointError("the endpoint refused the request (HTTP " + std::to_string(r.status) +
                               "): check --api-key / $OPENAI_API_KEY. " + server_message(r.body));
    if (r.status == 404)
      throw FatalEndpointError("no chat/completions endpoint at " + url_ + " (HTTP 404; --endpoint is the API base, "
                               "e.g. http://localhost:8000/v1). " + server_message(r.body));
    if (r.status < 200 || r.status >= 300)
      throw PromptError("HTTP " + std::to_string(r.status) + ": " + server_message(r.body));

    json reply;
    try {
      reply = json::parse(r.body);
    } catch (const json::exception& e) {
      throw PromptError(std::string("the response is not JSON: ") + e.what());
    }
    size_t got = 0;
    if (reply.is_object() && reply.contains("choices") && reply["choices"].is_array()) {
      for (const auto& c : reply["choices"]) {
        if (static_cast<int>(samples.size()) >= n) break;
        if (!c.is_object() || !c.contains("message") || !c["message"].is_object()) continue;
        const json& content = c["message"].value("content", json());
        if (!content.is_string()) continue;  // e.g. a tool call: no text to rank
        samples.push_back(content.get<std::string>());
        ++got;
      }
    } else {
      throw PromptError("the response has no \"choices\" list: " + server_message(r.body));
    }
    if (got == 0 && ++empty_rounds >= 3) throw PromptError("the endpoint returned no message text, three times");
  }
  return samples;
}

}  // namespace pairrm::generate
