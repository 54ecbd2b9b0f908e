// `pairrm serve` killed with SIGKILL under load, then started again. Nothing the clients are told is ever
// wrong: while it is down they get connection errors (refused, reset, cut short), never an
// answer with other numbers nor a malformed one; once it is back they get the very same numbers as before
// (bitwise: JSON doubles round-trip exactly).
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "fixtures.h"
#include "polling.h"
#include "server_process.h"

namespace pairrm {
namespace {

using nlohmann::json;
using test::ServerProcess;

struct Request {
  std::string path;
  std::string body;
};

// A few requests of each of pairrm's own kinds and one protocol, small enough that the load is many of them.
std::vector<Request> fixed_requests() {
  std::vector<Request> out;
  for (int i = 0; i < 3; ++i)
    out.push_back({"/compare", json{{"source", "What is " + std::to_string(i) + " + 2?"},
                                    {"candidate_a", std::to_string(i + 2)},
                                    {"candidate_b", "I do not know, sorry."}}
                                   .dump()});
  for (int i = 0; i < 2; ++i)
    out.push_back({"/rank", json{{"source", "Name a colour " + std::to_string(i)},
                                 {"candidates", {"red", "blue " + std::to_string(i), "the colour of the sky"}}}
                                .dump()});
  out.push_back({"/rerank", json{{"query", "What is Deep Learning?"},
                                 {"texts", {"Deep Learning is a kind of machine learning", "cheese"}},
                                 {"raw_scores", true}}
                                .dump()});
  return out;
}

std::vector<std::string> serve_args() { return {"--model", test::model_dir("tiny"), "--threads", "2"}; }

// SIGPIPE is what a write to a connection the dead server reset raises; in a client thread it must be an
// EPIPE error, not the end of the test process. Blocked per thread: a process-wide SIG_IGN would be inherited
// by the servers the test starts.
void block_sigpipe_in_this_thread() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
}

enum Phase { kUp, kKilled, kRestarted };

// What the clients saw. "Before the kill": requests that ended before the signal was sent; "after the restart":
// requests sent once the new server answered /health; errors of any other request count as "while down".
struct Tally {
  std::atomic<long> right_before_kill{0}, right_after_restart{0};
  std::atomic<long> errors_before_kill{0}, errors_while_down{0}, errors_after_restart{0};
  std::mutex mu;
  std::vector<std::string> wrong;  // every answer that was not the expected one, described

