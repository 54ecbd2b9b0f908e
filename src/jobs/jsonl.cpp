#include "jobs/jsonl.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "jobs/progress.h"

namespace pairrm::jobs {

using nlohmann::json;

std::string string_field(const json& line, const char* key, bool required) {
  auto it = line.find(key);
  if (it == line.end() || (!required && it->is_null())) {
    if (required) throw std::invalid_argument(std::string("missing field '") + key + "'");
    return "";
  }
  if (!it->is_string()) throw std::invalid_argument(std::string("field '") + key + "' must be a string");
  return it->get<std::string>();
}

bool LineReader::next(std::string& line, bool& too_long) {
  line.clear();
  too_long = false;
  std::streambuf* sb = in_.rdbuf();
  bool any = false;
  for (;;) {
    const int c = sb->sbumpc();
    if (c == std::char_traits<char>::eof()) break;
    any = true;
    if (c == '\n') break;
    if (too_long) continue;
    if (line.size() >= max_) {
      too_long = true;
      line.clear();
      line.shrink_to_fit();
      continue;
    }
    line.push_back(static_cast<char>(c));
  }
  if (!any) return false;
  ++number_;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

namespace {

bool is_blank(const std::string& line) { return line.find_first_not_of(" \t\r") == std::string::npos; }

// Non-blank lines of a regular file, counted in one streaming pass (for the progress total); -1 for pipes.
long count_records(const std::string& path) {
  if (path == "-") return -1;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  std::ifstream in(path, std::ios::binary);
  long count = 0;
  bool content = false;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) {
      const char c = buf[i];
      if (c == '\n') {
        count += content;
        content = false;
      } else if (c != ' ' && c != '\t' && c != '\r') {
        content = true;
      }
    }
  }
  return count + content;
}

// For --resume: what `path` already holds, read without changing it. Only each record's id is kept (a
// large output is not held in memory); a partial last line (the process was killed mid-write) is noted,
// and cut only once the input has been checked against these records (finish_resume).
struct ResumePoint {
  std::vector<json> ids;    // per complete record: its "id", or null
  size_t complete_bytes = 0;  // the file up to the end of its last complete line
  size_t file_bytes = 0;
};

ResumePoint scan_output(const std::string& path) {
  ResumePoint r;
  std::ifstream in(path, std::ios::binary);
  if (!in) return r;
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) {  // no newline after it: the partial line of an interrupted run
      r.file_bytes = r.complete_bytes + line.size();
      return r;
    }
    json rec;
    try {
      rec = json::parse(line);
    } catch (const json::exception&) {
      throw Error(path + ": line " + std::to_string(r.ids.size() + 1) + " is not JSON; cannot --resume");
    }
    r.ids.push_back(rec.is_object() && rec.contains("id") ? rec["id"] : json(nullptr));
    r.complete_bytes += line.size() + 1;
  }
  r.file_bytes = r.complete_bytes;
  return r;
}

// Cuts the partial last line so appending continues on a line boundary.
void finish_resume(const std::string& path, const ResumePoint& r) {
  if (r.complete_bytes != r.file_bytes && ::truncate(path.c_str(), static_cast<off_t>(r.complete_bytes)) != 0)
    throw Error(path + ": cannot truncate for --resume");
}

// A user's input is never destroyed: writing the output over the input (or any file it is linked to) is
// refused before the output is opened.
void refuse_same_file(const std::string& input, const std::string& output, const char* what) {
  std::error_code ec;
  if (input.empty() || input == "-" || output.empty() || output == "-") return;
  if (std::filesystem::equivalent(input, output, ec))
    throw Error(std::string(what) + ": --output " + output + " is the input file " + input +
                "; refusing to overwrite it (write elsewhere, then move it)");
}

struct Pending {
  long line = 0;
  std::optional<std::string> error;
  json id;
  bool in_job = false;
};

class Runner {
 public:
  Runner(Scorer& ctx, JsonlJob& job, std::ostream& out, const JsonlOptions& opt, Progress& progress)
      : ctx_(ctx), job_(job), out_(out), opt_(opt), progress_(progress) {}

  void add(long number, const std::string& text, bool too_long) {
    Pending p;
    p.line = number;
    if (too_long) {
      p.error = "line longer than " + std::to_string(opt_.max_line_bytes) + " bytes";
    } else {
      try {
        const json j = json::parse(text);
        if (!j.is_object()) throw std::invalid_argument("line is not a JSON object");
        p.id = j.contains("id") ? j["id"] : json(nullptr);
        job_.add(j);
        p.in_job = true;
      } catch (const json::exception& e) {
        p.error = std::string("invalid JSON: ") + e.what();
      } catch (const std::exception& e) {
        p.error = e.what();
      }
    }
    pending_.push_back(std::move(p));
    if (pending_.size() >= std::max<size_t>(1, opt_.chunk_lines)) flush();
  }

