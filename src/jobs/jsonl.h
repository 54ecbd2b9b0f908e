// Streaming JSON Lines jobs for the CLI: one line in memory at a time (bounded), lines processed in chunks
// whose forward passes are scheduled together, output in input order, one error record per bad line,
// resumable, with progress on stderr.
#pragma once
#include <exception>
#include <functional>
#include <istream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pairrm/pairrm.h"

namespace pairrm::jobs {

using OrderedJson = nlohmann::ordered_json;

class LineReader {
 public:
  LineReader(std::istream& in, size_t max_line_bytes) : in_(in), max_(max_line_bytes) {}
  // Reads the next line (without '\n'; a trailing '\r' is dropped). Returns false at end of input.
  // A line longer than the limit is consumed and reported through `too_long` with `line` cleared.
  bool next(std::string& line, bool& too_long);
  long line_number() const { return number_; }

 private:
  std::istream& in_;
  size_t max_;
  long number_ = 0;
};

// One kind of JSONL work: parse() validates a line into an item (throwing std::exception with a message
// that names the field), run() computes the output records of a chunk of items with one scheduled set of
// forward passes (throwing pairrm::Error when an item is bad, in which case the items are retried alone).
// The string field `key` of an input line. Throws std::invalid_argument naming the field when it is missing
// or not a string; an optional field may also be missing or null (then "").
std::string string_field(const nlohmann::json& line, const char* key, bool required = true);

// A record a job returns for an item it could not do (its line gets this error record, the others go on).
inline OrderedJson item_error(const std::string& message) { return OrderedJson{{"error", message}}; }
inline bool is_item_error(const OrderedJson& record) { return record.size() == 1 && record.contains("error"); }

// Thrown by a job's run() that must stop the whole command (an LLM endpoint refused the key, say) after
// some of its items were finished: `done` holds the records of the chunk's first done.size() items, which
// the runner still writes (so the work is kept and --resume starts after it) before rethrowing `cause`.
struct PartialRun : std::exception {
  std::vector<OrderedJson> done;
  std::exception_ptr cause;
  std::string message;
  PartialRun(std::vector<OrderedJson> d, std::exception_ptr c, std::string m)
      : done(std::move(d)), cause(std::move(c)), message(std::move(m)) {}
  const char* what() const noexcept override { return message.c_str(); }
};

class JsonlJob {
 public:
  virtual ~JsonlJob() = default;
  virtual void add(const nlohmann::json& line) = 0;
  virtual size_t size() const = 0;
  virtual void clear() = 0;
  virtual std::vector<OrderedJson> run(Scorer& ctx) = 0;
  virtual std::vector<OrderedJson> run_one(Scorer& ctx, size_t i) = 0;
};

template <class Item>
class TypedJob : public JsonlJob {
 public:
  using Parse = std::function<Item(const nlohmann::json&)>;
  using Run = std::function<std::vector<OrderedJson>(Scorer&, const std::vector<Item>&)>;
  TypedJob(Parse parse, Run run) : parse_(std::move(parse)), run_(std::move(run)) {}
  void add(const nlohmann::json& line) override { items_.push_back(parse_(line)); }
  size_t size() const override { return items_.size(); }
  void clear() override { items_.clear(); }
  std::vector<OrderedJson> run(Scorer& ctx) override { return run_(ctx, items_); }
  std::vector<OrderedJson> run_one(Scorer& ctx, size_t i) override { return run_(ctx, {items_.at(i)}); }

 private:
  Parse parse_;
  Run run_;
  std::vector<Item> items_;
};

struct JsonlOptions {
  std::string command = "pairrm";     // for progress and summary lines
  std::string input = "-";            // path or "-" (stdin)
  std::string output = "-";           // path or "-" (stdout)
  bool resume = false;                // continue an interrupted run into an existing output file
  bool quiet = false;
  size_t chunk_lines = 32;            // lines whose passes are scheduled together
  size_t max_line_bytes = 64u << 20;  // longer lines are an error record, not an allocation
  // --shard i/n: only the non-blank lines k (0-based) with k % n == i; `pairrm merge` interleaves them back.
  size_t shard_index = 0, shard_count = 1;
};

struct JsonlStats {
  long ok = 0;
  long failed = 0;
  long resumed = 0;  // lines already in the output before this run
};

// Runs `job` over the input. Each non-blank input line gives exactly one output line, in input order:
// the job's record with "id" (the input's, or null) first, or {"line": n, "error": "..."}.
// Throws pairrm::Error for problems with the files themselves.
JsonlStats run_jsonl(Scorer& ctx, JsonlJob& job, const JsonlOptions& options);

// "i/n" -> (i, n); throws Error unless 0 <= i < n.
std::pair<size_t, size_t> parse_shard(const std::string& text);

// `pairrm merge`: the outputs of --shard 0/n .. n-1/n (in that order) back into input order. Checks that the
// shard sizes are those of one split (nothing missing or duplicated) and, given the input, that the count and
// every record's id match it. Returns the number of records.
long merge_shards(const std::vector<std::string>& shard_outputs, const std::string& output, const std::string& input);

}  // namespace pairrm::jobs
