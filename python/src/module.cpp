// The `pairrm._pairrm` extension: the C++ engine as seen from Python. The llm-blender / trl shaped API
// (argument names, defaults, numpy return types) lives in python/pairrm/*.py on top of this.
//
// Threading: a loaded Model is immutable and shared; each call borrows a Context (scratch memory) from a
// pool, so several Python threads can use one model at once. Every call copies its Python arguments into
// C++ values first and then releases the GIL for the tokenizer and the network.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "pairrm/pairrm.h"
#include "jobs/commands.h"
#include "jobs/jsonl.h"
#include "hub/hub.h"
#include "pairrm/chat_template.h"
#include "pairrm/ranking.h"

namespace py = pybind11;
using namespace pairrm;

namespace {

template <typename T>
py::array_t<T> to_array(const std::vector<T>& v) {
  py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

template <typename From, typename To>
py::array_t<To> to_array_as(const std::vector<From>& v) {
  py::array_t<To> a(static_cast<py::ssize_t>(v.size()));
  To* out = a.mutable_data();
  for (size_t i = 0; i < v.size(); ++i) out[i] = static_cast<To>(v[i]);
  return a;
}

std::vector<RankInput> rank_inputs(const std::vector<std::string>& sources,
                                   const std::vector<std::vector<std::string>>& candidates) {
  if (sources.size() != candidates.size())
    throw Error("got " + std::to_string(sources.size()) + " inputs but " + std::to_string(candidates.size()) +
                " candidate lists");
  std::vector<RankInput> in(sources.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (candidates[i].empty()) throw Error("input " + std::to_string(i) + " has no candidates");
    in[i] = {sources[i], candidates[i]};
  }
  return in;
}

// A loaded model plus a pool of Contexts, one per concurrent caller.
class PyModel {
 public:
  PyModel(const std::string& path, const std::string& precision, const std::string& special_tokens,
          bool byte_fallback, int threads, const std::string& attention, int source_max_length,
          int candidate_max_length) {
    LoadOptions opt;
    opt.precision = parse_precision(precision);
    opt.attention = parse_attention_products(attention);
    // llm-blender's truncation, in tokens of a segment with its [CLS], prefix and [SEP]; 0 = the checkpoint's.
    opt.source_max_length = source_max_length;
    opt.candidate_max_length = candidate_max_length;
    if (special_tokens == "literal")
      opt.tokenizer.special_text = SpecialTextPolicy::kLiteral;
    else if (special_tokens == "hf")
      opt.tokenizer.special_text = SpecialTextPolicy::kHuggingFace;
    else
      throw Error("special_tokens must be 'literal' or 'hf', not '" + special_tokens + "'");
    opt.tokenizer.byte_fallback = byte_fallback;
    {
      py::gil_scoped_release nogil;
      model_ = Model::load(path, opt);
    }
    set_threads(threads);
  }

  int threads() const { return threads_; }
  void set_threads(int threads) {
    if (threads < 0) throw Error("threads must be >= 0 (0 = all cores), not " + std::to_string(threads));
    threads_ = threads;
  }

  py::dict info() const {
    const ModelInfo& i = model_->info();
    py::dict d;
    d["directory"] = i.directory;
    d["layout"] = i.layout;
    d["hidden_size"] = i.hidden_size;
    d["num_layers"] = i.num_layers;
    d["num_heads"] = i.num_heads;
    d["intermediate_size"] = i.intermediate_size;
    d["vocab_size"] = i.vocab_size;
    d["position_buckets"] = i.position_buckets;
    d["max_relative_positions"] = i.max_relative_positions;
    d["source_max_tokens"] = i.source_max_tokens;
    d["candidate_max_tokens"] = i.candidate_max_tokens;
    d["parameter_count"] = i.parameter_count;
    d["precision"] = precision_name(i.precision);
    d["attention_products"] = i.bf16_attention ? "bf16" : "fp32";
    d["isa"] = i.isa;
    d["isa_choice"] = i.isa_choice;
    d["gemm_kernel"] = i.gemm_kernel;
    py::list gemms;
    for (const DenseGemmInfo& g : i.dense_gemms) {
      py::dict e;
      e["n"] = g.n;
      e["k"] = g.k;
      e["layers"] = g.layers;
      e["gemm"] = g.gemm;
      e["how"] = g.how;
      e["own_gflops"] = g.own_gflops;
      e["onednn_gflops"] = g.onednn_gflops;
      gemms.append(e);
    }
    d["dense_gemms"] = gemms;
    d["special_tokens"] = model_->tokenizer_options().special_text == SpecialTextPolicy::kLiteral ? "literal" : "hf";
    d["byte_fallback"] = model_->tokenizer_options().byte_fallback;
    d["version"] = version();
    return d;
  }

  py::array_t<int32_t> tokenize(const std::string& text) const {
    std::vector<int32_t> ids;
    {
      py::gil_scoped_release nogil;
      ids = model_->encode(text);
    }
    return to_array(ids);
  }

  py::dict build_row(const std::string& source, const std::string& c1, const std::string& c2) const {
    PairRow r;
    {
      py::gil_scoped_release nogil;
      r = model_->build_row(source, c1, c2);
    }
    py::dict d;
    d["ids"] = to_array(r.ids);
    d["source_pos"] = r.source_pos;
    d["cand1_pos"] = r.cand1_pos;
    d["cand2_pos"] = r.cand2_pos;
    return d;
  }

  py::array_t<double> logits(const py::list& rows) {
    std::vector<PairRow> in;
    in.reserve(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto fail = [&](const std::string& what) {
        throw Error("row " + std::to_string(i) + ": " + what);
      };
      if (!py::isinstance<py::dict>(rows[i])) fail("must be a dict with ids, source_pos, cand1_pos, cand2_pos");
      py::dict d = rows[i].cast<py::dict>();
      PairRow r;
      for (const char* key : {"ids", "source_pos", "cand1_pos", "cand2_pos"})
        if (!d.contains(key)) fail(std::string("missing '") + key + "'");
      try {
        r.ids = d["ids"].cast<std::vector<int32_t>>();
        r.source_pos = d["source_pos"].cast<int32_t>();
        r.cand1_pos = d["cand1_pos"].cast<int32_t>();
        r.cand2_pos = d["cand2_pos"].cast<int32_t>();
      } catch (const py::cast_error&) {
        fail("ids must be a sequence of int32 token ids and the positions int32 integers");
      }
      in.push_back(std::move(r));
    }
    std::vector<double> out;
    {
      py::gil_scoped_release nogil;
      out = with_context([&](Context& ctx) { return ctx.logits(in); });
    }
    return to_array(out);
  }

  // logit_ab and logit_ba (NaN where the mode does not compute them) and the mode's score.
  py::tuple compare(const std::vector<std::string>& sources, const std::vector<std::string>& a,
                    const std::vector<std::string>& b, const std::string& mode_name) {
    if (sources.size() != a.size() || a.size() != b.size())
      throw Error("inputs, candidates_A and candidates_B must have the same length (got " +
                  std::to_string(sources.size()) + ", " + std::to_string(a.size()) + ", " + std::to_string(b.size()) +
                  ")");
    const CompareMode mode = parse_compare_mode(mode_name);
    std::vector<Comparison> items(sources.size());
    for (size_t i = 0; i < items.size(); ++i) items[i] = {sources[i], a[i], b[i]};
    std::vector<CompareResult> res;
    {
      py::gil_scoped_release nogil;
      res = with_context([&](Context& ctx) { return ctx.compare(items, mode); });
    }
    return compare_tuple(res);
  }

  py::tuple compare_conversations(const std::vector<std::vector<std::pair<std::string, std::string>>>& conv_a,
                                  const std::vector<std::vector<std::pair<std::string, std::string>>>& conv_b,
                                  const std::string& mode_name) {
    if (conv_a.size() != conv_b.size())
      throw Error("conversations_a and conversations_b must have the same length (got " +
                  std::to_string(conv_a.size()) + " and " + std::to_string(conv_b.size()) + ")");
    const CompareMode mode = parse_compare_mode(mode_name);
    auto convert = [](const std::vector<std::pair<std::string, std::string>>& turns) {
      Conversation c;
      for (const auto& [role, content] : turns) c.push_back({role, content});
      return c;
    };
    std::vector<std::pair<Conversation, Conversation>> items;
    for (size_t i = 0; i < conv_a.size(); ++i) items.emplace_back(convert(conv_a[i]), convert(conv_b[i]));
    std::vector<CompareResult> res;
    {
      py::gil_scoped_release nogil;
      res = with_context([&](Context& ctx) { return pairrm::compare_conversations(ctx, items, mode); });
    }
    return compare_tuple(res);
  }

  // [(scores float64, ranks int32)] per input.
  py::list rank(const std::vector<std::string>& sources, const std::vector<std::vector<std::string>>& candidates) {
    const auto in = rank_inputs(sources, candidates);
    std::vector<RankResult> res;
    {
      py::gil_scoped_release nogil;
      res = with_context([&](Context& ctx) { return pairrm::rank(ctx, in); });
    }
    py::list out;
    for (const auto& r : res) out.append(py::make_tuple(to_array(r.scores), to_array_as<int, int32_t>(r.ranks)));
    return out;
  }

  // [(scores, ranks, reference text)] per input.
  py::list rank_with_ref(const std::vector<std::string>& sources, const std::vector<std::vector<std::string>>& candidates,
                         const std::string& ref_mode, const std::optional<std::vector<std::string>>& references) {
    const auto in = rank_inputs(sources, candidates);
    if (references && references->size() != in.size())
      throw Error("got " + std::to_string(in.size()) + " inputs but " + std::to_string(references->size()) +
                  " reference candidates");
    const ReferenceMode mode = parse_reference_mode(ref_mode);
    std::vector<RankWithRefResult> res;
    {
      py::gil_scoped_release nogil;
      res = with_context([&](Context& ctx) {
        return pairrm::rank_with_ref(ctx, in, mode, references ? &*references : nullptr);
      });
    }
    py::list out;
    for (const auto& r : res)
      out.append(py::make_tuple(to_array(r.scores), to_array_as<int, int32_t>(r.ranks), r.reference));
    return out;
  }

  // [dict(index, order, pass_scores, scores, ranks)] per input.
  py::list best_of_n(const std::vector<std::string>& sources, const std::vector<std::vector<std::string>>& candidates,
                     const std::string& method, bool worst, std::optional<uint64_t> seed) {
    const auto in = rank_inputs(sources, candidates);
    BestOfNOptions opt;
    if (method == "bubble")
      opt.method = SelectionMethod::kBubble;
    else if (method == "full")
      opt.method = SelectionMethod::kFull;
    else
      throw Error("pairrm_cmp_type must be 'bubble' or 'full', not '" + method + "'");
    opt.worst = worst;
    opt.seed = seed;
    std::vector<BestOfNResult> res;
    {
      py::gil_scoped_release nogil;
      res = with_context([&](Context& ctx) { return pairrm::best_of_n(ctx, in, opt); });
    }
    py::list out;
    for (const auto& r : res) {
      py::dict d;
      d["index"] = r.index;
      d["order"] = to_array_as<size_t, int64_t>(r.order);
      d["pass_scores"] = to_array(r.pass_scores);
      d["scores"] = to_array(r.ranking.scores);
      d["ranks"] = to_array_as<int, int32_t>(r.ranking.ranks);
      out.append(d);
    }
    return out;
  }

  // The CLI's JSONL job over a file, output to a file: byte for byte what `pairrm <command> --input` writes.
  py::dict run_jsonl(const std::string& command, const std::string& input, const std::string& output,
                     const py::dict& options) {
    auto get = [&](const char* key, const std::string& fallback) {
      return options.contains(key) && !options[key].is_none() ? py::str(options[key]).cast<std::string>() : fallback;
    };
    jobs::JobSpec spec{.command = command, .mode = get("mode", "both"), .method = get("method", "bubble")};
    if (const std::string ref = get("with_ref", ""); !ref.empty()) spec.with_ref = ref;
    if (options.contains("seed") && !options["seed"].is_none()) spec.seed = options["seed"].cast<uint64_t>();
    spec.return_all = options.contains("return_all") && options["return_all"].cast<bool>();
    if (options.contains("max_candidates")) spec.limits.max_candidates = options["max_candidates"].cast<size_t>();
    std::unique_ptr<jobs::JsonlJob> job;
    try {
      job = jobs::make_job(spec);
    } catch (const std::invalid_argument& e) {
      throw Error(e.what());
    }
    jobs::JsonlOptions o;
    o.command = "pairrm " + command;
    o.input = input;
    o.output = output;
    o.quiet = true;
    jobs::JsonlStats stats;
    {
      py::gil_scoped_release nogil;
      stats = with_context([&](Context& ctx) { return jobs::run_jsonl(ctx, *job, o); });
    }
    py::dict d;
    d["ok"] = stats.ok;
    d["failed"] = stats.failed;
    return d;
  }

 private:
  // Runs f with a Context from the pool (a new one when every pooled one is busy). Called without the GIL.
  template <typename F>
  auto with_context(F&& f) -> decltype(f(std::declval<Context&>())) {
    std::unique_ptr<Context> ctx;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!pool_.empty()) {
        ctx = std::move(pool_.back());
        pool_.pop_back();
      }
    }
    if (!ctx) ctx = std::make_unique<Context>(model_, threads_);
    ctx->set_threads(threads_);
    struct Return {  // back to the pool on success and on error alike
      PyModel* self;
      std::unique_ptr<Context>& ctx;
      ~Return() {
        std::lock_guard<std::mutex> lock(self->mu_);
        self->pool_.push_back(std::move(ctx));
      }
    } give_back{this, ctx};
    return f(*ctx);
  }