  void flush() {
    if (pending_.empty()) return;
    std::vector<OrderedJson> results;
    std::vector<std::optional<std::string>> item_errors(job_.size());
    try {
      results = job_.run(ctx_);
    } catch (PartialRun& partial) {
      // The command stops, but what was finished is written first: the lines up to the first unfinished item.
      write(partial.done, item_errors, partial.done.size());
      std::rethrow_exception(partial.cause);
    } catch (const Error&) {
      // One bad item fails the whole chunk: redo it item by item so only the bad lines report errors.
      results.assign(job_.size(), OrderedJson());
      for (size_t i = 0; i < job_.size(); ++i) {
        try {
          results[i] = job_.run_one(ctx_, i).at(0);
        } catch (const Error& e) {
          item_errors[i] = e.what();
        }
      }
    }
    write(results, item_errors, results.size());
  }

  JsonlStats stats;

 private:
  // Writes the pending lines in order until the job item `finished` (exclusive), then drops what was written.
  void write(const std::vector<OrderedJson>& results, const std::vector<std::optional<std::string>>& item_errors,
             size_t finished) {
    size_t k = 0, written = 0;
    for (Pending& p : pending_) {
      if (p.in_job && k == finished) break;
      ++written;
      if (p.in_job) {
        if (item_errors[k]) p.error = item_errors[k];
        if (!p.error && is_item_error(results[k])) p.error = results[k]["error"].get<std::string>();
        ++k;
      }
      OrderedJson record;
      if (p.error) {
        if (!p.id.is_null()) record["id"] = p.id;  // when the line had one, so the failure can be matched up
        record["line"] = p.line;
        record["error"] = *p.error;
        ++stats.failed;
      } else {
        record["id"] = p.id;
        for (auto& [key, value] : results[k - 1].items()) record[key] = value;
        ++stats.ok;
      }
      out_ << record.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
    }
    out_.flush();
    if (!out_) throw Error(std::string("writing the output failed: ") + std::strerror(errno));
    job_.clear();
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(written));
    progress_.advance(stats.resumed + stats.ok + stats.failed);
  }

  Scorer& ctx_;
  JsonlJob& job_;
  std::ostream& out_;
  const JsonlOptions& opt_;
  Progress& progress_;
  std::vector<Pending> pending_;
};

}  // namespace

JsonlStats run_jsonl(Scorer& ctx, JsonlJob& job, const JsonlOptions& opt) {
  std::ifstream in_file;
  std::istream* in = &std::cin;
  if (opt.input != "-") {
    in_file.open(opt.input, std::ios::binary);
    if (!in_file) throw Error(opt.input + ": cannot open");
    in = &in_file;
  }
  const bool to_file = !opt.output.empty() && opt.output != "-";
  if (opt.resume && !to_file) throw Error("--resume needs --output FILE");
  refuse_same_file(opt.input, opt.output, opt.command.c_str());
  const ResumePoint done = opt.resume ? scan_output(opt.output) : ResumePoint{};
  std::ofstream out_file;
  std::ostream* out = &std::cout;
  // The output is opened (truncated, or cut to its last complete line for --resume) only once every record
  // it already holds has been matched with the input: a wrong --resume never changes the file.
  auto open_output = [&] {
    if (!to_file || out_file.is_open()) return;
    if (opt.resume) finish_resume(opt.output, done);
    out_file.open(opt.output, std::ios::binary | (opt.resume ? std::ios::app : std::ios::trunc));
    if (!out_file) throw Error(opt.output + ": cannot open for writing");
    out = &out_file;
  };
  if (!opt.resume) open_output();

  if (opt.shard_count < 1 || opt.shard_index >= opt.shard_count) throw Error("--shard i/n needs 0 <= i < n");
  long total = count_records(opt.input);
  if (total >= 0) total = (total + static_cast<long>(opt.shard_count - 1 - opt.shard_index)) / static_cast<long>(opt.shard_count);
  Progress progress(opt.command, total, opt.quiet);
  std::optional<Runner> runner;
  auto start_runner = [&] {
    if (runner) return;
    open_output();
    runner.emplace(ctx, job, *out, opt, progress);
    runner->stats.resumed = static_cast<long>(done.ids.size());  // all of them were matched and skipped
  };
  LineReader reader(*in, opt.max_line_bytes);
  std::string line;
  bool too_long = false;
  size_t skipped = 0;
  size_t record = 0;  // non-blank lines seen, for --shard
  while (reader.next(line, too_long)) {
    if (!too_long && is_blank(line)) continue;
    if (record++ % opt.shard_count != opt.shard_index) continue;
    if (skipped < done.ids.size()) {
      // Already in the output: check that it is this line's record (same id), then skip it.
      const json& rec_id = done.ids[skipped];
      if (!too_long && !rec_id.is_null()) {
        json id = nullptr;
        try {
          const json j = json::parse(line);
          if (j.is_object() && j.contains("id")) id = j["id"];
        } catch (const json::exception&) {
        }
        if (id != rec_id)
          throw Error("--resume: output line " + std::to_string(skipped + 1) + " has id " + rec_id.dump() +
                      " but input line " + std::to_string(reader.line_number()) + " has id " + id.dump() +
                      "; is this the output of the same input?");
      }
      ++skipped;
      continue;
    }
    start_runner();
    runner->add(reader.line_number(), line, too_long);
  }
  if (skipped < done.ids.size())
    throw Error("--resume: the output has " + std::to_string(done.ids.size()) + " records but the input only " +
                std::to_string(skipped));
  start_runner();
  runner->flush();
  JsonlStats stats = runner->stats;
  progress.finish(std::to_string(stats.ok) + " ok, " + std::to_string(stats.failed) + " failed" +
                  (stats.resumed ? ", " + std::to_string(stats.resumed) + " already done" : ""));
  return stats;
}

