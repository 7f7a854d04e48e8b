#include "controller/metrics.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mcl::controller {

constexpr std::array<double, 12> Histogram::kBounds;

void Histogram::Observe(absl::Duration d) {
  const double s = absl::ToDoubleSeconds(d);
  size_t i = 0;
  while (i < kBounds.size() && s > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(absl::ToInt64Microseconds(d),
                        std::memory_order_relaxed);
}

void Histogram::Render(const std::string& name, const std::string& help,
                       std::string* out) const {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name,
                  " histogram\n");
  int64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += buckets_[i].load();
    absl::StrAppend(out, name, "_bucket{le=\"", kBounds[i], "\"} ", cumulative,
                    "\n");
  }
  cumulative += buckets_[kBounds.size()].load();
  absl::StrAppend(out, name, "_bucket{le=\"+Inf\"} ", cumulative, "\n");
  absl::StrAppend(out, name, "_sum ",
                  static_cast<double>(sum_micros_.load()) / 1e6, "\n");
  absl::StrAppend(out, name, "_count ", count_.load(), "\n");
}

std::string Metrics::Render() const {
  std::string out;
  auto counter = [&](const char* name, const char* help, int64_t v) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name,
                    " counter\n", name, " ", v, "\n");
  };
  auto gauge = [&](const char* name, const char* help, int64_t v) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name,
                    " gauge\n", name, " ", v, "\n");
  };
  gauge("mcl_controller_locks_held",
        "Global locks this controller holds in etcd.",
        locks_held ? locks_held() : 0);
  gauge("mcl_controller_locks_known",
        "MultiClusterLeases in the informer cache.",
        locks_known ? locks_known() : 0);
  gauge("mcl_controller_queue_depth", "Locks waiting to be reconciled.",
        queue_depth ? queue_depth() : 0);
  gauge("mcl_controller_events_pending", "Events queued for the apiserver.",
        events_pending ? events_pending() : 0);
  gauge("mcl_controller_backend_reachable", "1 when etcd answers.",
        backend_reachable && backend_reachable() ? 1 : 0);
  gauge("mcl_controller_active", "1 on the active replica.",
        active && active() ? 1 : 0);
  // Live heap (glibc), to tell data from allocator slack when reading RSS.
  gauge("mcl_controller_heap_inuse_bytes",
        "Bytes allocated and not freed (glibc mallinfo2).",
        static_cast<int64_t>(mallinfo2().uordblks));
  counter("mcl_controller_contention_attempts_total",
          "Create-if-absent transactions sent.", contention_attempts.load());
  counter("mcl_controller_grants_total", "Keys created or re-pointed.",
          grants.load());
  counter("mcl_controller_releases_total", "Keys deleted on release.",
          releases.load());
  counter("mcl_controller_etcd_requests_total", "Unary etcd requests.",
          etcd_requests.load());
  counter("mcl_controller_etcd_errors_total", "Failed unary etcd requests.",
          etcd_errors.load());
  counter("mcl_controller_keepalives_total", "Answered session keepalives.",
          keepalives.load());
  counter("mcl_controller_status_writes_total", "Status writes sent.",
          status_writes.load());
  counter("mcl_controller_status_write_errors_total",
          "Status writes that failed (not conflicts).",
          status_write_errors.load());
  counter("mcl_controller_status_conflicts_total",
          "Status writes refused as stale (409).", status_conflicts.load());
  counter("mcl_controller_apiserver_writes_total",
          "Apiserver writes for locks and liveness: status, finalizers, the "
          "heartbeat Lease (Events: mcl_controller_event_writes_total).",
          apiserver_writes.load());
  counter("mcl_controller_heartbeats_total", "Heartbeat Lease writes.",
          heartbeats.load());
  counter("mcl_controller_reconciles_total", "Per-lock reconciles.",
          reconciles.load());
  counter("mcl_controller_events_dropped_total",
          "Events not written (queue full, rate-limited, or refused by the "
          "apiserver).",
          events_dropped ? events_dropped() : 0);
  counter("mcl_controller_event_writes_total",
          "core/v1 Event writes (creates and repeat-count updates).",
          events_written ? events_written() : 0);
  etcd_latency.Render("mcl_controller_etcd_request_duration_seconds",
                      "Latency of unary etcd requests.", &out);
  return out;
}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<int> HttpServer::Start(const std::string& address,
                                      std::map<std::string, Handler> handlers) {
  std::vector<std::string> parts =
      absl::StrSplit(address, absl::MaxSplits(':', 1));
  int port = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics-address: want host:port, got \"", address, "\""));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const std::string host = parts[0].empty() ? "0.0.0.0" : parts[0];
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics-address: host must be an IPv4 address, got \"", host, "\""));
  }
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0)
    return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd_, 16) != 0) {
    std::string err = strerror(errno);
    close(fd_);
    fd_ = -1;
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, ": ", err));
  }
  socklen_t len = sizeof(addr);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  handlers_ = std::move(handlers);
  thread_ = std::thread([this] { Serve(); });
  return static_cast<int>(ntohs(addr.sin_port));
}

void HttpServer::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void HttpServer::Serve() {
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    timeval tv{2, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    std::string req;
    char buf[2048];
    while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
      ssize_t n = read(c, buf, sizeof(buf));
      if (n <= 0) break;
      req.append(buf, static_cast<size_t>(n));
    }
    std::vector<std::string> line =
        absl::StrSplit(req.substr(0, req.find("\r\n")), ' ');
    int code = 404;
    std::string body = "not found\n";
    if (line.size() >= 2 && line[0] == "GET") {
      std::string path = line[1].substr(0, line[1].find('?'));
      auto it = handlers_.find(path);
      if (it != handlers_.end()) std::tie(code, body) = it->second();
    } else if (line.size() >= 2) {
      code = 405;
      body = "method not allowed\n";
    }
    std::string resp = absl::StrCat(
        "HTTP/1.0 ", code,
        code == 200   ? " OK"
        : code == 404 ? " Not Found"
                      : " Error",
        "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: ",
        body.size(), "\r\nConnection: close\r\n\r\n", body);
    size_t off = 0;
    while (off < resp.size()) {
      ssize_t n = write(c, resp.data() + off, resp.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(c);
  }
}

}  // namespace mcl::controller
