// The server's batching core: HTTP threads hand in the token rows of their requests, worker threads (one
// Context each) run them in shared batches. Each row still runs through the network alone (bitwise the
// same result as a sequential call); batching keeps both cores busy and bounds the queue.
#pragma once
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "pairrm/pairrm.h"
#include "server/metrics.h"

namespace pairrm::server {

using Clock = std::chrono::steady_clock;

// A request the server refuses or abandons, with its HTTP status (413, 429, 499, 503, 504).
class ServeError : public std::runtime_error {
 public:
  ServeError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

struct SchedulerOptions {
  int workers = 1;             // Contexts running batches side by side
  int threads_per_worker = 0;  // 0: all cores / workers
  long max_batch_tokens = 16384;
  int max_batch_rows = 64;
  long max_queue_rows = 8192;  // rows waiting; a request that would go past it gets 429 at once
};

// Logits of a batch that merges the rows of several requests. If the batch fails, each row is run alone, so
// only the rows that fail on their own get an error (errors[k], sized like batch); the others' logits are the
// same values (a row's logit never depends on its batch).
std::vector<double> logits_isolated(Context& ctx, const std::vector<PairRow>& batch, std::vector<std::string>& errors);

class BatchScheduler {
 public:
  BatchScheduler(std::shared_ptr<const Model> model, SchedulerOptions options, Metrics& metrics);
  ~BatchScheduler();  // finishes queued work, then joins the workers

  // Scores rows, blocking the calling (HTTP) thread. Throws ServeError: 429 when the queue is full, 503 after
  // stop(), 504 past the deadline, 499 once cancelled() returns true (polled while waiting); the rows not yet
  // started are then dropped.
  std::vector<double> score(const std::vector<PairRow>& rows, Clock::time_point deadline,
                            const std::function<bool()>& cancelled);

  // No new work (503); the queued work still runs.
  void stop();
  long queued_rows() const;
  const Model& model() const { return *model_; }
  const SchedulerOptions& options() const { return options_; }

 private:
  struct Job;
  void work(int worker);


  std::shared_ptr<const Model> model_;
  SchedulerOptions options_;
  Metrics& metrics_;
  mutable std::mutex mu_;
  std::condition_variable work_ready_, job_done_;
  std::deque<std::shared_ptr<Job>> queue_;
  long queued_rows_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

// The Scorer one request uses: every logits() call goes through the scheduler, and the request's total
// forward passes are capped (413 beyond the cap).
class RequestScorer : public Scorer {
 public:
  RequestScorer(BatchScheduler& scheduler, Clock::time_point deadline, std::function<bool()> cancelled, long max_rows)
      : scheduler_(scheduler), deadline_(deadline), cancelled_(std::move(cancelled)), max_rows_(max_rows) {}
  const Model& model() const override { return scheduler_.model(); }
  std::vector<double> logits(const std::vector<PairRow>& rows) override;

 private:
  BatchScheduler& scheduler_;
  Clock::time_point deadline_;
  std::function<bool()> cancelled_;
  long max_rows_;
  long used_rows_ = 0;
};

}  // namespace pairrm::server
