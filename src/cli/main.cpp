// The `pairrm` command line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/jsonl_compare.h"
#include "pairrm/pairrm.h"

#ifndef PAIRRM_DEFAULT_MODEL_DIR
#define PAIRRM_DEFAULT_MODEL_DIR "models/tiny"
#endif

namespace {

using nlohmann::json;

struct ModelFlags {
  std::string model;
  int threads = 0;
  std::string special_tokens = "literal";
  bool byte_fallback = false;

  void add(CLI::App* app) {
    app->add_option("--model,-m", model,
                    "checkpoint directory (default: $PAIRRM_MODEL, else the bundled tiny model " PAIRRM_DEFAULT_MODEL_DIR ")");
    app->add_option("--threads,-t", threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
    app->add_option("--special-tokens", special_tokens,
                    "special/prefix token strings inside user text: literal (plain text, default) or hf (become "
                    "their ids, as transformers does)")
        ->check(CLI::IsMember({"literal", "hf"}));
    app->add_flag("--byte-fallback", byte_fallback,
                  "spell rare characters with SentencePiece byte pieces (slow tokenizer) instead of one [UNK] "
                  "(fast tokenizer, what PairRM was trained with)");
  }

  std::string directory() const {
    if (!model.empty()) return model;
    if (const char* env = std::getenv("PAIRRM_MODEL"); env && *env) return env;
    return PAIRRM_DEFAULT_MODEL_DIR;
  }

  std::shared_ptr<const pairrm::Model> load() const {
    pairrm::LoadOptions o;
    o.tokenizer.special_text =
        special_tokens == "hf" ? pairrm::SpecialTextPolicy::kHuggingFace : pairrm::SpecialTextPolicy::kLiteral;
    o.tokenizer.byte_fallback = byte_fallback;
    return pairrm::Model::load(directory(), o);
  }
};

pairrm::CompareMode parse_mode(const std::string& m) {
  if (m == "ab") return pairrm::CompareMode::kAB;
  if (m == "ba") return pairrm::CompareMode::kBA;
  return pairrm::CompareMode::kBoth;
}

json compare_json(const pairrm::CompareResult& r) {
  json o;
  if (r.has_ab) o["logit_ab"] = r.logit_ab;
  if (r.has_ba) o["logit_ba"] = r.logit_ba;
  o["score"] = r.score;
  o["a_better"] = r.a_better;
  return o;
}

int run_tokenize(const ModelFlags& flags, const std::string& text, bool as_json) {
  auto model = flags.load();
  const auto ids = model->encode(text);
  if (as_json) {
    std::cout << json{{"ids", ids}, {"length", ids.size()}}.dump() << "\n";
  } else {
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
  }
  return 0;
}

int run_compare_one(const ModelFlags& flags, const std::string& source, const std::string& a, const std::string& b,
                    pairrm::CompareMode mode, bool as_json) {
  auto model = flags.load();
  pairrm::Context ctx(model, flags.threads);
  const auto r = ctx.compare({{source, a, b}}, mode).at(0);
  if (as_json) {
    std::cout << compare_json(r).dump() << "\n";
  } else {
    std::printf("score    %.6f\n", r.score);
    if (r.has_ab) std::printf("logit_ab %.6f\n", r.logit_ab);
    if (r.has_ba) std::printf("logit_ba %.6f\n", r.logit_ba);
    std::printf("%s\n", r.a_better ? "A is better" : "A is not better");
  }
  return 0;
}

int run_compare_jsonl(const ModelFlags& flags, const std::string& input, const std::string& output,
                      pairrm::CompareMode mode, size_t batch) {
  auto model = flags.load();
  pairrm::Context ctx(model, flags.threads);
  std::ifstream in_file;
  std::ofstream out_file;
  std::istream* in = &std::cin;
  std::ostream* out = &std::cout;
  if (input != "-") {
    in_file.open(input, std::ios::binary);
    if (!in_file) throw pairrm::Error(input + ": cannot open");
    in = &in_file;
  }
  if (!output.empty() && output != "-") {
    out_file.open(output, std::ios::binary | std::ios::trunc);
    if (!out_file) throw pairrm::Error(output + ": cannot open for writing");
    out = &out_file;
  }
  pairrm::cli::JsonlOptions opt;
  opt.mode = mode;
  opt.batch_lines = batch;
  const auto stats = pairrm::cli::compare_jsonl(ctx, *in, *out, opt);
  if (!*out) throw pairrm::Error("write failed");
  std::cerr << "pairrm compare: " << stats.ok << " ok, " << stats.failed << " failed\n";
  return stats.failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pairrm: the PairRM pairwise reward model (LLM-Blender) in C++"};
  app.require_subcommand(1);
  app.set_version_flag("--version", pairrm::version());

  ModelFlags tok_flags;
  std::string tok_text;
  bool tok_json = false;
  auto* tok = app.add_subcommand("tokenize", "print the token ids of a text ([CLS] ... [SEP])");
  tok_flags.add(tok);
  tok->add_option("--text", tok_text, "the text")->required();
  tok->add_flag("--json", tok_json, "print {\"ids\": [...], \"length\": n}");

  ModelFlags cmp_flags;
  std::string source, a, b, input, output, mode = "both";
  bool cmp_json = false;
  size_t batch = 16;
  auto* cmp = app.add_subcommand("compare", "is candidate A a better answer to the source than candidate B?");
  cmp_flags.add(cmp);
  auto* src_opt = cmp->add_option("--source,-s", source, "the instruction / prompt");
  auto* a_opt = cmp->add_option("--a", a, "candidate A");
  auto* b_opt = cmp->add_option("--b", b, "candidate B");
  auto* in_opt = cmp->add_option("--input,-i", input,
                                 "JSONL file ('-' = stdin) of {\"id\"?, \"source\", \"candidate_a\", \"candidate_b\"}");
  cmp->add_option("--output,-o", output, "JSONL output file ('-' or absent = stdout)");
  cmp->add_option("--mode", mode,
                  "ab: logit(A,B); ba: logit(B,A); both (default): logit(A,B) - logit(B,A), llm-blender's default")
      ->check(CLI::IsMember({"ab", "ba", "both"}));
  cmp->add_option("--batch", batch, "comparisons per forward pass in --input mode (default 16)")
      ->check(CLI::PositiveNumber);
  cmp->add_flag("--json", cmp_json, "print the result as JSON");
  src_opt->excludes(in_opt);
  a_opt->excludes(in_opt);
  b_opt->excludes(in_opt);

  CLI11_PARSE(app, argc, argv);
  try {
    if (*tok) return run_tokenize(tok_flags, tok_text, tok_json);
    if (*cmp) {
      if (!input.empty()) return run_compare_jsonl(cmp_flags, input, output, parse_mode(mode), batch);
      if (!*src_opt || !*a_opt || !*b_opt) {
        std::cerr << "pairrm compare: give --source, --a and --b, or --input FILE.jsonl\n";
        return 2;
      }
      return run_compare_one(cmp_flags, source, a, b, parse_mode(mode), cmp_json);
    }
  } catch (const std::exception& e) {
    std::cerr << "pairrm: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
