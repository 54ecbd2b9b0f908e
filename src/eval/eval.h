// `pairrm eval`: score the answers of two systems to the same prompts with PairRM and report who wins
// (JSON with every number, a self-contained HTML page, a table on stdout).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/win_rate.h"
#include "pairrm/pairrm.h"

namespace pairrm::eval {

struct EvalItem {
  nlohmann::json id;  // the input's, or null
  std::string where;  // "line 12" / "id 7", for messages
  std::string prompt, a, b, category;
};

struct InputProblem {
  std::string where;
  std::string message;
};

struct EvalInput {
  std::vector<EvalItem> items;
  std::vector<InputProblem> problems;  // lines that could not be used
};

// Lines {"id"?, "prompt", "a", "b", "category"?}.
EvalInput read_pair_file(const std::string& path, size_t max_line_bytes);
// Two files of {"id", "prompt", "response", "category"?} joined on id (in the order of file A). An id in one
// file only, twice in a file, or with different prompts in the two files is a problem, never a guess.
EvalInput read_response_files(const std::string& path_a, const std::string& path_b, size_t max_line_bytes);

struct EvalOptions {
  std::string input;            // pair file, or
  std::string file_a, file_b;   // two response files
  std::string json_out, html_out;
  std::string name_a = "A", name_b = "B";
  std::string model_label;      // shown in the report
  StatsOptions stats;
  size_t top = 10;              // prompts listed per "most confident" table
  bool skip_bad = false;        // report unusable lines and go on, instead of failing
  bool quiet = false;
  size_t max_line_bytes = 64u << 20;
  size_t chunk = 32;            // prompts per scheduled set of forward passes
};

// Runs the evaluation and writes the requested files. Returns the JSON report. Throws pairrm::Error when a
// line is unusable (unless skip_bad) or nothing is left to evaluate.
nlohmann::ordered_json run_eval(Scorer& scorer, const EvalOptions& options);

// The report as plain text (the table printed on stdout).
std::string text_summary(const nlohmann::ordered_json& report);

// 100·x with one decimal: every percentage of the table and the page.
std::string percent(double x);

// The report as one self-contained HTML page (inline CSS and SVG, no script, no network).
std::string html_report(const nlohmann::ordered_json& report);

}  // namespace pairrm::eval
