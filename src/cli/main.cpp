// The `pairrm` command line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "jobs/commands.h"
#include "jobs/jsonl.h"
#include "eval/eval.h"
#include "generate/generate_job.h"
#include "pairrm/pairrm.h"
#include "pairrm/ranking.h"
#include "hub/hub.h"
#include "util/bundled_model.h"
#include "server/server.h"
#include "tools/bench.h"
#include "tools/init_random.h"


namespace {

using nlohmann::json;
using pairrm::jobs::OrderedJson;

struct ModelFlags {
  std::string model;
  int threads = 0;
  std::string special_tokens = "literal";
  std::string precision = "fp32";
  std::string attention = "auto";
  bool byte_fallback = false;
  int source_max_length = 0;     // 0: the checkpoint's (1224 for PairRM)
  int candidate_max_length = 0;  // 0: the checkpoint's (412)
  int batch_size = 64;
  long max_tokens_per_batch = 16384;

  void add(CLI::App* app) {
    app->add_option("--model,-m", model,
                    "checkpoint directory or Hugging Face repo id org/name[@revision] (default: $PAIRRM_MODEL, else "
                    "the bundled tiny random-weight model, with a warning)");
    app->add_option("--threads,-t", threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
    app->add_option("--special-tokens", special_tokens,
                    "special/prefix token strings inside user text: literal (plain text, default) or hf (become "
                    "their ids, as transformers does)")
        ->check(CLI::IsMember({"literal", "hf"}));
    app->add_option("--precision", precision,
                    "fp32 (default, exact), bf16 (GEMMs in bfloat16) or int8 (int8 weights and activations); see "
                    "BENCHMARKS.md for their accuracy")
        ->check(CLI::IsMember({"fp32", "bf16", "int8"}));
    app->add_option("--attention", attention,
                    "the attention's matrix products under bf16/int8: auto (default: bf16 on AMD Zen 4+, where it is "
                    "twice as fast, else fp32), fp32 or bf16")
        ->check(CLI::IsMember({"auto", "fp32", "bf16"}));
    app->add_flag("--byte-fallback", byte_fallback,
                  "spell rare characters with SentencePiece byte pieces (slow tokenizer) instead of one [UNK] "
                  "(fast tokenizer, what PairRM was trained with)");
    app->add_option("--source-max-length", source_max_length,
                    "tokens kept of the source segment, its [CLS], prefix and [SEP] included (llm-blender's "
                    "source_max_length; default: the checkpoint's, 1224 for PairRM)")
        ->check(CLI::Range(3, 8192));
    app->add_option("--candidate-max-length", candidate_max_length,
                    "tokens kept of each candidate segment (llm-blender's candidate_max_length; default: the "
                    "checkpoint's, 412 for PairRM)")
        ->check(CLI::Range(3, 8192));
  }
  void add_batching(CLI::App* app) {
    app->add_option("--batch-size", batch_size, "forward passes per batch (default 64); never changes a result")
        ->check(CLI::PositiveNumber);
    app->add_option("--max-tokens-per-batch", max_tokens_per_batch,
                    "tokens per batch (default 16384; a longer row runs alone); never changes a result")
        ->check(CLI::PositiveNumber);
  }

  // --model, else $PAIRRM_MODEL, else the bundled tiny model; a Hugging Face repo id is looked up in the
  // hub cache and downloaded when missing (pairrm download).
  std::string directory() const {
    std::string m = model;
    if (m.empty())
      if (const char* env = std::getenv("PAIRRM_MODEL"); env && *env) m = env;
    if (m.empty()) {
      pairrm::warn_bundled_model();
      return pairrm::bundled_model_dir();
    }
    return pairrm::hub::resolve_model(m);
  }

  std::shared_ptr<const pairrm::Model> load() const { return pairrm::Model::load(directory(), load_options()); }
  pairrm::LoadOptions load_options() const {
    pairrm::LoadOptions o;
    o.tokenizer.special_text =
        special_tokens == "hf" ? pairrm::SpecialTextPolicy::kHuggingFace : pairrm::SpecialTextPolicy::kLiteral;
    o.tokenizer.byte_fallback = byte_fallback;
    o.source_max_length = source_max_length;
    o.candidate_max_length = candidate_max_length;
    o.precision = pairrm::parse_precision(precision);
    o.attention = pairrm::parse_attention_products(attention);
    return o;
  }
  std::unique_ptr<pairrm::Context> context() const {
    auto ctx = std::make_unique<pairrm::Context>(load(), threads);
    ctx->set_batch_limits(batch_size, max_tokens_per_batch);
    return ctx;
  }
};

struct JsonlFlags {
  pairrm::jobs::JsonlOptions options;
  pairrm::jobs::InputLimits limits;
  std::string shard;

