// Waiting for a state instead of sleeping for a guessed time. A fixed sleep is either too short on two busy
// cores or under a sanitizer (a flaky test) or longer than needed everywhere else; a poll with a generous
// deadline is only as slow as the machine, and still fails when the state never comes.
#pragma once
#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

namespace pairrm::test {

// The deadline of every wait: far beyond any healthy run, so that reaching it means the state never came.
constexpr std::chrono::seconds kWaitLimit{30};

// Calls ready() every `every` until it returns true (then true) or `limit` has passed (then false).
template <class Ready>
bool wait_until(Ready ready, std::chrono::milliseconds limit = kWaitLimit,
                std::chrono::milliseconds every = std::chrono::milliseconds(5)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (ready()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(every);
  }
}

// The value of one series in a Prometheus text exposition ("name value" or "name{labels} value", given as
// everything before the value), or nullopt when it is not there.
inline std::optional<double> metric(const std::string& exposition, const std::string& series) {
  const std::string line = series + " ";
  for (size_t at = exposition.find(line); at != std::string::npos; at = exposition.find(line, at + 1))
    if (at == 0 || exposition[at - 1] == '\n') return std::strtod(exposition.c_str() + at + line.size(), nullptr);
  return std::nullopt;
}

// GET /metrics of a server ("" when it did not answer).
inline std::string metrics_of(httplib::Client& c) {
  auto res = c.Get("/metrics");
  return res && res->status == 200 ? res->body : std::string();
}

// Forward passes a server holds for its requests, queued or running (-1 when it did not answer).
inline double rows_in_server(httplib::Client& c) {
  const std::string m = metrics_of(c);
  const auto queued = metric(m, "pairrm_queue_rows"), running = metric(m, "pairrm_running_rows");
  return queued && running ? *queued + *running : -1;
}

}  // namespace pairrm::test
