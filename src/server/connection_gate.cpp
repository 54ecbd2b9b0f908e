#include "server/connection_gate.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "server/endpoints.h"
#include "server/request_framing.h"

namespace pairrm::server {
namespace {

using Clock = std::chrono::steady_clock;

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

struct Address {
  std::string ip;
  int port = 0;
};

Address address_of(const sockaddr_storage& a) {
  char text[INET6_ADDRSTRLEN] = {};
  Address out;
  if (a.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    out.port = ntohs(v4->sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    out.port = ntohs(v6->sin6_port);
  }
  out.ip = text;
  return out;
}

Address local_address(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return {};
  return address_of(a);
}

thread_local int current_socket_fd = -1;

struct Connection {
  enum State { kIdle, kReading, kBusy, kClosing };
  int fd = -1;
  Address peer, local;
  std::string in;               // received, not yet answered
  State state = kIdle;
  Clock::time_point deadline;   // kIdle: idle limit; kReading: read limit; kClosing: linger limit
  Clock::time_point last_active;
  size_t served = 0;
  size_t request_end = 0;       // kBusy: the bytes of `in` handed to the handler
  bool close_after = false;     // the handler's answer closes the connection
  bool counted = false;         // in the per-client count
  // kBusy, the loop's view: `in` held more than the request handed over (a pipelined request waits), and
  // whether the connection was closed for a newcomer, to happen as soon as its worker hands it back.
  bool pipelined = false;
  bool evicted = false;
  // Set by the worker when the handler starts writing its answer (steady-clock ticks; 0: not yet). From then
  // on the client may have its answer and be done, while the worker has not handed the connection back yet.
  std::atomic<Clock::rep> answer_started{0};
};

// One buffered request as httplib's parser sees it: reads come from the gate's buffer (the whole request is
// there, so a read never waits), writes go to the socket under the write timeout.
class BufferedStream : public httplib::Stream {
 public:
  BufferedStream(Connection& c, Clock::duration write_timeout) : c_(c), write_timeout_(write_timeout) {}

  bool is_readable() const override { return pos_ < c_.request_end; }
  bool is_writable() const override { return !write_failed_; }

  ssize_t read(char* ptr, size_t size) override {
    const size_t n = std::min(size, c_.request_end - pos_);
    std::memcpy(ptr, c_.in.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    const auto now = Clock::now();
    const auto deadline = now + write_timeout_;
    if (c_.answer_started.load(std::memory_order_relaxed) == 0)
      c_.answer_started.store(now.time_since_epoch().count(), std::memory_order_release);
    size_t done = 0;
    while (done < size && !write_failed_) {
      const ssize_t n = ::send(c_.fd, ptr + done, size - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      pollfd p{c_.fd, POLLOUT, 0};
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && left > 0 && ::poll(&p, 1, static_cast<int>(left)) > 0)
        continue;
      write_failed_ = true;
    }
    return write_failed_ ? -1 : static_cast<ssize_t>(done);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.peer.ip;
    port = c_.peer.port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.local.ip;
    port = c_.local.port;
  }
  socket_t socket() const override { return c_.fd; }

  bool write_failed() const { return write_failed_; }

 private:
  Connection& c_;
  Clock::duration write_timeout_;
  size_t pos_ = 0;
  bool write_failed_ = false;
};

const char* reason_phrase(int status) {
  switch (status) {
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    default: return "Service Unavailable";
  }
}

}  // namespace

struct ConnectionGate::Impl {
  GateOptions options;
  Handler handler;
  EventSink events;
  int listen_fd = -1, epoll_fd = -1, wake_fd = -1;
  std::atomic<bool> stopping{false};

  // The loop's own state (only its thread touches it).
  std::unordered_map<int, std::unique_ptr<Connection>> connections;
  std::unordered_map<std::string, int> per_client;
  int busy = 0;
  int evicted_busy = 0;  // busy connections already closed for a newcomer: no longer counted as open
  bool listening = true;
  Clock::time_point accept_paused_until{};

  // Workers.
  std::mutex mu;
  std::condition_variable work_ready;
  std::deque<Connection*> work;      // complete requests for the workers
  std::vector<Connection*> returned; // answered, back to the loop
  bool workers_quit = false;
  std::vector<std::thread> workers;

  void wake() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd, &one, sizeof one);
  }

  void watch(int fd) {
    epoll_event e{};
    e.events = EPOLLIN | EPOLLRDHUP;
    e.data.fd = fd;
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &e);
  }