  CLI::Option* add(CLI::App* app, const std::string& line_format) {
    auto* in = app->add_option("--input,-i", options.input, "JSONL input ('-' = stdin), lines " + line_format);
    app->add_option("--output,-o", options.output, "JSONL output file ('-' or absent = stdout)");
    app->add_flag("--resume", options.resume,
                  "continue an interrupted run: keep the records already in --output and append the rest");
    app->add_flag("--quiet,-q", options.quiet, "no progress or summary on stderr");
    app->add_option("--chunk-lines", options.chunk_lines,
                    "input lines whose forward passes are scheduled together (default 32)")
        ->check(CLI::PositiveNumber);
    app->add_option("--shard", shard,
                    "i/n: only every n-th non-blank line from the i-th (0-based), for Slurm arrays, indexed Jobs or "
                    "xargs; `pairrm merge` puts the outputs back in input order");
    app->add_option("--max-line-bytes", options.max_line_bytes,
                    "a longer input line is an error record, never read into memory (default 64 MiB)")
        ->check(CLI::PositiveNumber);
    return in;
  }
  void add_candidate_limit(CLI::App* app) {
    app->add_option("--max-candidates", limits.max_candidates, "candidates per line (default 64)")
        ->check(CLI::PositiveNumber);
  }
};

CLI::Option* add_mode(CLI::App* app, std::string& mode) {
  return app
      ->add_option("--mode", mode,
                   "ab: logit(A,B); ba: logit(B,A); both (default): logit(A,B) - logit(B,A), llm-blender's default")
      ->check(CLI::IsMember({"ab", "ba", "both"}));
}

// Runs a job over --input, or over the one line given on the command line.
int run_job(const ModelFlags& mf, JsonlFlags& jf, pairrm::jobs::JsonlJob& job, const std::string& command,
            const json* single_line) {
  auto ctx = mf.context();
  if (single_line) {
    job.add(*single_line);
    std::cout << job.run(*ctx).at(0).dump() << "\n";
    return 0;
  }
  jf.options.command = "pairrm " + command;
  if (!jf.shard.empty()) std::tie(jf.options.shard_index, jf.options.shard_count) = pairrm::jobs::parse_shard(jf.shard);
  const auto stats = pairrm::jobs::run_jsonl(*ctx, job, jf.options);
  return stats.failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pairrm: the PairRM pairwise reward model (LLM-Blender) in C++"};
  app.require_subcommand(1);
  app.set_version_flag("--version", pairrm::version());

  // tokenize
  ModelFlags tok_flags;
  std::string tok_text;
  bool tok_json = false;
  auto* tok = app.add_subcommand("tokenize", "print the token ids of a text ([CLS] ... [SEP])");
  tok_flags.add(tok);
  tok->add_option("--text", tok_text, "the text")->required();
  tok->add_flag("--json", tok_json, "print {\"ids\": [...], \"length\": n}");

  // compare
  ModelFlags cmp_flags;
  JsonlFlags cmp_io;
  std::string source, a, b, cmp_mode = "both";
  bool cmp_json = false;
  auto* cmp = app.add_subcommand("compare", "is candidate A a better answer to the source than candidate B?");
  cmp_flags.add(cmp);
  cmp_flags.add_batching(cmp);
  auto* src_opt = cmp->add_option("--source,-s", source, "the instruction / prompt");
  auto* a_opt = cmp->add_option("--a", a, "candidate A");
  auto* b_opt = cmp->add_option("--b", b, "candidate B");
  auto* cmp_in = cmp_io.add(cmp, "{\"id\"?, \"source\", \"candidate_a\", \"candidate_b\"}");
  add_mode(cmp, cmp_mode);
  cmp->add_flag("--json", cmp_json, "print the single result as JSON");
  for (auto* o : {src_opt, a_opt, b_opt}) o->excludes(cmp_in);

  // rank
  ModelFlags rank_flags;
  JsonlFlags rank_io;
  std::string rank_source, with_ref;
  std::vector<std::string> rank_candidates;
  auto* rk = app.add_subcommand("rank", "rank candidates by comparing every ordered pair (llm-blender's rank)");
  rank_flags.add(rk);
  rank_flags.add_batching(rk);
  auto* rk_in = rank_io.add(rk, "{\"id\"?, \"source\", \"candidates\": [...], \"reference\"? (--with-ref given)}");
  rank_io.add_candidate_limit(rk);
  rk->add_option("--source,-s", rank_source, "the instruction / prompt")->excludes(rk_in);
  rk->add_option("--candidates,-c", rank_candidates, "the candidates")->excludes(rk_in);
  rk->add_option("--with-ref", with_ref,
                 "rank against one reference: score(c) = -(logit(ref,c) - logit(c,ref)); longest, shortest, "
                 "median_length, first, last, or given (the line's \"reference\")")
      ->check(CLI::IsMember({"longest", "shortest", "median_length", "first", "last", "given"}));

  // best-of-n / worst-of-n
  struct SelectFlags {
    ModelFlags model;
    JsonlFlags io;
    std::string source, method = "bubble";
    std::vector<std::string> candidates;
    uint64_t seed = 0;
    bool return_all = false;
    CLI::App* app = nullptr;
    CLI::Option* seed_opt = nullptr;
    CLI::Option* input_opt = nullptr;
  };
  SelectFlags best, worst;
  for (SelectFlags* f : {&best, &worst}) {
    const bool is_worst = f == &worst;
    f->app = app.add_subcommand(is_worst ? "worst-of-n" : "best-of-n",
                                is_worst ? "pick the worst candidate (llm-blender's get_worst_of_n)"
                                         : "pick the best candidate (llm-blender's get_best_of_n)");
    f->model.add(f->app);
    f->model.add_batching(f->app);
    auto* in = f->input_opt = f->io.add(f->app, "{\"id\"?, \"source\", \"candidates\": [...]}");
    f->io.add_candidate_limit(f->app);
    f->app->add_option("--source,-s", f->source, "the instruction / prompt")->excludes(in);
    f->app->add_option("--candidates,-c", f->candidates, "the candidates")->excludes(in);
    f->app->add_option("--method", f->method,
                       "bubble (default): one pass comparing neighbours, 2(n-1) passes; full: rank all pairs")
        ->check(CLI::IsMember({"bubble", "full"}));
    f->seed_opt = f->app->add_option("--seed", f->seed, "bubble: visit the candidates in a seeded random order "
                                                        "(default: the given order)");
    f->app->add_flag("--return-all", f->return_all,
                     "also output the bubble order and step scores (\"order\", \"pass_scores\") or the full "
                     "ranking (\"scores\", \"ranks\")");
  }

  // compare-conversations
  ModelFlags conv_flags;
  JsonlFlags conv_io;
  std::string conv_mode = "both";
  auto* conv = app.add_subcommand("compare-conversations", "compare two multi-turn conversations with the same USER turns");
  conv_flags.add(conv);
  conv_flags.add_batching(conv);
  conv_io.add(conv, "{\"id\"?, \"conversation_a\": [{\"role\", \"content\"}...], \"conversation_b\": [...]}")->required();
  add_mode(conv, conv_mode);

  // dpo
  ModelFlags dpo_flags;
  JsonlFlags dpo_io;
  auto* dpo = app.add_subcommand("dpo", "turn N responses per prompt into a DPO pair (best and worst of the full ranking)");
  dpo_flags.add(dpo);
  dpo_flags.add_batching(dpo);
  dpo_io.add(dpo, "{\"id\"?, \"prompt\", \"responses\": [...]}")->required();
  dpo_io.add_candidate_limit(dpo);

  // eval
  ModelFlags eval_flags;
  pairrm::eval::EvalOptions ev;
  auto* evc = app.add_subcommand("eval", "win rate of system A against system B on the same prompts, with a "
                                         "bootstrap interval, per category; HTML and JSON reports");
  eval_flags.add(evc);
  eval_flags.add_batching(evc);
  auto* ev_in = evc->add_option("--input,-i", ev.input, "JSONL lines {\"id\"?, \"prompt\", \"a\", \"b\", \"category\"?}");
  auto* ev_a = evc->add_option("--responses-a", ev.file_a, "system A's answers: JSONL {\"id\", \"prompt\", \"response\", "
                                                            "\"category\"?}, joined on id with --responses-b");
  auto* ev_b = evc->add_option("--responses-b", ev.file_b, "system B's answers, same format");
  ev_in->excludes(ev_a)->excludes(ev_b);
  ev_a->needs(ev_b);
  ev_b->needs(ev_a);
  evc->add_option("--report", ev.html_out, "write a self-contained HTML report here");
  evc->add_option("--json", ev.json_out, "write every number (and each prompt's logits) here");
  auto* name_a = evc->add_option("--name-a", ev.name_a, "system A's name in the reports (default A, or the file's name)");
  auto* name_b = evc->add_option("--name-b", ev.name_b, "system B's name in the reports");
  evc->add_option("--tie-threshold", ev.stats.tie_threshold,
                  "a prompt is a tie when |score| <= this (default 0: llm-blender's rule, A wins iff score > 0; "
                  "only identical answers tie)")
      ->check(CLI::NonNegativeNumber);
  evc->add_option("--bootstrap", ev.stats.bootstrap, "bootstrap resamples for the interval (default 1000)")
      ->check(CLI::Range(1, 1000000));
  evc->add_option("--seed", ev.stats.seed, "bootstrap seed (default 0); the same seed gives the same interval");
  evc->add_option("--confidence", ev.stats.confidence, "interval level (default 0.95)")->check(CLI::Range(0.5, 0.999));
  evc->add_option("--top", ev.top, "prompts listed per table of the report (default 10)");
  evc->add_flag("--skip-bad-lines", ev.skip_bad, "report unusable lines and evaluate the rest (default: fail)");
  evc->add_flag("--quiet,-q", ev.quiet, "no progress on stderr");
  evc->add_option("--max-line-bytes", ev.max_line_bytes, "longer lines are unusable (default 64 MiB)")
      ->check(CLI::PositiveNumber);

  // generate-best-of-n
  ModelFlags gen_flags;
  JsonlFlags gen_io;
  pairrm::generate::GenerateOptions gen;
  std::string gen_method = "bubble";
  uint64_t gen_seed = 0;
  double gen_temperature = 0.8, gen_top_p = 1.0;
  long gen_max_tokens = 0, gen_llm_seed = 0;
  auto* gn = app.add_subcommand("generate-best-of-n", "sample n answers per prompt from an OpenAI-compatible "
                                                     "chat/completions endpoint and keep the best by PairRM");
  gen_flags.add(gn);
  gen_flags.add_batching(gn);
  gen_io.add(gn, "{\"id\"?, \"prompt\", \"system\"?}")->required();
  gn->add_option("--endpoint", gen.chat.endpoint,
                 "the API base, e.g. http://localhost:8000/v1 (vLLM), http://localhost:8080/v1 (llama.cpp), "
                 "http://localhost:11434/v1 (Ollama); /chat/completions is appended")
      ->required();
  gn->add_option("--api-key", gen.chat.api_key, "bearer key (default: $OPENAI_API_KEY)");
  gn->add_option("--llm", gen.chat.model, "the endpoint's model name (the request's \"model\"; default: left out)");
  gn->add_option("--n", gen.n, "samples per prompt (default 8)")->check(CLI::Range(1, 1024));
  gn->add_option("--temperature", gen_temperature, "sampling temperature (default 0.8)")
      ->check(CLI::Range(0.0, 10.0));
  auto* top_p_opt = gn->add_option("--top-p", gen_top_p, "nucleus sampling (default: the server's)")->check(CLI::Range(0.0, 1.0));
  auto* max_tok_opt = gn->add_option("--max-tokens", gen_max_tokens, "tokens per sample (default: the server's)")
                          ->check(CLI::PositiveNumber);
  auto* llm_seed_opt = gn->add_option("--llm-seed", gen_llm_seed, "the request's \"seed\" (servers that honour it sample reproducibly)");
  gn->add_option("--system", gen.system, "system message for every prompt (a line's \"system\" wins)");
  gn->add_option("--method", gen_method, "bubble (default, 2(n-1) passes) or full (rank all pairs, n(n-1))")
      ->check(CLI::IsMember({"bubble", "full"}));
  auto* gen_seed_opt = gn->add_option("--seed", gen_seed, "bubble: visit the samples in a seeded random order");
  gn->add_option("--concurrency", gen.concurrency, "requests in flight at once (default 4)")->check(CLI::Range(1, 256));
  gn->add_option("--retries", gen.chat.retries, "further tries after 429, 5xx or a lost connection (default 5)")
      ->check(CLI::Range(0, 100));
  gn->add_option("--backoff-s", gen.chat.backoff_s, "first wait before a retry, doubled each time up to 30 s "
                                                    "(default 1; a Retry-After header wins)")
      ->check(CLI::Range(0.0, 60.0));
  gn->add_option("--request-timeout-s", gen.chat.timeout_s, "per request (default 600)")->check(CLI::PositiveNumber);
  gn->add_flag("--return-samples", gen.return_samples, "also output every sample (\"samples\")");
  gn->add_flag("--return-scores", gen.return_scores, "also output each sample's rank score (\"scores\"; needs --method full)");

  // init-random
  pairrm::RandomCheckpointOptions rnd;
  auto* init = app.add_subcommand("init-random", "write a full-size PairRM checkpoint with random weights (for benchmarks)");
  init->add_option("--out", rnd.out_dir, "output directory")->required();
  init->add_option("--seed", rnd.seed, "random seed (default 0)");
  init->add_option("--tokenizer-from", rnd.tokenizer_dir, "copy spm.model and the added-token files from here "
                                                          "(default: the bundled tiny model)");
  init->add_option("--layers", rnd.num_layers, "encoder layers (default 24, PairRM's)")->check(CLI::PositiveNumber);
  init->add_option("--hidden", rnd.hidden_size, "hidden size (default 1024; smaller for quick experiments)")->check(CLI::PositiveNumber);
  init->add_option("--heads", rnd.num_heads, "attention heads (default 16)")->check(CLI::PositiveNumber);
  init->add_option("--intermediate", rnd.intermediate_size, "FFN size (default 4096)")->check(CLI::PositiveNumber);

  // bench
  ModelFlags bench_flags;
  pairrm::BenchOptions bench;
  auto* bn = app.add_subcommand("bench", "measure the network's speed on synthetic rows");
  bench_flags.add(bn);
  auto* tokens_opt = bn->add_option("--tokens", bench.tokens, "tokens per pair (default 300)")->check(CLI::Range(9, 1 << 20));
  bn->add_flag("--mixed", bench.mixed, "64 pairs with lengths spread over 100..1000 tokens")->excludes(tokens_opt);
  bn->add_option("--pairs", bench.pairs, "pairs to time (default 3, or 64 with --mixed)")->check(CLI::PositiveNumber);
  bn->add_flag("--json", bench.json, "one JSON object");
  bn->add_flag("--ceiling", bench.ceiling_only,
               "only measure this machine's ceilings for every precision (the multiply-add peak and the dense "
               "layers' GEMM) at --threads; every bench report has its precision's");

  // accuracy
  pairrm::AccuracyOptions acc;
  std::string acc_model;
  auto* ac = app.add_subcommand("accuracy", "logit error of bf16 and int8 against fp32 on random rows (one JSON object)");
  ac->add_option("--model,-m", acc_model, "checkpoint directory (default: $PAIRRM_MODEL, else the bundled tiny model)");
  ac->add_option("--pairs", acc.pairs, "random rows (default 500)")->check(CLI::PositiveNumber);
  ac->add_option("--min-tokens", acc.min_tokens, "shortest row (default 30)")->check(CLI::Range(9, 2048));
  ac->add_option("--max-tokens", acc.max_tokens, "longest row (default 200)")->check(CLI::Range(9, 2048));
  ac->add_option("--threads,-t", acc.threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
  ac->add_option("--seed", acc.seed, "random seed (default 7)");
  std::string acc_attention = "auto";
  ac->add_option("--attention", acc_attention, "the attention's products under bf16/int8: auto, fp32 or bf16")
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}));

