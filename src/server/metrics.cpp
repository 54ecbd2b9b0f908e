#include "server/metrics.h"

#include <cstdio>

namespace pairrm::server {
namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

const std::vector<double> kLatencyBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

}  // namespace

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  long cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{" + labels + sep + "le=\"" + number(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(count_) + "\n";
  const std::string l = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + l + " " + number(sum_) + "\n";
  out += name + "_count" + l + " " + std::to_string(count_) + "\n";
}

void Metrics::request(const std::string& endpoint, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
  latency_.try_emplace(endpoint, kLatencyBounds).first->second.observe(seconds);
}

void Metrics::connection_refused(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++connections_refused_[reason];
}

void Metrics::rejected(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++rejected_[reason];
}

void Metrics::batch_started(long rows, long queue_rows) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_rows_ = queue_rows;
  running_rows_ += rows;
}

void Metrics::batch(long rows, long tokens, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  running_rows_ -= rows;
  batch_rows_.observe(static_cast<double>(rows));
  rows_ += rows;
  tokens_ += tokens;
  ++batches_;
  compute_seconds_ += seconds;
}

void Metrics::set_queue_rows(long rows) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_rows_ = rows;
}

std::string Metrics::prometheus() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out += "# HELP pairrm_requests_total HTTP requests by endpoint and status.\n# TYPE pairrm_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out += "pairrm_requests_total{endpoint=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(n) + "\n";
  out += "# HELP pairrm_request_duration_seconds Request latency by endpoint.\n"
         "# TYPE pairrm_request_duration_seconds histogram\n";
  for (const auto& [endpoint, h] : latency_) h.write(out, "pairrm_request_duration_seconds", "endpoint=\"" + endpoint + "\"");
  out += "# HELP pairrm_rejected_total Work refused or dropped: queue_full, timeout, disconnected.\n"
         "# TYPE pairrm_rejected_total counter\n";
  for (const char* reason : {"queue_full", "timeout", "disconnected"}) {
    auto it = rejected_.find(reason);
    out += std::string("pairrm_rejected_total{reason=\"") + reason + "\"} " +
           std::to_string(it == rejected_.end() ? 0 : it->second) + "\n";
  }
  out += "# HELP pairrm_connections_refused_total Connections refused or closed by the front door: per_client_limit "
         "(429), full (503), read_timeout (408), idle_evicted (closed idle for a new one), head_too_large (431), body_too_large (413).\n"
         "# TYPE pairrm_connections_refused_total counter\n";
  for (const char* reason : {"per_client_limit", "full", "read_timeout", "idle_evicted", "head_too_large", "body_too_large"}) {
    auto it = connections_refused_.find(reason);
    out += std::string("pairrm_connections_refused_total{reason=\"") + reason + "\"} " +
           std::to_string(it == connections_refused_.end() ? 0 : it->second) + "\n";
  }
  out += "# HELP pairrm_queue_rows Forward passes waiting for a worker.\n# TYPE pairrm_queue_rows gauge\n";
  out += "pairrm_queue_rows " + std::to_string(queue_rows_) + "\n";
  out += "# HELP pairrm_running_rows Forward passes a worker is computing now.\n# TYPE pairrm_running_rows gauge\n";
  out += "pairrm_running_rows " + std::to_string(running_rows_) + "\n";
  out += "# HELP pairrm_batch_rows Forward passes per batch.\n# TYPE pairrm_batch_rows histogram\n";
  batch_rows_.write(out, "pairrm_batch_rows", "");
  out += "# HELP pairrm_batches_total Batches run.\n# TYPE pairrm_batches_total counter\n";
  out += "pairrm_batches_total " + std::to_string(batches_) + "\n";
  out += "# HELP pairrm_rows_total Forward passes run.\n# TYPE pairrm_rows_total counter\n";
  out += "pairrm_rows_total " + std::to_string(rows_) + "\n";
  out += "# HELP pairrm_tokens_total Tokens run through the network.\n# TYPE pairrm_tokens_total counter\n";
  out += "pairrm_tokens_total " + std::to_string(tokens_) + "\n";
  out += "# HELP pairrm_compute_seconds_total Worker time spent in batches.\n# TYPE pairrm_compute_seconds_total counter\n";
  out += "pairrm_compute_seconds_total " + number(compute_seconds_) + "\n";
  out += "# HELP pairrm_tokens_per_second Tokens per second of compute time so far.\n"
         "# TYPE pairrm_tokens_per_second gauge\n";
  out += "pairrm_tokens_per_second " + number(compute_seconds_ > 0 ? tokens_ / compute_seconds_ : 0.0) + "\n";
  return out;
}

}  // namespace pairrm::server