  void add_wrong(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    wrong.push_back(what);
  }
  bool any_wrong() {
    std::lock_guard<std::mutex> lock(mu);
    return !wrong.empty();
  }
  // A phase has run long enough once it has `enough` right answers, or as soon as one answer is wrong.
  bool enough(const std::atomic<long>& right, long wanted) { return right >= wanted || any_wrong(); }
};

// Client threads that send the requests round and round, to the server on `port` (which the test changes
// when it restarts the server), until stop() (also when a test assertion returns early).
class Load {
 public:
  Load(int clients, const std::atomic<int>& port, const std::vector<Request>& requests,
       const std::vector<json>& expected, const std::atomic<int>& phase, Tally& tally) {
    for (int id = 0; id < clients; ++id)
      threads_.emplace_back([this, id, &port, &requests, &expected, &phase, &tally] {
        block_sigpipe_in_this_thread();
        // Even clients keep one connection open, as most HTTP clients do (it dies with the server and must be
        // replaced); odd ones connect for every request.
        const bool keep_alive = id % 2 == 0;
        std::unique_ptr<httplib::Client> client;
        int client_port = 0;
        for (size_t k = static_cast<size_t>(id); !stop_; ++k) {
          if (!client || !keep_alive || client_port != port) {
            client_port = port;
            client = std::make_unique<httplib::Client>("127.0.0.1", client_port);
          }
          client->set_keep_alive(keep_alive);
          client->set_connection_timeout(5, 0);
          client->set_read_timeout(30, 0);
          client->set_write_timeout(30, 0);
          const size_t i = k % requests.size();
          const int sent_in = phase.load();
          auto res = client->Post(requests[i].path, requests[i].body, "application/json");
          const int ended_in = phase.load();
          if (!res) {
            (ended_in == kUp ? tally.errors_before_kill : sent_in == kRestarted ? tally.errors_after_restart
                                                                                 : tally.errors_while_down)++;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a refused connect comes back at once
            continue;
          }
          const std::string why = check(*res, expected[i]);
          if (!why.empty()) {
            tally.add_wrong(requests[i].path + " " + requests[i].body + ": " + why);
          } else if (ended_in == kUp) {
            ++tally.right_before_kill;
          } else if (sent_in == kRestarted) {
            ++tally.right_after_restart;
          }
        }
      });
  }
  ~Load() { stop(); }

  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  // "" when the answer is the expected one, else what is wrong with it.
  static std::string check(const httplib::Response& res, const json& expected) {
    if (res.status != 200) return "HTTP " + std::to_string(res.status) + ": " + res.body;
    try {
      const json got = json::parse(res.body);
      return got == expected ? "" : "other numbers: " + res.body + " (expected " + expected.dump() + ")";
    } catch (const std::exception& e) {
      return std::string("a malformed body (") + e.what() + "): " + res.body;
    }
  }

  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

TEST(ServerKill, SigkillUnderLoadThenRestartGivesErrorsNeverWrongScores) {
  constexpr int kClients = 8;
  constexpr long kRequestsPerPhase = 40;
  auto first = std::make_unique<ServerProcess>(serve_args());
  std::atomic<int> port{first->port()};

  // The answers, once, from the server at rest.
  const std::vector<Request> requests = fixed_requests();
  std::vector<json> expected;
  {
    auto c = first->client();
    for (const Request& r : requests) {
      auto res = c.Post(r.path, r.body, "application/json");
      ASSERT_TRUE(res) << r.path;
      ASSERT_EQ(res->status, 200) << r.path << ": " << res->body;
      expected.push_back(json::parse(res->body));
    }
  }

  std::atomic<int> phase{kUp};
  Tally tally;
  {
    Load load(kClients, port, requests, expected, phase, tally);
    ASSERT_TRUE(test::wait_until([&] { return tally.enough(tally.right_before_kill, kRequestsPerPhase); }))
        << "only " << tally.right_before_kill.load() << " right answers before the kill";

    phase = kKilled;  // before the signal: every request it cuts short ends in this phase
    ASSERT_EQ(kill(first->pid(), SIGKILL), 0);
    first->stop();  // reaps it (and sends SIGTERM to a process already dead)
    ASSERT_TRUE(test::wait_until([&] { return tally.errors_while_down >= 2 * kClients; }))
        << "the clients did not notice the server was gone";

    // On a port of its own: ServerProcess always asks for a free one (--port 0). The clients follow it there,
    // as they would follow a service address.
    ServerProcess second(serve_args());
    port = second.port();
    httplib::Client health("127.0.0.1", port);
    ASSERT_TRUE(test::wait_until([&] {
      auto res = health.Get("/health");
      return res && res->status == 200;
    })) << "the restarted server never answered /health";
    phase = kRestarted;
    ASSERT_TRUE(test::wait_until([&] { return tally.enough(tally.right_after_restart, kRequestsPerPhase); }))
        << "only " << tally.right_after_restart.load() << " right answers after the restart";
    load.stop();  // while the second server still runs: its stop would be errors after the restart
    EXPECT_EQ(second.stop(), 0);  // SIGTERM: a clean exit
  }
  std::string wrong;
  for (size_t i = 0; i < tally.wrong.size() && i < 5; ++i) wrong += "\n  " + tally.wrong[i];
  EXPECT_TRUE(tally.wrong.empty()) << tally.wrong.size() << " wrong answers, the first ones:" << wrong;
  EXPECT_EQ(tally.errors_before_kill.load(), 0) << "the server failed connections before it was killed";
  EXPECT_EQ(tally.errors_after_restart.load(), 0) << "the restarted server failed connections";
  EXPECT_GE(tally.right_before_kill.load(), kRequestsPerPhase);
  EXPECT_GE(tally.right_after_restart.load(), kRequestsPerPhase);
}

}  // namespace
}  // namespace pairrm
