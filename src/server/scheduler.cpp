#include "server/scheduler.h"

#include <algorithm>

namespace pairrm::server {

// One request's rows. Workers hold it by shared_ptr while its rows are in a batch, so a request that gives
// up (timeout, disconnect) can return at once.
struct BatchScheduler::Job {
  std::vector<PairRow> rows;
  std::vector<double> logits;
  size_t next = 0;       // first row not yet handed to a worker
  size_t remaining = 0;  // rows not yet scored
  bool abandoned = false;
  std::string error;     // set when a batch holding one of its rows failed
};

BatchScheduler::BatchScheduler(std::shared_ptr<const Model> model, SchedulerOptions options, Metrics& metrics)
    : model_(std::move(model)), options_(options), metrics_(metrics) {
  if (options_.workers < 1) throw Error("workers must be >= 1");
  if (options_.threads_per_worker <= 0)
    options_.threads_per_worker = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / options_.workers);
  if (options_.max_batch_tokens < 1 || options_.max_batch_rows < 1 || options_.max_queue_rows < 1)
    throw Error("batch and queue limits must be positive");
  for (int w = 0; w < options_.workers; ++w) workers_.emplace_back([this, w] { work(w); });
}

BatchScheduler::~BatchScheduler() {
  stop();
  for (auto& t : workers_) t.join();
}

void BatchScheduler::stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  work_ready_.notify_all();
}

long BatchScheduler::queued_rows() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_rows_;
}

std::vector<double> BatchScheduler::score(const std::vector<PairRow>& rows, Clock::time_point deadline,
                                          const std::function<bool()>& cancelled) {
  if (rows.empty()) return {};
  auto job = std::make_shared<Job>();
  job->rows = rows;
  job->logits.assign(rows.size(), 0.0);
  job->remaining = rows.size();
  const long n = static_cast<long>(rows.size());
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) throw ServeError(503, "the server is shutting down");
  if (queued_rows_ > 0 && queued_rows_ + n > options_.max_queue_rows) {
    metrics_.rejected("queue_full");
    throw ServeError(429, "the queue is full (" + std::to_string(queued_rows_) + " forward passes waiting, limit " +
                              std::to_string(options_.max_queue_rows) + "); retry later");
  }
  queue_.push_back(job);
  queued_rows_ += n;
  metrics_.set_queue_rows(queued_rows_);
  work_ready_.notify_all();

  auto abandon = [&](int status, const char* reason, const std::string& message) {
    job->abandoned = true;
    queued_rows_ -= static_cast<long>(job->rows.size() - job->next);
    job->next = job->rows.size();
    queue_.erase(std::remove(queue_.begin(), queue_.end(), job), queue_.end());
    metrics_.set_queue_rows(queued_rows_);
    metrics_.rejected(reason);
    throw ServeError(status, message);
  };
  // Wake up now and then to notice a deadline or a client that went away.
  constexpr auto kPoll = std::chrono::milliseconds(20);
  while (job->remaining > 0 && job->error.empty()) {
    job_done_.wait_for(lock, kPoll);
    if (job->remaining == 0 || !job->error.empty()) break;
    if (Clock::now() >= deadline) abandon(504, "timeout", "the request timed out before it was scored");
    lock.unlock();
    const bool gone = cancelled && cancelled();
    lock.lock();
    if (gone) abandon(499, "disconnected", "the client closed the connection");
  }
  if (!job->error.empty()) throw Error(job->error);
  return std::move(job->logits);
}

std::vector<double> logits_isolated(Context& ctx, const std::vector<PairRow>& batch, std::vector<std::string>& errors) {
  try {
    return ctx.logits(batch);
  } catch (const std::exception&) {
  }
  std::vector<double> logits(batch.size(), 0.0);
  for (size_t k = 0; k < batch.size(); ++k) {
    try {
      logits[k] = ctx.logits({batch[k]}).at(0);
    } catch (const std::exception& e) {
      errors[k] = e.what();
    }
  }
  return logits;
}

void BatchScheduler::work(int worker) {
  Context ctx(model_, options_.threads_per_worker);
  // Context::logits schedules a batch itself; give it the whole batch at once.
  ctx.set_batch_limits(options_.max_batch_rows, options_.max_batch_tokens);
  std::vector<std::pair<std::shared_ptr<Job>, size_t>> taken;
  std::vector<PairRow> batch;
  for (;;) {
    taken.clear();
    batch.clear();
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to do
      // First come, first served: rows in arrival order up to the batch limits (a longer row runs alone).
      long tokens = 0;
      while (!queue_.empty() && static_cast<int>(batch.size()) < options_.max_batch_rows) {
        const std::shared_ptr<Job>& job = queue_.front();
        const long len = static_cast<long>(job->rows[job->next].ids.size());
        if (!batch.empty() && tokens + len > options_.max_batch_tokens) break;
        tokens += len;
        batch.push_back(job->rows[job->next]);
        taken.emplace_back(job, job->next);
        if (++job->next == job->rows.size()) queue_.pop_front();
      }
      queued_rows_ -= static_cast<long>(batch.size());
      metrics_.batch_started(static_cast<long>(batch.size()), queued_rows_);
      if (!queue_.empty()) work_ready_.notify_one();  // another worker can start the next batch
    }
    const auto start = Clock::now();
    std::vector<std::string> errors(batch.size());
    const std::vector<double> logits = logits_isolated(ctx, batch, errors);
    long tokens = 0;
    for (const PairRow& r : batch) tokens += static_cast<long>(r.ids.size());
    metrics_.batch(static_cast<long>(batch.size()), tokens, std::chrono::duration<double>(Clock::now() - start).count());
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t k = 0; k < taken.size(); ++k) {
      Job& job = *taken[k].first;
      if (errors[k].empty())
        job.logits[taken[k].second] = logits[k];
      else
        job.error = errors[k];
      --job.remaining;
    }
    job_done_.notify_all();
  }
}

std::vector<double> RequestScorer::logits(const std::vector<PairRow>& rows) {
  used_rows_ += static_cast<long>(rows.size());
  if (used_rows_ > max_rows_)
    throw ServeError(413, "the request needs " + std::to_string(used_rows_) + " forward passes, over the limit of " +
                              std::to_string(max_rows_) + " per request (--max-passes)");
  return scheduler_.score(rows, deadline_, cancelled_);
}

}  // namespace pairrm::server
