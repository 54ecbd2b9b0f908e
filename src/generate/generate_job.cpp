#include "generate/generate_job.h"

#include <atomic>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

namespace pairrm::generate {
namespace {

using nlohmann::json;
using jobs::OrderedJson;


class GenerateJob : public jobs::JsonlJob {
 public:
  explicit GenerateJob(const GenerateOptions& options) : options_(options), client_(options.chat) {
    if (options_.n < 1) throw Error("--n must be at least 1");
    if (options_.return_scores && options_.select.method != SelectionMethod::kFull)
      throw Error("--return-scores needs --method full (bubble selection does not score every sample)");
  }

  void add(const json& line) override {
    Item item;
    item.prompt = jobs::string_field(line, "prompt", true);
    item.system = line.contains("system") ? jobs::string_field(line, "system", false) : options_.system;
    items_.push_back(std::move(item));
  }
  size_t size() const override { return items_.size(); }
  void clear() override { items_.clear(); }

  std::vector<OrderedJson> run(Scorer& scorer) override {
    std::vector<size_t> all(items_.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    if (std::exception_ptr fatal = generate(all)) {
      // The endpoint stopped the run: the prompts answered before the first unanswered one are still
      // scored and written (their samples cost money and time), then the run stops.
      std::vector<size_t> answered;
      for (size_t i : all) {
        if (!items_[i].generated) break;
        answered.push_back(i);
      }
      std::string why = "the endpoint stopped the run";
      try {
        std::rethrow_exception(fatal);
      } catch (const std::exception& e) {
        why = e.what();
      } catch (...) {
      }
      // One by one, so an engine refusal of one answered prompt (its own error record) cannot lose the others.
      std::vector<OrderedJson> done;
      for (size_t i : answered) {
        try {
          done.push_back(select(scorer, {i}).at(0));
        } catch (const Error& e) {
          done.push_back(jobs::item_error(e.what()));
        }
      }
      throw jobs::PartialRun(std::move(done), fatal, why);
    }
    return select(scorer, all);
  }
  // Only after run() threw pairrm::Error (an engine refusal): the samples are kept, never asked for again.
  std::vector<OrderedJson> run_one(Scorer& scorer, size_t i) override {
    if (std::exception_ptr fatal = generate({i})) std::rethrow_exception(fatal);
    return select(scorer, {i});
  }

 private:
  struct Item {
    std::string prompt, system;
    bool generated = false;
    std::vector<std::string> samples;
    std::optional<std::string> error;
  };

  // Samples for the items that have none yet, `concurrency` prompts at a time. Returns the error that
  // stopped the endpoint (a bad key, no such endpoint), if any; the prompts it hit stay ungenerated.
  std::exception_ptr generate(const std::vector<size_t>& which) {
    std::vector<size_t> todo;
    for (size_t i : which)
      if (!items_[i].generated) todo.push_back(i);
    std::atomic<size_t> next{0};
    std::atomic<bool> stop{false};
    std::exception_ptr fatal;
    std::mutex mu;
    auto worker = [&] {
      for (size_t k; !stop && (k = next++) < todo.size();) {
        Item& item = items_[todo[k]];
        try {
          item.samples = client_.sample(item.prompt, item.system, options_.n);
        } catch (const PromptError& e) {
          item.error = e.what();
        } catch (...) {  // FatalEndpointError, or anything unexpected: stop taking prompts
          std::lock_guard<std::mutex> lock(mu);
          if (!fatal) fatal = std::current_exception();
          stop = true;
          continue;  // not generated: a resumed run asks again
        }
        item.generated = true;
      }
    };
    const size_t threads = std::min<size_t>(todo.size(), static_cast<size_t>(std::max(1, options_.concurrency)));
    std::vector<std::thread> pool;
    for (size_t t = 0; t < threads; ++t) pool.emplace_back(worker);
    for (auto& t : pool) t.join();
    return fatal;
  }

  std::vector<OrderedJson> select(Scorer& scorer, const std::vector<size_t>& which) {
    std::vector<RankInput> inputs;
    for (size_t i : which)
      if (!items_[i].error) inputs.push_back({items_[i].prompt, items_[i].samples});
    const auto chosen = best_of_n(scorer, inputs, options_.select);
    std::vector<OrderedJson> out;
    size_t k = 0;
    for (size_t i : which) {
      const Item& item = items_[i];
      if (item.error) {
        out.push_back(jobs::item_error(*item.error));
        continue;
      }
      const auto& r = chosen[k++];
      OrderedJson o{{"prompt", item.prompt}, {"best", item.samples[r.index]}, {"best_index", r.index}};
      if (options_.return_samples) o["samples"] = item.samples;
      if (options_.return_scores) o["scores"] = r.ranking.scores;
      out.push_back(std::move(o));
    }
    return out;
  }

  GenerateOptions options_;
  ChatClient client_;
  std::vector<Item> items_;
};

}  // namespace

std::unique_ptr<jobs::JsonlJob> make_generate_job(const GenerateOptions& options) {
  return std::make_unique<GenerateJob>(options);
}

}  // namespace pairrm::generate
