// Counters and histograms of the server, written out in the Prometheus text format (GET /metrics).
#pragma once
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace pairrm::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v);
  // name_bucket{labels,le=...} lines, then name_sum and name_count.
  void write(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<long> counts_;  // counts_[i]: values <= bounds_[i]; the last one: above every bound
  double sum_ = 0;
  long count_ = 0;
};

class Metrics {
 public:
  void request(const std::string& endpoint, int status, double seconds);
  void rejected(const std::string& reason);
  // A connection the front door refused or cut: per_client_limit, full, read_timeout, idle_evicted,
  // head_too_large (server/connection_gate.h).
  void connection_refused(const std::string& reason);
  // A worker took `rows` from the queue, leaving `queue_rows` waiting, and is running them (batch() reports
  // them done). One update of both gauges, so that a reader never sees the rows in neither.
  void batch_started(long rows, long queue_rows);
  void batch(long rows, long tokens, double seconds);
  void set_queue_rows(long rows);
  std::string prometheus() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, long> requests_;
  std::map<std::string, Histogram> latency_;
  std::map<std::string, long> rejected_;
  std::map<std::string, long> connections_refused_;
  Histogram batch_rows_{{1, 2, 4, 8, 16, 32, 64, 128, 256}};
  long rows_ = 0, tokens_ = 0, batches_ = 0, queue_rows_ = 0, running_rows_ = 0;
  double compute_seconds_ = 0;
};

}  // namespace pairrm::server