  // download
  pairrm::hub::HubOptions hub_options;
  std::string dl_repo, dl_revision;
  auto* dl = app.add_subcommand("download", "fetch a model from the Hugging Face Hub into its cache (resumable, verified)");
  dl->add_option("repo", dl_repo, "repo id org/name[@revision], e.g. llm-blender/PairRM-hf")->required();
  dl->add_option("--revision", dl_revision, "branch, tag or commit (default main)");
  dl->add_option("--token", hub_options.token, "access token for gated/private repos (default: $HF_TOKEN)");
  dl->add_option("--cache-dir", hub_options.cache, "the hub cache (default: $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub)");

  // merge
  std::vector<std::string> merge_parts;
  std::string merge_out, merge_in;
  auto* mg = app.add_subcommand("merge", "stitch the outputs of --shard 0/n .. n-1/n back into input order, checking "
                                         "that nothing is missing or duplicated");
  mg->add_option("shards", merge_parts, "the shard outputs, in shard order (0/n first)")->required();
  mg->add_option("--output,-o", merge_out, "merged JSONL ('-' or absent = stdout)");
  mg->add_option("--input,-i", merge_in, "the input the shards came from: also check the count and every id");

  // serve
  ModelFlags serve_flags;
  pairrm::server::ServerOptions serve;
  auto* sv = app.add_subcommand("serve", "HTTP scoring service: pairrm's endpoints, TEI/vLLM/Cohere/Jina rerank and "
                                         "score, OpenRLHF rewards (docs/server.md)");
  serve_flags.add(sv);
  sv->add_option("--host", serve.host, "address to bind (default 127.0.0.1: this machine only)");
  sv->add_option("--port,-p", serve.port, "port (default 8080; 0 = any free port, printed at start)")
      ->check(CLI::Range(0, 65535));
  sv->add_option("--api-key", serve.api_key, "require 'Authorization: Bearer KEY' (default: $PAIRRM_API_KEY)");
  sv->add_option("--workers", serve.scheduler.workers,
                 "batches run side by side, each with --threads/workers threads (default 1)")
      ->check(CLI::PositiveNumber);
  sv->add_option("--max-batch-tokens", serve.scheduler.max_batch_tokens, "tokens per batch (default 16384)")
      ->check(CLI::PositiveNumber);
  sv->add_option("--max-batch-rows", serve.scheduler.max_batch_rows, "forward passes per batch (default 64)")
      ->check(CLI::PositiveNumber);
  sv->add_option("--max-queue", serve.scheduler.max_queue_rows,
                 "forward passes waiting before new requests get 429 (default 8192)")
      ->check(CLI::PositiveNumber);
  sv->add_option("--timeout-s", serve.timeout_s, "a request not scored by then gets 504 (default 60)")
      ->check(CLI::PositiveNumber);
  sv->add_option("--max-body-bytes", serve.max_body_bytes, "larger bodies get 413 (default 8 MiB)")
      ->check(CLI::PositiveNumber);
  sv->add_option("--max-items", serve.max_items, "items per request (default 64)")->check(CLI::PositiveNumber);
  sv->add_option("--max-candidates", serve.max_candidates, "candidates per ranking (default 32)")
      ->check(CLI::PositiveNumber);
  sv->add_option("--max-passes", serve.max_passes, "forward passes per request (default 4096)")
      ->check(CLI::PositiveNumber);
  sv->add_option("--http-threads", serve.http_threads, "connections served at once (default 64)")
      ->check(CLI::PositiveNumber);
  sv->add_option("--reference", serve.reference,
                 "the pointwise score's reference when a request gives none (TEI/vLLM/Cohere rerank, vLLM score, "
                 "OpenRLHF): fixed (default: every text against --reference-text) or others (the texts of a "
                 "request ranked against each other, as /rank); docs/server.md")
      ->check(CLI::IsMember({"fixed", "others"}));
  sv->add_option("--reference-text", serve.reference_text,
                 "the fixed reference answer (default: the empty answer \"\")");