  void unwatch(int fd) { epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr); }

  void uncount(Connection& c) {
    if (!c.counted) return;
    c.counted = false;
    auto it = per_client.find(c.peer.ip);
    if (it != per_client.end() && --it->second <= 0) per_client.erase(it);
  }

  void close_connection(Connection& c) {
    uncount(c);
    unwatch(c.fd);
    ::close(c.fd);
    connections.erase(c.fd);  // destroys c
  }

  // Answers with a JSON error and closes: the write side at once, the socket after the client has read (or a
  // second has passed), so that closing with its unread bytes does not reset the answer away.
  // `linger`: how long the unread rest may keep arriving (a refused body is read to its end and dropped, as
  // httplib does, because a client that writes its whole body before reading would see a reset otherwise).
  void refuse(Connection& c, int status, const std::string& message,
              Clock::duration linger = std::chrono::seconds(1)) {
    const std::string body = error_body(status, message);
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
                      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                      (status == 429 || status == 503 ? "\r\nRetry-After: 1" : "") + "\r\nConnection: close\r\n\r\n" +
                      body;
    [[maybe_unused]] ssize_t n = ::send(c.fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(c.fd, SHUT_WR);
    uncount(c);
    c.in.clear();
    c.state = Connection::kClosing;
    c.deadline = Clock::now() + linger;
  }

  void dispatch(Connection& c, size_t request_end, bool close_after) {
    unwatch(c.fd);
    c.state = Connection::kBusy;
    c.request_end = request_end;
    c.close_after = close_after;
    c.pipelined = c.in.size() > request_end;
    c.evicted = false;
    c.answer_started.store(0, std::memory_order_relaxed);  // published to the worker by the queue's mutex
    ++busy;
    {
      std::lock_guard<std::mutex> lock(mu);
      work.push_back(&c);
    }
    work_ready.notify_one();
  }

  // Hands the connection's request over once it is whole, or refuses it.
  void try_dispatch(Connection& c, bool eof) {
    RequestExtent r = scan_request(c.in, options.max_head_bytes, options.max_body_bytes);
    if (r.head_end != 0 && r.expect_end != 0) {
      // The gate answers "100 Continue" itself (the body must arrive before a worker sees the request), so
      // the header goes before httplib, which would send a second one.
      c.in.erase(r.expect_begin, r.expect_end - r.expect_begin);
      if (r.state == RequestExtent::kIncomplete) {
        static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
        [[maybe_unused]] ssize_t n = ::send(c.fd, kContinue, sizeof kContinue - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      r = scan_request(c.in, options.max_head_bytes, options.max_body_bytes);
    }
    switch (r.state) {
      case RequestExtent::kComplete: return dispatch(c, r.end, eof);
      // httplib answers it from the head alone (400): the rest is not read, so the connection closes after.
      case RequestExtent::kMalformed: return dispatch(c, r.head_end, true);
      case RequestExtent::kBodyTooLarge:
        events(GateEvent::kBodyTooLarge);
        // The body is dropped as it arrives, within what is left of the request's read time.
        return refuse(c, 413, kBodyOverLimitMessage, std::max<Clock::duration>(c.deadline - Clock::now(), {}));
      case RequestExtent::kHeadTooLarge:
        events(GateEvent::kHeadTooLarge);
        return refuse(c, 431, "request line and headers over " + std::to_string(options.max_head_bytes) + " bytes");
      case RequestExtent::kIncomplete:
        if (eof) close_connection(c);
        return;
    }
  }

  void on_readable(Connection& c) {
    char buf[16384];
    bool eof = false;
    for (;;) {
      const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        if (c.state != Connection::kClosing) c.in.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      eof = true;  // 0: the client closed its side; an error: the connection is gone
      break;
    }
    if (c.state == Connection::kClosing) {
      if (eof) close_connection(c);
      return;
    }
    const auto now = Clock::now();
    c.last_active = now;
    if (c.state == Connection::kIdle && !c.in.empty()) {
      c.state = Connection::kReading;
      c.deadline = now + seconds(options.read_timeout_s);
    }
    if (c.state == Connection::kIdle) {
      if (eof) close_connection(c);
      return;
    }
    try_dispatch(c, eof);
  }

  // A connection the loop has not read yet (accepted in the same pass as the newcomer) is not idle.
  static bool has_unread_bytes(int fd) {
    int n = 0;
    return ::ioctl(fd, FIONREAD, &n) == 0 && n > 0;
  }

  // Since when the connection has had nothing left to do for its client; none while a request is being
  // read, handled or waits. A busy connection whose answer is being written counts from the answer's start:
  // its client may already have the answer and be done, while a worker slow to hand the connection back
  // keeps it busy in the loop's view (counting only the loop's idle state then closed a newer connection).
  std::optional<Clock::time_point> idle_since(const Connection& c) const {
    if (c.state == Connection::kIdle) return has_unread_bytes(c.fd) ? std::nullopt : std::optional(c.last_active);
    if (c.state != Connection::kBusy || c.evicted || c.pipelined) return std::nullopt;
    const Clock::rep started = c.answer_started.load(std::memory_order_acquire);
    if (started == 0 || has_unread_bytes(c.fd)) return std::nullopt;  // unanswered, or a next request came
    return Clock::time_point(Clock::duration(started));
  }

  // Makes room for one more connection: the one idle longest goes (a busy one as soon as its worker hands it
  // back). False when none is idle.
  bool evict_idle() {
    Connection* oldest = nullptr;
    Clock::time_point oldest_since{};
    for (auto& [fd, c] : connections) {
      const auto since = idle_since(*c);
      if (since && (!oldest || *since < oldest_since)) {
        oldest = c.get();
        oldest_since = *since;
      }
    }
    if (!oldest) return false;
    events(GateEvent::kIdleEvicted);
    if (oldest->state == Connection::kBusy) {
      oldest->evicted = true;
      ++evicted_busy;
    } else {
      close_connection(*oldest);
    }
    return true;
  }

  int open_connections() const { return static_cast<int>(connections.size()) - evicted_busy; }

  void accept_all() {
    for (;;) {
      sockaddr_storage a{};
      socklen_t len = sizeof a;
      const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&a), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // No descriptor left: stop accepting for a moment instead of spinning on the ready socket.
          unwatch(listen_fd);
          accept_paused_until = Clock::now() + std::chrono::milliseconds(100);
        }
        return;
      }
      if (open_connections() >= options.max_connections && !evict_idle()) {
        events(GateEvent::kFull);
        // Refused with an answer, which lingers a second in the table; a flood past twice the limit is
        // closed unanswered, so the table stays bounded.
        if (open_connections() >= 2 * options.max_connections) {
          ::close(fd);
          continue;
        }
        Connection& ref = add(fd, a);
        refuse(ref, 503, "the server has " + std::to_string(options.max_connections) +
                             " connections open (--max-connections); retry");
        continue;
      }
      Connection& ref = add(fd, a);
      if (per_client[ref.peer.ip] >= options.max_connections_per_client) {
        events(GateEvent::kPerClientLimit);
        refuse(ref, 429, "this address has " + std::to_string(options.max_connections_per_client) +
                             " connections open (--max-connections-per-client)");
      } else {
        ++per_client[ref.peer.ip];
        ref.counted = true;
      }
    }
  }

  Connection& add(int fd, const sockaddr_storage& a) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->peer = address_of(a);
    c->local = local_address(fd);
    c->last_active = Clock::now();
    c->deadline = c->last_active + seconds(options.idle_timeout_s);
    Connection& ref = *c;
    connections.emplace(fd, std::move(c));
    watch(fd);
    return ref;
  }

  void on_returned(Connection& c) {
    --busy;
    if (c.evicted) --evicted_busy;
    if (c.close_after || c.evicted || stopping) return close_connection(c);
    const auto now = Clock::now();
    c.state = Connection::kIdle;
    // Idle since its answer began, not since the loop took it back: a worker slow to hand it back must not
    // make it look newer than a connection answered after it (a full table would then close that one).
    const Clock::rep started = c.answer_started.load(std::memory_order_acquire);
    c.last_active = started != 0 ? Clock::time_point(Clock::duration(started)) : now;
    c.deadline = now + seconds(options.idle_timeout_s);
    watch(c.fd);
    if (!c.in.empty()) {  // a pipelined request arrived with this one
      c.state = Connection::kReading;
      c.deadline = now + seconds(options.read_timeout_s);
      try_dispatch(c, false);
    }
  }

  void sweep() {
    const auto now = Clock::now();
    std::vector<Connection*> due;
    for (auto& [fd, c] : connections)
      if (c->state != Connection::kBusy && now >= c->deadline) due.push_back(c.get());
    for (Connection* c : due) {
      if (c->state == Connection::kReading) {
        events(GateEvent::kReadTimeout);
        refuse(*c, 408, "the request did not arrive whole within " + std::to_string(options.read_timeout_s) +
                            " s (--read-timeout-s)");
      } else {
        close_connection(*c);
      }
    }
    if (accept_paused_until != Clock::time_point{} && now >= accept_paused_until && listening) {
      accept_paused_until = {};
      watch(listen_fd);
    }
  }

  void begin_stop() {
    listening = false;
    unwatch(listen_fd);
    ::close(listen_fd);
    listen_fd = -1;
    std::vector<Connection*> open;
    for (auto& [fd, c] : connections)
      if (c->state != Connection::kBusy) open.push_back(c.get());
    for (Connection* c : open) close_connection(*c);
  }

  void worker() {
    for (;;) {
      Connection* c = nullptr;
      {
        std::unique_lock<std::mutex> lock(mu);
        work_ready.wait(lock, [this] { return workers_quit || !work.empty(); });
        if (work.empty()) return;
        c = work.front();
        work.pop_front();
      }
      handle(*c);
      {
        std::lock_guard<std::mutex> lock(mu);
        returned.push_back(c);
      }
      wake();
    }
  }

  void handle(Connection& c) {
    BufferedStream stream(c, seconds(options.write_timeout_s));
    const bool must_close = c.close_after || stopping || ++c.served >= options.max_requests_per_connection;
    bool asked_to_close = false, parsed = false;
    current_socket_fd = c.fd;
    try {
      parsed = handler(stream, must_close, asked_to_close);
    } catch (...) {  // the handler answers its own errors; anything past it only closes this connection
      parsed = false;
    }
    current_socket_fd = -1;
    c.in.erase(0, c.request_end);
    c.close_after = must_close || asked_to_close || !parsed || stream.write_failed();
  }

  void loop() {
    std::vector<epoll_event> ready(64);
    auto next_sweep = Clock::now();
    for (;;) {
      if (stopping && listening) begin_stop();
      if (!listening && busy == 0) return;
      const int n = epoll_wait(epoll_fd, ready.data(), static_cast<int>(ready.size()), 100);
      for (int i = 0; i < n; ++i) {
        const int fd = ready[i].data.fd;
        if (fd == listen_fd) {
          if (listening) accept_all();
        } else if (fd == wake_fd) {
          uint64_t count = 0;
          [[maybe_unused]] ssize_t r = ::read(wake_fd, &count, sizeof count);
        } else {
          auto it = connections.find(fd);
          if (it != connections.end() && it->second->state != Connection::kBusy) on_readable(*it->second);
        }
      }
      std::vector<Connection*> back;
      {
        std::lock_guard<std::mutex> lock(mu);
        back.swap(returned);
      }
      for (Connection* c : back) on_returned(*c);
      // Deadlines are checked ten times a second: a limit of seconds needs no finer clock.
      if (Clock::now() >= next_sweep) {
        sweep();
        next_sweep = Clock::now() + std::chrono::milliseconds(100);
      }
    }
  }
};

