#include "client-stubs/cpp/metrics.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/clock.h"

namespace mcl::cli {
namespace {

// Milliseconds left until `deadline` on the monotonic clock, for poll().
int MillisLeft(absl::Duration deadline) {
  const absl::Duration left = deadline - Clock::Real()->Monotonic();
  return left <= absl::ZeroDuration()
             ? 0
             : static_cast<int>(absl::ToInt64Milliseconds(left) + 1);
}

// Closes the descriptor on every path.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

bool WaitFd(int fd, short events, absl::Duration deadline) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int r = poll(&p, 1, MillisLeft(deadline));
    if (r > 0) return true;
    if (r == 0 || errno != EINTR) return false;
  }
}

}  // namespace

absl::StatusOr<std::map<std::string, LockMetrics>> ParseSidecarMetrics(
    const std::string& text) {
  std::map<std::string, LockMetrics> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, "mcl_sidecar_")) continue;
    const size_t brace = line.find("{lock=\"");
    const size_t close = line.find("\"} ");
    int64_t value = 0;
    if (brace == absl::string_view::npos || close == absl::string_view::npos ||
        close < brace || !absl::SimpleAtoi(line.substr(close + 3), &value)) {
      // A metric without the lock label is not per lock; skip it.
      if (brace == absl::string_view::npos) continue;
      return absl::DataLossError(
          absl::StrCat("cannot read the sidecar's metric line \"", line, "\""));
    }
    const absl::string_view name = line.substr(0, brace);
    // Lock names are DNS-1123: no quote or backslash to unescape.
    LockMetrics& m =
        out[std::string(line.substr(brace + 7, close - brace - 7))];
    if (name == "mcl_sidecar_is_leader") m.is_leader = value != 0;
    if (name == "mcl_sidecar_leader_transitions_total") m.transitions = value;
    if (name == "mcl_sidecar_renew_errors_total") m.renew_errors = value;
    if (name == "mcl_sidecar_campaigns") m.campaigns = value;
  }
  return out;
}

absl::StatusOr<std::string> HttpGet(const std::string& host_port,
                                    const std::string& path,
                                    absl::Duration timeout) {
  const absl::Duration deadline = Clock::Real()->Monotonic() + timeout;
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", host_port, "\" is not HOST:PORT"));
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int r = getaddrinfo(host.c_str(), host_port.substr(colon + 1).c_str(),
                          &hints, &res);
      r != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve \"", host_port, "\": ", gai_strerror(r)));
  }
  Fd fd;
  fd.fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int rc = fd.fd < 0 ? -1 : connect(fd.fd, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  const std::string where = absl::StrCat("http://", host_port, path);
  if (rc != 0 && errno == EINPROGRESS) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (!WaitFd(fd.fd, POLLOUT, deadline)) {
      return absl::UnavailableError(
          absl::StrCat("no connection to ", where, " within ",
                       absl::FormatDuration(timeout)));
    }
    getsockopt(fd.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    errno = err;
    rc = err == 0 ? 0 : -1;
  }
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", where, ": ", strerror(errno)));
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", host_port, "\r\n\r\n");
  size_t sent = 0;
  while (sent < request.size()) {
    if (!WaitFd(fd.fd, POLLOUT, deadline)) {
      return absl::UnavailableError(
          absl::StrCat("timed out writing to ", where));
    }
    const ssize_t n =
        send(fd.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EINTR && errno != EAGAIN) {
      return absl::UnavailableError(
          absl::StrCat("cannot write to ", where, ": ", strerror(errno)));
    }
    if (n > 0) sent += static_cast<size_t>(n);
  }
  std::string response;
  char buf[16384];
  for (;;) {
    if (!WaitFd(fd.fd, POLLIN, deadline)) {
      return absl::UnavailableError(
          absl::StrCat("no complete answer from ", where, " within ",
                       absl::FormatDuration(timeout)));
    }
    const ssize_t n = recv(fd.fd, buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return absl::UnavailableError(
          absl::StrCat("cannot read from ", where, ": ", strerror(errno)));
    }
    response.append(buf, static_cast<size_t>(n));
  }
  const size_t body = response.find("\r\n\r\n");
  const std::string status_line = response.substr(0, response.find("\r\n"));
  if (body == std::string::npos ||
      !(absl::StartsWith(status_line, "HTTP/1.0 200") ||
        absl::StartsWith(status_line, "HTTP/1.1 200"))) {
    return absl::UnavailableError(
        absl::StrCat(where, " answered \"", status_line, "\" instead of 200"));
  }
  return response.substr(body + 4);
}

}  // namespace mcl::cli
