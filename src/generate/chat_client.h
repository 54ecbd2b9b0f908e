// A client for OpenAI-compatible chat/completions endpoints (vLLM, llama.cpp's server, Ollama, TGI, OpenAI):
// n samples for one prompt, with retries and backoff for the failures that pass (429, 5xx, lost connections).
#pragma once
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pairrm::generate {

struct ChatOptions {
  std::string endpoint;      // ".../v1" or the full ".../v1/chat/completions"
  std::string api_key;       // Authorization: Bearer (empty: none)
  std::string model;         // the "model" field (empty: left out; llama.cpp's server needs none)
  std::optional<double> temperature, top_p;
  std::optional<long> max_tokens;
  std::optional<long> seed;  // sent as "seed" (vLLM, OpenAI, llama.cpp honour it)
  int retries = 5;           // further tries of one request after a passing failure
  double backoff_s = 1.0;    // first wait; doubles per try, at most 30 s (or the server's Retry-After, <= 60 s)
  double timeout_s = 600;    // per request
  size_t max_response_bytes = 64u << 20;
};

// The whole run must stop: the endpoint refuses our key, does not exist, or cannot be reached.
class FatalEndpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// This prompt failed (the server rejected it, or kept failing after every retry); other prompts may work.
class PromptError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ChatClient {
 public:
  explicit ChatClient(ChatOptions options);  // call on the main thread before any other thread uses curl
  // n assistant messages for the prompt (with an optional system message). Servers that give fewer
  // choices than asked (many ignore "n") are asked again for the rest. Thread-safe.
  std::vector<std::string> sample(const std::string& prompt, const std::string& system, int n) const;
  const std::string& url() const { return url_; }

 private:
  ChatOptions options_;
  std::string url_;
};

}  // namespace pairrm::generate
