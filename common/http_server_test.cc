// HttpServer over real loopback sockets (IPv4 and IPv6): routing, methods,
// "localhost" on both loopbacks with one port, clear errors for bad addresses,
// a silent client that cannot hold the server, and a prompt stop.
#include "common/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace mcl {
namespace {

// Connects to host:port (family by the host's form); -1 on failure.
int Connect(const std::string& host, int port) {
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  if (host.find(':') != std::string::npos) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = family = AF_INET6;
    sa->sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, host.c_str(), &sa->sin6_addr);
    len = sizeof(sockaddr_in6);
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = family = AF_INET;
    sa->sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, host.c_str(), &sa->sin_addr);
    len = sizeof(sockaddr_in);
  }
  const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends `request` and reads the whole answer.
std::string Exchange(const std::string& host, int port,
                     const std::string& request) {
  const int fd = Connect(host, port);
  if (fd < 0) return "connect failed";
  (void)!write(fd, request.data(), request.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

std::string Get(const std::string& host, int port, const std::string& path) {
  return Exchange(host, port, absl::StrCat("GET ", path, " HTTP/1.0\r\n\r\n"));
}

HttpReply Route(absl::string_view path) {
  if (path == "/healthz") return {200, "text/plain", "ok\n"};
  if (path == "/readyz") return {503, "text/plain", "not ready\n"};
  return {404, "text/plain", "not found\n"};
}

TEST(HttpServerTest, ServesGetByPathAndRefusesOtherMethods) {
  auto s = HttpServer::Start("127.0.0.1:0", "--metrics-address", Route);
  ASSERT_TRUE(s.ok()) << s.status();
  const int port = (*s)->port();
  ASSERT_GT(port, 0);
  EXPECT_EQ((*s)->bound(),
            std::vector<std::string>{absl::StrCat("127.0.0.1:", port)});
  const std::string ok = Get("127.0.0.1", port, "/healthz?verbose=1");
  EXPECT_TRUE(absl::StartsWith(ok, "HTTP/1.0 200 OK\r\n")) << ok;
  EXPECT_TRUE(absl::StrContains(ok, "Content-Length: 3\r\n")) << ok;
  EXPECT_TRUE(absl::EndsWith(ok, "\r\n\r\nok\n")) << ok;
  EXPECT_TRUE(absl::StartsWith(Get("127.0.0.1", port, "/readyz"),
                               "HTTP/1.0 503 Service Unavailable"));
  EXPECT_TRUE(absl::StartsWith(Get("127.0.0.1", port, "/x"), "HTTP/1.0 404"));
  EXPECT_TRUE(absl::StartsWith(
      Exchange("127.0.0.1", port, "POST /healthz HTTP/1.0\r\n\r\n"),
      "HTTP/1.0 405"));
}

TEST(HttpServerTest, LocalhostServesBothLoopbacksOnOnePort) {
  auto s = HttpServer::Start("localhost:0", "--metrics-address", Route);
  ASSERT_TRUE(s.ok()) << s.status();
  const int port = (*s)->port();
  EXPECT_EQ((*s)->bound(),
            (std::vector<std::string>{absl::StrCat("127.0.0.1:", port),
                                      absl::StrCat("[::1]:", port)}));
  EXPECT_TRUE(
      absl::StartsWith(Get("127.0.0.1", port, "/healthz"), "HTTP/1.0 200"));
  EXPECT_TRUE(absl::StartsWith(Get("::1", port, "/healthz"), "HTTP/1.0 200"));

  auto v6 = HttpServer::Start("[::1]:0", "--metrics-address", Route);
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_TRUE(
      absl::StartsWith(Get("::1", (*v6)->port(), "/healthz"), "HTTP/1.0 200"));
}

TEST(HttpServerTest, BadAddressesAreClearErrorsNamingTheSetting) {
  for (const char* bad : {"9090", "127.0.0.1", "127.0.0.1:x", "1.2.3:80",
                          "127.0.0.1:70000", "[zz]:80", "::1:80", ""}) {
    auto s = HttpServer::Start(bad, "--metrics-address", Route);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StrContains(s.status().message(), "--metrics-address"))
        << s.status();
  }
  auto first = HttpServer::Start("127.0.0.1:0", "--metrics-address", Route);
  ASSERT_TRUE(first.ok());
  const std::string taken = absl::StrCat("127.0.0.1:", (*first)->port());
  auto second = HttpServer::Start(taken, "--metrics-address", Route);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(second.status().message(), taken))
      << second.status();
}

// A client that connects and says nothing is dropped after its second; the
// server answers others meanwhile or right after.
TEST(HttpServerTest, ASilentClientDoesNotHoldTheServer) {
  auto s = HttpServer::Start("127.0.0.1:0", "--metrics-address", Route);
  ASSERT_TRUE(s.ok());
  const int silent = Connect("127.0.0.1", (*s)->port());
  ASSERT_GE(silent, 0);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(absl::StartsWith(Get("127.0.0.1", (*s)->port(), "/healthz"),
                               "HTTP/1.0 200"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  close(silent);
}

// Idle, the server sleeps in poll without a timeout; stopping wakes it at once.
TEST(HttpServerTest, StopsPromptlyWhenIdle) {
  auto s = HttpServer::Start("127.0.0.1:0", "--metrics-address", Route);
  ASSERT_TRUE(s.ok());
  const int port = (*s)->port();
  const auto t0 = std::chrono::steady_clock::now();
  s->reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0,
            std::chrono::milliseconds(500));
  EXPECT_EQ(Connect("127.0.0.1", port), -1) << "still listening";
}

}  // namespace
}  // namespace mcl