ConnectionGate::ConnectionGate(GateOptions options, Handler handler, EventSink events) : impl_(new Impl) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  impl_->events = events ? std::move(events) : [](GateEvent::Kind) {};
}

ConnectionGate::~ConnectionGate() {
  Impl& g = *impl_;
  {
    std::lock_guard<std::mutex> lock(g.mu);
    g.workers_quit = true;
  }
  g.work_ready.notify_all();
  for (std::thread& t : g.workers) t.join();
  for (auto& [fd, c] : g.connections) ::close(fd);
  for (int fd : {g.listen_fd, g.epoll_fd, g.wake_fd})
    if (fd >= 0) ::close(fd);
}

int ConnectionGate::bind(std::string& error) {
  Impl& g = *impl_;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(g.options.port);
  const int gai = getaddrinfo(g.options.host.empty() ? nullptr : g.options.host.c_str(), port.c_str(), &hints, &found);
  if (gai != 0) {
    error = gai_strerror(gai);
    return -1;
  }
  error = "no address";
  for (addrinfo* a = found; a && g.listen_fd < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 1024) == 0) {
      g.listen_fd = fd;
    } else {
      error = std::strerror(errno);
      ::close(fd);
    }
  }
  freeaddrinfo(found);
  if (g.listen_fd < 0) return -1;
  g.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  g.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (g.epoll_fd < 0 || g.wake_fd < 0) {
    error = std::strerror(errno);
    return -1;
  }
  g.watch(g.listen_fd);
  g.watch(g.wake_fd);
  return local_address(g.listen_fd).port;
}

void ConnectionGate::run() {
  Impl& g = *impl_;
  for (int i = 0; i < std::max(1, g.options.workers); ++i) g.workers.emplace_back([&g] { g.worker(); });
  g.loop();
}

void ConnectionGate::stop() {
  impl_->stopping = true;
  impl_->wake();
}

int ConnectionGate::current_socket() { return current_socket_fd; }

}  // namespace pairrm::server
