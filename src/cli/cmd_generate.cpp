// pairrm generate-best-of-n: sample n answers per prompt from an OpenAI-compatible endpoint, keep the best.
#include <cstdint>
#include <cstdlib>

#include "cli/commands_table.h"
#include "cli/flags.h"
#include "generate/generate_job.h"
#include "pairrm/ranking.h"

namespace pairrm::cli {
namespace {

struct Generate final : Command {
  ModelFlags model;
  JsonlFlags io;
  pairrm::generate::GenerateOptions gen;
  std::string method = "bubble";
  uint64_t seed = 0;
  double temperature = 0.8, top_p = 1.0;
  long max_tokens = 0, llm_seed = 0;
  CLI::Option* top_p_opt = nullptr;
  CLI::Option* max_tokens_opt = nullptr;
  CLI::Option* llm_seed_opt = nullptr;
  CLI::Option* seed_opt = nullptr;

  int run() override {
    if (gen.chat.api_key.empty())
      if (const char* key = std::getenv("OPENAI_API_KEY"); key && *key) gen.chat.api_key = key;
    gen.chat.temperature = temperature;  // 0.8 unless given: best-of-n needs diverse samples
    if (*top_p_opt) gen.chat.top_p = top_p;
    if (*max_tokens_opt) gen.chat.max_tokens = max_tokens;
    if (*llm_seed_opt) gen.chat.seed = llm_seed;
    gen.select.method = method == "full" ? pairrm::SelectionMethod::kFull : pairrm::SelectionMethod::kBubble;
    if (*seed_opt) gen.select.seed = seed;
    auto job = pairrm::generate::make_generate_job(gen);
    return run_job(model, io, *job, "generate-best-of-n", nullptr);
  }

  void add_endpoint(CLI::App* app) {
    app->add_option("--endpoint", gen.chat.endpoint,
                    "the API base, e.g. http://localhost:8000/v1 (vLLM), http://localhost:8080/v1 (llama.cpp), "
                    "http://localhost:11434/v1 (Ollama); /chat/completions is appended")
        ->required();
    app->add_option("--api-key", gen.chat.api_key, "bearer key (default: $OPENAI_API_KEY)");
    app->add_option("--llm", gen.chat.model, "the endpoint's model name (the request's \"model\"; default: left out)");
  }

  void add_sampling(CLI::App* app) {
    app->add_option("--n", gen.n, "samples per prompt (default 8)")->check(CLI::Range(1, 1024));
    app->add_option("--temperature", temperature, "sampling temperature (default 0.8)")
        ->check(CLI::Range(0.0, 10.0));
    top_p_opt = app->add_option("--top-p", top_p, "nucleus sampling (default: the server's)")->check(CLI::Range(0.0, 1.0));
    max_tokens_opt = app->add_option("--max-tokens", max_tokens, "tokens per sample (default: the server's)")
                         ->check(CLI::PositiveNumber);
    llm_seed_opt = app->add_option("--llm-seed", llm_seed, "the request's \"seed\" (servers that honour it sample reproducibly)");
    app->add_option("--system", gen.system, "system message for every prompt (a line's \"system\" wins)");
  }

  void add_selection(CLI::App* app) {
    app->add_option("--method", method, "bubble (default, 2(n-1) passes) or full (rank all pairs, n(n-1))")
        ->check(CLI::IsMember({"bubble", "full"}));
    seed_opt = app->add_option("--seed", seed, "bubble: visit the samples in a seeded random order");
  }

  void add_requests(CLI::App* app) {
    app->add_option("--concurrency", gen.concurrency, "requests in flight at once (default 4)")->check(CLI::Range(1, 256));
    app->add_option("--retries", gen.chat.retries, "further tries after 429, 5xx or a lost connection (default 5)")
        ->check(CLI::Range(0, 100));
    app->add_option("--backoff-s", gen.chat.backoff_s, "first wait before a retry, doubled each time up to 30 s "
                                                       "(default 1; a Retry-After header wins)")
        ->check(CLI::Range(0.0, 60.0));
    app->add_option("--request-timeout-s", gen.chat.timeout_s, "per request (default 600)")->check(CLI::PositiveNumber);
  }
};

}  // namespace

std::unique_ptr<Command> add_generate(CLI::App& parent) {
  auto c = std::make_unique<Generate>();
  auto* app = c->app = parent.add_subcommand("generate-best-of-n", "sample n answers per prompt from an OpenAI-compatible "
                                                                   "chat/completions endpoint and keep the best by PairRM");
  c->model.add(app);
  c->model.add_batching(app);
  c->io.add(app, "{\"id\"?, \"prompt\", \"system\"?}")->required();
  c->add_endpoint(app);
  c->add_sampling(app);
  c->add_selection(app);
  c->add_requests(app);
  app->add_flag("--return-samples", c->gen.return_samples, "also output every sample (\"samples\")");
  app->add_flag("--return-scores", c->gen.return_scores, "also output each sample's rank score (\"scores\"; needs --method full)");
  return c;
}

}  // namespace pairrm::cli