std::pair<size_t, size_t> parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  size_t i = 0, n = 0;
  try {
    size_t a = 0, b = 0;
    if (slash == std::string::npos) throw std::invalid_argument("");
    i = std::stoul(text.substr(0, slash), &a);
    n = std::stoul(text.substr(slash + 1), &b);
    if (a != slash || b != text.size() - slash - 1) throw std::invalid_argument("");
  } catch (const std::exception&) {
    throw Error("--shard '" + text + "': expected i/n, e.g. 0/4");
  }
  if (n < 1 || i >= n) throw Error("--shard '" + text + "': needs 0 <= i < n");
  return {i, n};
}

long merge_shards(const std::vector<std::string>& shards, const std::string& output, const std::string& input) {
  if (shards.empty()) throw Error("merge: no shard outputs given");
  refuse_same_file(input, output, "merge");
  for (const std::string& shard : shards) refuse_same_file(shard, output, "merge");
  std::vector<std::vector<std::string>> records(shards.size());
  for (size_t s = 0; s < shards.size(); ++s) {
    std::ifstream in(shards[s], std::ios::binary);
    if (!in) throw Error("merge: " + shards[s] + ": cannot open");
    std::string line;
    while (std::getline(in, line)) {
      if (is_blank(line)) continue;
      try {
        const json parsed = json::parse(line);  // only checked
        (void)parsed;
      } catch (const json::exception&) {
        throw Error("merge: " + shards[s] + ": record " + std::to_string(records[s].size() + 1) +
                    " is not JSON (an interrupted shard? finish it with --resume)");
      }
      records[s].push_back(line);
    }
  }
  // One split of N lines gives shard i ceil((N - i) / n) records: sizes never grow with i and differ by <= 1.
  long total = 0;
  for (const auto& r : records) total += static_cast<long>(r.size());
  const size_t n = shards.size();
  for (size_t s = 0; s < n; ++s) {
    const size_t want = (static_cast<size_t>(total) + n - 1 - s) / n;
    if (records[s].size() != want)
      throw Error("merge: " + shards[s] + " has " + std::to_string(records[s].size()) + " records, but shard " +
                  std::to_string(s) + "/" + std::to_string(n) + " of " + std::to_string(total) + " lines has " +
                  std::to_string(want) + ": a shard is missing, incomplete, duplicated or out of order");
  }
  std::vector<json> ids;  // of the input, when given
  if (!input.empty()) {
    std::ifstream in(input, std::ios::binary);
    if (!in) throw Error("merge: " + input + ": cannot open");
    LineReader reader(in, 64u << 20);
    std::string line;
    bool too_long = false;
    while (reader.next(line, too_long)) {
      if (!too_long && is_blank(line)) continue;
      json id = nullptr;
      try {
        const json j = json::parse(line);
        if (j.is_object() && j.contains("id")) id = j["id"];
      } catch (const json::exception&) {
      }
      ids.push_back(id);
    }
    if (static_cast<long>(ids.size()) != total)
      throw Error("merge: the input has " + std::to_string(ids.size()) + " lines but the shards " +
                  std::to_string(total) + " records");
  }
  std::ofstream out_file;
  std::ostream* out = &std::cout;
  if (!output.empty() && output != "-") {
    out_file.open(output, std::ios::binary | std::ios::trunc);
    if (!out_file) throw Error("merge: " + output + ": cannot open for writing");
    out = &out_file;
  }
  for (long k = 0; k < total; ++k) {
    const std::string& rec = records[static_cast<size_t>(k) % n][static_cast<size_t>(k) / n];
    if (!ids.empty()) {
      const json j = json::parse(rec);
      if (j.contains("id") && j["id"] != ids[static_cast<size_t>(k)])
        throw Error("merge: record " + std::to_string(k + 1) + " has id " + j["id"].dump() + " but input line " +
                    std::to_string(k + 1) + " has id " + ids[static_cast<size_t>(k)].dump());
    }
    *out << rec << "\n";
  }
  out->flush();
  return total;
}

}  // namespace pairrm::jobs