  static py::tuple compare_tuple(const std::vector<CompareResult>& res) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::vector<double> ab(res.size()), ba(res.size()), score(res.size());
    for (size_t i = 0; i < res.size(); ++i) {
      ab[i] = res[i].has_ab ? res[i].logit_ab : nan;
      ba[i] = res[i].has_ba ? res[i].logit_ba : nan;
      score[i] = res[i].score;
    }
    return py::make_tuple(to_array(score), to_array(ab), to_array(ba));
  }

  std::shared_ptr<const Model> model_;
  int threads_ = 0;
  std::mutex mu_;
  std::vector<std::unique_ptr<Context>> pool_;
};

}  // namespace

PYBIND11_MODULE(_pairrm, m) {
  m.doc() = "pairrm.cpp engine (use the pairrm package: Blender, PairRMJudge, Model)";
  py::register_exception<Error>(m, "Error", PyExc_ValueError);
  m.def("version", &version);
  m.def("is_repo_id", [](const std::string& s) { return hub::parse_repo_id(s).has_value(); });
  m.def(
      "resolve_model",
      [](const std::string& s, const std::string& cache) {
        hub::HubOptions o;
        o.cache = cache;  // empty: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
        py::gil_scoped_release nogil;
        return hub::resolve_model(s, o);
      },
      py::arg("model"), py::arg("cache") = std::string(),
      "A directory as is; a Hugging Face repo id (org/name[@revision]) from the hub cache (`cache`, default the "
      "huggingface_hub one), downloaded when missing");
  m.def(
      "cached_model",
      [](const std::string& s, const std::string& cache) -> std::optional<std::string> {
        const auto ref = hub::parse_repo_id(s);
        if (!ref) throw Error(s + ": not a Hugging Face repo id 'org/name[@revision]'");
        return hub::cached_snapshot(*ref, cache.empty() ? hub::cache_dir() : cache);
      },
      py::arg("model"), py::arg("cache") = std::string(),
      "The cached snapshot directory of a repo id holding every needed file, or None; never uses the network");
  m.def("hub_cache_dir", &hub::cache_dir, "The huggingface_hub cache directory the hub client uses by default");
  // Chat-template markup (pairrm/chat_template.h), for reward_function(strip_chat_template=...).
  m.def(
      "chat_turns",
      [](const std::string& text, const std::string& kind, const std::vector<std::string>& eos,
         bool drop_generation_prompt) -> std::optional<std::vector<std::pair<std::string, std::string>>> {
        const auto messages = read_chat_messages(text, {parse_chat_template(kind), eos});
        if (!messages) return std::nullopt;
        std::vector<std::pair<std::string, std::string>> out;
        for (const Turn& t : chat_turns(*messages, drop_generation_prompt)) out.emplace_back(t.role, t.content);
        return out;
      },
      py::arg("text"), py::arg("template"), py::arg("eos_strings") = std::vector<std::string>(),
      py::arg("drop_generation_prompt") = true,
      "The turns (role 'USER'/'ASSISTANT', content) a chat-templated text holds, or None when it has no markup");
  m.def(
      "strip_end_of_text",
      [](const std::string& text, const std::string& kind, const std::vector<std::string>& eos) {
        return strip_end_of_text(text, {parse_chat_template(kind), eos});
      },
      py::arg("text"), py::arg("template"), py::arg("eos_strings") = std::vector<std::string>(),
      "The text less the template's end-of-turn and end-of-text strings at its end");

  py::class_<PyModel>(m, "Engine")
      .def(py::init<const std::string&, const std::string&, const std::string&, bool, int, const std::string&, int,
                    int>(),
           py::arg("path"), py::arg("precision") = "fp32", py::arg("special_tokens") = "literal",
           py::arg("byte_fallback") = false, py::arg("threads") = 0, py::arg("attention") = "auto",
           py::arg("source_max_length") = 0, py::arg("candidate_max_length") = 0)
      .def_property("threads", &PyModel::threads, &PyModel::set_threads)
      .def("info", &PyModel::info)
      .def("tokenize", &PyModel::tokenize, py::arg("text"))
      .def("build_row", &PyModel::build_row, py::arg("source"), py::arg("candidate1"), py::arg("candidate2"))
      .def("logits", &PyModel::logits, py::arg("rows"))
      .def("compare", &PyModel::compare, py::arg("sources"), py::arg("candidates_a"), py::arg("candidates_b"),
           py::arg("mode"))
      .def("compare_conversations", &PyModel::compare_conversations, py::arg("conversations_a"),
           py::arg("conversations_b"), py::arg("mode"))
      .def("rank", &PyModel::rank, py::arg("sources"), py::arg("candidates"))
      .def("rank_with_ref", &PyModel::rank_with_ref, py::arg("sources"), py::arg("candidates"), py::arg("ref_mode"),
           py::arg("references") = std::nullopt)
      .def("best_of_n", &PyModel::best_of_n, py::arg("sources"), py::arg("candidates"), py::arg("method"),
           py::arg("worst"), py::arg("seed") = std::nullopt)
      .def("run_jsonl", &PyModel::run_jsonl, py::arg("command"), py::arg("input"), py::arg("output"),
           py::arg("options") = py::dict());
}
