// Runs the `pairrm` binary for the CLI tests.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pairrm::test {

using nlohmann::json;

struct CliResult {
  int status;
  std::string out;
};

// `env` is put before the command: "NAME=value NAME2=value2".
// `with_stderr`: the output has stderr too (for checking error messages).
inline CliResult run_env(const std::string& env, const std::string& args, const std::string& stdin_text = "",
                         bool with_stderr = false) {
  const std::string in_path =
      (std::filesystem::temp_directory_path() / ("pairrm_cli_in_" + std::to_string(::getpid()))).string();
  std::ofstream(in_path, std::ios::binary) << stdin_text;
  const std::string cmd = env + " " + std::string(PAIRRM_BIN) + " " + args + " < " + in_path + (with_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = ::pclose(p);
  std::filesystem::remove(in_path);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

inline CliResult run(const std::string& args, const std::string& stdin_text = "") { return run_env("", args, stdin_text); }

inline std::vector<json> lines(const std::string& out) {
  std::vector<json> v;
  size_t pos = 0;
  while (pos < out.size()) {
    const size_t nl = out.find('\n', pos);
    v.push_back(json::parse(out.substr(pos, nl - pos)));
    pos = nl == std::string::npos ? out.size() : nl + 1;
  }
  return v;
}

}  // namespace pairrm::test
