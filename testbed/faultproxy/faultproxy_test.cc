// FaultProxy against a real loopback echo server: bytes pass (after the added
// latency), a held link delivers nothing until it passes again and then
// delivers everything in order, a reset link resets open and new connections.
#include "testbed/faultproxy/faultproxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testbed/cc/subprocess.h"

namespace mcl::faultproxy {
namespace {

using Mode = FaultProxy::Mode;

sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Echoes every byte back, one thread per connection.
class EchoServer {
 public:
  EchoServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = Loopback(0);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd_, 16);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] {
      while (true) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        conns_.emplace_back([c] {
          char buf[4096];
          ssize_t n;
          while ((n = read(c, buf, sizeof buf)) > 0) {
            if (write(c, buf, static_cast<size_t>(n)) != n) break;
          }
          close(c);
        });
      }
    });
  }
  ~EchoServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    acceptor_.join();
    for (auto& t : conns_) t.join();
  }
  int port() const { return port_; }

 private:
  int fd_;
  int port_;
  std::thread acceptor_;
  std::vector<std::thread> conns_;
};

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads up to `want` bytes, waiting at most `timeout_ms` for each; returns what
// came, and sets `error` to errno if the connection failed.
std::string ReadFor(int fd, size_t want, int timeout_ms, int* error = nullptr) {
  std::string out;
  char buf[4096];
  while (out.size() < want) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1) break;
    ssize_t n = read(fd, buf, std::min(sizeof buf, want - out.size()));
    if (n < 0 && error != nullptr) *error = errno;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

class FaultProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = FaultProxy::Start();
    ASSERT_TRUE(p.ok()) << p.status();
    proxy_ = std::move(*p);
    auto port = proxy_->AddLink("echo", echo_.port());
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }
  EchoServer echo_;
  std::unique_ptr<FaultProxy> proxy_;
  int port_ = 0;
};

TEST_F(FaultProxyTest, PassesBytesBothWays) {
  int fd = Connect(port_);
  ASSERT_GE(fd, 0);
  std::string big(300000, 'x');  // more than one read, less than the cap
  for (size_t k = 0; k < big.size(); ++k)
    big[k] = static_cast<char>('a' + k % 26);
  std::thread writer([&] {
    ASSERT_EQ(write(fd, big.data(), big.size()),
              static_cast<ssize_t>(big.size()));
  });
  EXPECT_EQ(ReadFor(fd, big.size(), 5000), big);
  writer.join();
  close(fd);
  auto st = proxy_->Stats("echo");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->connections, 1);
  EXPECT_EQ(st->bytes, 2 * static_cast<int64_t>(big.size()));
}

TEST_F(FaultProxyTest, LatencyDelaysEachDirection) {
  ASSERT_TRUE(proxy_->Set("echo", {Mode::kPass, absl::Milliseconds(150)}).ok());
  int fd = Connect(port_);
  ASSERT_GE(fd, 0);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(write(fd, "ping", 4), 4);
  EXPECT_EQ(ReadFor(fd, 4, 5000), "ping");
  // Through the proxy twice (there and back): at least twice the latency.
  EXPECT_GE(std::chrono::steady_clock::now() - t0,
            std::chrono::milliseconds(300));
  close(fd);
}

TEST_F(FaultProxyTest, HoldDeliversNothingUntilItPassesThenEverythingInOrder) {
  int fd = Connect(port_);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "a", 1), 1);
  ASSERT_EQ(ReadFor(fd, 1, 5000), "a");
  ASSERT_TRUE(proxy_->Set("echo", {Mode::kHold}).ok());
  ASSERT_EQ(write(fd, "bc", 2), 2);
  EXPECT_EQ(ReadFor(fd, 2, 300), "") << "a held link delivered bytes";
  // A connection opened while held hangs too, and is not refused.
  int fd2 = Connect(port_);
  ASSERT_GE(fd2, 0);
  ASSERT_EQ(write(fd2, "z", 1), 1);
  EXPECT_EQ(ReadFor(fd2, 1, 300), "");
  ASSERT_EQ(write(fd, "d", 1), 1);
  ASSERT_TRUE(proxy_->Set("echo", {Mode::kPass}).ok());
  EXPECT_EQ(ReadFor(fd, 3, 5000), "bcd");
  EXPECT_EQ(ReadFor(fd2, 1, 5000), "z");
  close(fd);
  close(fd2);
}

TEST_F(FaultProxyTest, ResetBreaksOpenAndNewConnections) {
  int fd = Connect(port_);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "a", 1), 1);
  ASSERT_EQ(ReadFor(fd, 1, 5000), "a");
  ASSERT_TRUE(proxy_->Set("echo", {Mode::kReset}).ok());
  int error = 0;
  EXPECT_EQ(ReadFor(fd, 1, 5000, &error), "");
  EXPECT_EQ(error, ECONNRESET);
  close(fd);
  // New connections are accepted by the kernel, then reset.
  int fd2 = Connect(port_);
  ASSERT_GE(fd2, 0);
  error = 0;
  EXPECT_EQ(ReadFor(fd2, 1, 5000, &error), "");
  EXPECT_EQ(error, ECONNRESET);
  close(fd2);
  // Healed: connections work again.
  ASSERT_TRUE(proxy_->Set("echo", {Mode::kPass}).ok());
  int fd3 = Connect(port_);
  ASSERT_EQ(write(fd3, "b", 1), 1);
  EXPECT_EQ(ReadFor(fd3, 1, 5000), "b");
  close(fd3);
}

TEST_F(FaultProxyTest, BadInputIsRefusedWithAClearError) {
  EXPECT_EQ(proxy_->AddLink("echo", echo_.port()).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(proxy_->AddLink("x", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(proxy_->Set("nope", {}).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(proxy_->Set("echo", {Mode::kPass, absl::Milliseconds(-1)}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseMode("drop").ok());
}

}  // namespace
}  // namespace mcl::faultproxy

namespace mcl::faultproxy {
namespace {

// The control interface of the faultproxy binary: one answer line per command,
// errors that say what to send, and an exit at end of input.
TEST(FaultProxyMainTest, AnswersEachCommandAndExitsAtEndOfInput) {
  EchoServer echo;
  auto r = testbed::RunCommand(
      {testbed::Runfile("testbed/faultproxy/faultproxy_main")},
      absl::Seconds(30),
      "link e " + std::to_string(echo.port()) +
          "\nset e hold\nset e pass 20\nstats e\nset e drop\nbogus\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  std::vector<std::string> lines = absl::StrSplit(r->output, '\n');
  ASSERT_GE(lines.size(), 6u) << r->output;
  EXPECT_TRUE(absl::StartsWith(lines[0], "ok ")) << lines[0];
  EXPECT_EQ(lines[1], "ok");
  EXPECT_EQ(lines[2], "ok");
  EXPECT_EQ(lines[3], "ok connections=0 open=0 bytes=0 resets=0");
  EXPECT_THAT(lines[4], ::testing::HasSubstr("unknown fault mode 'drop'"));
  EXPECT_THAT(lines[5], ::testing::HasSubstr("expected 'link NAME"));
}

}  // namespace
}  // namespace mcl::faultproxy
