#include "common/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mcl {
namespace {

// How long one client may take to send its request, and to take the answer.
constexpr int kClientMillis = 1000;

struct Endpoint {
  int family = AF_INET;
  std::string host;  // literal, without brackets
  int port = 0;
};

absl::StatusOr<std::vector<Endpoint>> Parse(absl::string_view addresses,
                                            absl::string_view what) {
  std::vector<Endpoint> out;
  for (absl::string_view raw :
       absl::StrSplit(addresses, ',', absl::SkipWhitespace())) {
    const absl::string_view a = absl::StripAsciiWhitespace(raw);
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": \"", a, "\" ", why,
          "; want HOST:PORT with HOST an IPv4 address, [an IPv6 address], "
          "localhost or empty (e.g. 127.0.0.1:9090, [::1]:9090, "
          "localhost:9090)"));
    };
    const size_t colon = a.rfind(':');
    int port = -1;
    if (colon == absl::string_view::npos ||
        !absl::SimpleAtoi(a.substr(colon + 1), &port) || port < 0 ||
        port > 65535) {
      return bad("has no valid port");
    }
    absl::string_view host = a.substr(0, colon);
    unsigned char buf[sizeof(in6_addr)];
    if (host == "localhost") {
      out.push_back({AF_INET, "127.0.0.1", port});
      out.push_back({AF_INET6, "::1", port});
    } else if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      std::string h(host.substr(1, host.size() - 2));
      if (inet_pton(AF_INET6, h.c_str(), buf) != 1) {
        return bad("has a host that is not an IPv6 address");
      }
      out.push_back({AF_INET6, h, port});
    } else {
      std::string h = host.empty() ? "0.0.0.0" : std::string(host);
      if (inet_pton(AF_INET, h.c_str(), buf) != 1) {
        return bad("has a host that is not an IPv4 address");
      }
      out.push_back({AF_INET, h, port});
    }
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": no address given (want HOST:PORT)"));
  }
  return out;
}

// Binds and listens; returns the fd and the bound port.
absl::StatusOr<std::pair<int, int>> Listen(const Endpoint& e, int port,
                                           absl::string_view what) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (e.family == AF_INET) {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, e.host.c_str(), &sa->sin_addr);
    len = sizeof(sockaddr_in);
  } else {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, e.host.c_str(), &sa->sin6_addr);
    len = sizeof(sockaddr_in6);
  }
  const int fd = socket(e.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat(what, ": socket: ", strerror(errno)));
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // "[::]" means IPv6 only; IPv4 is asked for by its own address.
  if (e.family == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      listen(fd, 16) != 0) {
    const int err = errno;
    close(fd);
    const std::string host =
        e.family == AF_INET6 ? absl::StrCat("[", e.host, "]") : e.host;
    return absl::UnavailableError(absl::StrCat(
        what, ": cannot listen on ", host, ":", port, ": ", strerror(err)));
  }
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  const int bound =
      e.family == AF_INET
          ? ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port)
          : ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return std::make_pair(fd, bound);
}

int64_t NowMillis() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// Waits for `events` on fd until `deadline_ms` (CLOCK_MONOTONIC).
bool WaitFd(int fd, short events, int64_t deadline_ms) {
  while (true) {
    const int64_t left = deadline_ms - NowMillis();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = poll(&p, 1, static_cast<int>(left));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

const char* Reason(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    absl::string_view addresses, absl::string_view what, Handler handler) {
  auto endpoints = Parse(addresses, what);
  if (!endpoints.ok()) return endpoints.status();
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->handler_ = std::move(handler);
  // Port 0 everywhere gets the port the first port-0 listener picked; if that
  // port is taken on a later address, start over with another.
  absl::Status last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    int picked = 0;
    last = absl::OkStatus();
    for (const Endpoint& e : *endpoints) {
      const int want = e.port != 0 ? e.port : picked;
      auto l = Listen(e, want, what);
      if (!l.ok()) {
        last = l.status();
        break;
      }
      if (e.port == 0 && picked == 0) picked = l->second;
      const std::string host =
          e.family == AF_INET6 ? absl::StrCat("[", e.host, "]") : e.host;
      s->listeners_.push_back(
          {l->first, l->second, absl::StrCat(host, ":", l->second)});
    }
    if (last.ok()) break;
    for (Listener& l : s->listeners_) close(l.fd);
    s->listeners_.clear();
    // Only a picked port can be retried; a fixed one stays taken.
    if (picked == 0) break;
  }
  if (!last.ok()) return last;
  if (pipe2(s->stop_pipe_, O_CLOEXEC) != 0) {
    return absl::InternalError(
        absl::StrCat(what, ": pipe2: ", strerror(errno)));
  }
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

HttpServer::~HttpServer() {
  if (stop_pipe_[1] >= 0) {
    const char c = 'x';
    (void)!write(stop_pipe_[1], &c, 1);
  }
  if (thread_.joinable()) thread_.join();
  for (const Listener& l : listeners_) close(l.fd);
  for (int fd : stop_pipe_) {
    if (fd >= 0) close(fd);
  }
}

std::vector<std::string> HttpServer::bound() const {
  std::vector<std::string> out;
  for (const Listener& l : listeners_) out.push_back(l.address);
  return out;
}

void HttpServer::Loop() {
  pthread_setname_np(pthread_self(), "http-server");
  std::vector<pollfd> fds;
  fds.push_back({stop_pipe_[0], POLLIN, 0});
  for (const Listener& l : listeners_) fds.push_back({l.fd, POLLIN, 0});
  while (true) {
    for (pollfd& p : fds) p.revents = 0;
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) return;
    for (size_t i = 1; i < fds.size(); ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      const int c =
          accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c < 0) continue;
      Serve(c);
      close(c);
    }
  }
}

void HttpServer::Serve(int fd) {
  const int64_t deadline = NowMillis() + kClientMillis;
  std::string req;
  char buf[2048];
  while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
    if (!WaitFd(fd, POLLIN, deadline)) return;
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) break;
    req.append(buf, static_cast<size_t>(n));
  }
  std::vector<std::string> first =
      absl::StrSplit(req.substr(0, req.find("\r\n")), ' ');
  HttpReply reply;
  if (first.size() < 2) {
    reply = {400, "text/plain", "bad request\n"};
  } else if (first[0] != "GET") {
    reply = {405, "text/plain", "only GET is served\n"};
  } else {
    const std::string path = first[1].substr(0, first[1].find('?'));
    reply = handler_(path);
  }
  const std::string out =
      absl::StrCat("HTTP/1.0 ", reply.code, " ", Reason(reply.code),
                   "\r\nContent-Type: ", reply.content_type,
                   "\r\nContent-Length: ", reply.body.size(),
                   "\r\nConnection: close\r\n\r\n", reply.body);
  size_t off = 0;
  while (off < out.size()) {
    if (!WaitFd(fd, POLLOUT, deadline)) return;
    const ssize_t n =
        send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

}  // namespace mcl