  CLI11_PARSE(app, argc, argv);
  try {
    if (*tok) {
      const auto ids = tok_flags.load()->encode(tok_text);
      if (tok_json) {
        std::cout << json{{"ids", ids}, {"length", ids.size()}}.dump() << "\n";
      } else {
        for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
        std::cout << "\n";
      }
      return 0;
    }
    if (*cmp) {
      auto job = pairrm::jobs::make_job({.command = "compare", .mode = cmp_mode});
      if (*cmp_in) return run_job(cmp_flags, cmp_io, *job, "compare", nullptr);
      if (!*src_opt || !*a_opt || !*b_opt) {
        std::cerr << "pairrm compare: give --source, --a and --b, or --input FILE.jsonl\n";
        return 2;
      }
      if (cmp_json) {
        const json line = {{"source", source}, {"candidate_a", a}, {"candidate_b", b}};
        return run_job(cmp_flags, cmp_io, *job, "compare", &line);
      }
      const auto r = cmp_flags.context()->compare({{source, a, b}}, pairrm::parse_compare_mode(cmp_mode)).at(0);
      std::printf("score    %.6f\n", r.score);
      if (r.has_ab) std::printf("logit_ab %.6f\n", r.logit_ab);
      if (r.has_ba) std::printf("logit_ba %.6f\n", r.logit_ba);
      std::printf("%s\n", r.a_better ? "A is better" : "A is not better");
      return 0;
    }
    if (*rk) {
      std::optional<std::string> ref;
      if (!with_ref.empty()) ref = with_ref;
      auto job = pairrm::jobs::make_job({.command = "rank", .with_ref = ref, .limits = rank_io.limits});
      if (*rk_in) return run_job(rank_flags, rank_io, *job, "rank", nullptr);
      if (rank_candidates.empty() || with_ref == "given") {
        std::cerr << "pairrm rank: give --source and --candidates (without --with-ref given), or --input FILE.jsonl\n";
        return 2;
      }
      const json line = {{"source", rank_source}, {"candidates", rank_candidates}};
      return run_job(rank_flags, rank_io, *job, "rank", &line);
    }
    for (SelectFlags* f : {&best, &worst}) {
      if (!*f->app) continue;
      const std::string name = f == &worst ? "worst-of-n" : "best-of-n";
      pairrm::jobs::JobSpec spec{.command = name, .method = f->method, .return_all = f->return_all, .limits = f->io.limits};
      if (*f->seed_opt) spec.seed = f->seed;
      auto job = pairrm::jobs::make_job(spec);
      if (*f->input_opt) return run_job(f->model, f->io, *job, name, nullptr);
      if (f->candidates.empty()) {
        std::cerr << "pairrm " << name << ": give --source and --candidates, or --input FILE.jsonl\n";
        return 2;
      }
      const json line = {{"source", f->source}, {"candidates", f->candidates}};
      return run_job(f->model, f->io, *job, name, &line);
    }
    if (*conv) {
      auto job = pairrm::jobs::make_job({.command = "compare-conversations", .mode = conv_mode});
      return run_job(conv_flags, conv_io, *job, "compare-conversations", nullptr);
    }
    if (*evc) {
      if (ev.input.empty() && ev.file_a.empty()) {
        std::cerr << "pairrm eval: give --input PAIRS.jsonl, or --responses-a A.jsonl --responses-b B.jsonl\n";
        return 2;
      }
      auto stem = [](const std::string& path) { return std::filesystem::path(path).stem().string(); };
      if (!ev.file_a.empty() && !*name_a) ev.name_a = stem(ev.file_a);
      if (!ev.file_b.empty() && !*name_b) ev.name_b = stem(ev.file_b);
      ev.model_label = eval_flags.model.empty() ? std::filesystem::path(eval_flags.directory()).filename().string() : eval_flags.model;
      ev.chunk = static_cast<size_t>(eval_flags.batch_size);
      const auto report = pairrm::eval::run_eval(*eval_flags.context(), ev);
      std::cout << pairrm::eval::text_summary(report);
      return 0;
    }
    if (*gn) {
      if (gen.chat.api_key.empty())
        if (const char* key = std::getenv("OPENAI_API_KEY"); key && *key) gen.chat.api_key = key;
      gen.chat.temperature = gen_temperature;  // 0.8 unless given: best-of-n needs diverse samples
      if (*top_p_opt) gen.chat.top_p = gen_top_p;
      if (*max_tok_opt) gen.chat.max_tokens = gen_max_tokens;
      if (*llm_seed_opt) gen.chat.seed = gen_llm_seed;
      gen.select.method = gen_method == "full" ? pairrm::SelectionMethod::kFull : pairrm::SelectionMethod::kBubble;
      if (*gen_seed_opt) gen.select.seed = gen_seed;
      auto job = pairrm::generate::make_generate_job(gen);
      return run_job(gen_flags, gen_io, *job, "generate-best-of-n", nullptr);
    }
    if (*init) {
      if (rnd.tokenizer_dir.empty()) rnd.tokenizer_dir = pairrm::bundled_model_dir();
      pairrm::write_random_checkpoint(rnd);
      std::cerr << "wrote " << rnd.out_dir << "\n";
      return 0;
    }
    if (*bn) {
      if (!bench.ceiling_only) bench.model_dir = bench_flags.directory();
      bench.threads = bench_flags.threads;
      bench.load = bench_flags.load_options();
      return pairrm::run_bench(bench), 0;
    }
    if (*ac) {
      ModelFlags f;
      f.model = acc_model;
      acc.model_dir = f.directory();
      acc.attention = pairrm::parse_attention_products(acc_attention);
      if (acc.min_tokens > acc.max_tokens) throw pairrm::Error("--min-tokens is above --max-tokens");
      return pairrm::run_accuracy(acc), 0;
    }
    if (*mg) {
      const long n = pairrm::jobs::merge_shards(merge_parts, merge_out, merge_in);
      std::cerr << "pairrm merge: " << n << " records\n";
      return 0;
    }
    if (*dl) {
      auto ref = pairrm::hub::parse_repo_id(dl_repo);
      if (!ref) throw pairrm::Error("'" + dl_repo + "' is not a repo id (org/name[@revision])");
      if (!dl_revision.empty()) ref->revision = dl_revision;
      std::cout << pairrm::hub::download(*ref, hub_options) << "\n";
      return 0;
    }
    if (*sv) {
      if (serve.api_key.empty())
        if (const char* key = std::getenv("PAIRRM_API_KEY"); key && *key) serve.api_key = key;
      serve.scheduler.threads_per_worker = serve_flags.threads > 0 ? std::max(1, serve_flags.threads / serve.scheduler.workers) : 0;
      pairrm::server::block_stop_signals();  // before the model load starts any thread
      return pairrm::server::run_server(serve_flags.load(), serve);
    }
    if (*dpo) {
      auto job = pairrm::jobs::make_job({.command = "dpo", .limits = dpo_io.limits});
      return run_job(dpo_flags, dpo_io, *job, "dpo", nullptr);
    }
  } catch (const std::exception& e) {
    std::cerr << "pairrm: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
