// The server's front door: one thread that accepts connections and reads every request whole before any
// HTTP worker sees it, so a slow or idle client never holds a worker.
//
// cpp-httplib gives each connection one pool thread for its whole life, reading the request as it trickles
// in: a client that opens --http-threads connections and sends one byte a second (slowloris), or that just
// keeps them open, stalls every other client. Here an epoll loop owns the sockets: it buffers a request's head
// and body under a deadline (--read-timeout-s, then 408), keeps idle keep-alive connections in the loop, not
// in a thread (--idle-timeout-s; the oldest idle one is closed first when the table is full), caps the
// connections of one client address (--max-connections-per-client, then 429), and hands only complete
// requests to the workers, which answer from the buffer (httplib's own parser and router, through
// `Handler`), then give the connection back to the loop.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace httplib {
class Stream;
}

namespace pairrm::server {

// The 413 answer's message, the same whether the gate or httplib's error handler gives it.
inline constexpr char kBodyOverLimitMessage[] = "request body over the limit (--max-body-bytes)";

struct GateOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                      // 0: any free port
  int workers = 64;                     // requests handled at once (--http-threads)
  double read_timeout_s = 30;           // from a request's first byte to its last
  double idle_timeout_s = 5;            // a keep-alive connection with no request started
  double write_timeout_s = 5;           // a response the client does not read
  int max_connections = 1024;           // open at once, every client together
  int max_connections_per_client = 128; // open at once from one address
  size_t max_head_bytes = 64 << 10;     // request line and headers (then 431)
  size_t max_body_bytes = 8u << 20;     // a longer body is handed over for its 413, never read
  size_t max_requests_per_connection = 10000;
};

// What the gate refused or cut short, for /metrics.
struct GateEvent {
  enum Kind { kPerClientLimit, kFull, kReadTimeout, kIdleEvicted, kHeadTooLarge, kBodyTooLarge };
};

class ConnectionGate {
 public:
  // Answers one buffered request on `stream` (httplib::Server::process_request). `close_connection`: the
  // response must close the connection; sets `connection_closed` when the request asked for that. Returns
  // false when the request could not be parsed (the connection is then closed).
  using Handler = std::function<bool(httplib::Stream& stream, bool close_connection, bool& connection_closed)>;
  using EventSink = std::function<void(GateEvent::Kind)>;

  ConnectionGate(GateOptions options, Handler handler, EventSink events);
  ~ConnectionGate();
  ConnectionGate(const ConnectionGate&) = delete;
  ConnectionGate& operator=(const ConnectionGate&) = delete;

  // Binds and listens; returns the port, or -1 with `error` set.
  int bind(std::string& error);
  // Serves until stop(): then accepts nothing more, closes idle and half-read connections, lets the requests
  // being handled finish and answer, and returns.
  void run();
  // From any thread (the signal thread).
  void stop();

  // The socket of the request the calling worker thread is handling (-1 outside a handler), so that a
  // handler can notice its client hanging up.
  static int current_socket();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pairrm::server
