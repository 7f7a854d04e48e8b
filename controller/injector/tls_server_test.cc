#include "controller/injector/tls_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::injector {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string TmpDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t != nullptr ? t : "/tmp";
}

// Writes a self-signed certificate for 127.0.0.1 with common name `cn` and its
// key to `cert` and `key` (through temporary names, renamed into place, as the
// kubelet swaps a Secret volume's files).
void WriteCert(const std::string& cert, const std::string& key,
               const std::string& cn) {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(pkey, nullptr);
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), std::rand());
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, pkey);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  X509_EXTENSION* san =
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
  X509_add_ext(x, san, -1);
  X509_EXTENSION_free(san);
  ASSERT_GT(X509_sign(x, pkey, EVP_sha256()), 0);
  FILE* f = fopen((cert + ".tmp").c_str(), "w");
  PEM_write_X509(f, x);
  fclose(f);
  f = fopen((key + ".tmp").c_str(), "w");
  PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  fclose(f);
  rename((key + ".tmp").c_str(), key.c_str());
  rename((cert + ".tmp").c_str(), cert.c_str());
  X509_free(x);
  EVP_PKEY_free(pkey);
}

// A TLS client that trusts exactly `ca_file` and checks the name 127.0.0.1.
class Client {
 public:
  Client(int port, const std::string& ca_file) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ssl_ = SSL_new(ctx_);
    SSL_set1_host(ssl_, "127.0.0.1");
    SSL_set_fd(ssl_, fd_);
    handshake_ = connected_ && SSL_connect(ssl_) == 1;
  }
  ~Client() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    close(fd_);
  }
  bool ok() const { return handshake_; }
  std::string PeerCN() {
    X509* peer = SSL_get1_peer_certificate(ssl_);
    if (peer == nullptr) return "";
    char buf[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf,
                              sizeof(buf));
    X509_free(peer);
    return buf;
  }
  // Sends raw bytes, reads one response (headers and Content-Length body).
  std::string RoundTrip(const std::string& request) {
    SSL_write(ssl_, request.data(), static_cast<int>(request.size()));
    std::string buf;
    char tmp[4096];
    size_t need = std::string::npos;
    while (need == std::string::npos || buf.size() < need) {
      int n = SSL_read(ssl_, tmp, sizeof(tmp));
      if (n <= 0) break;
      buf.append(tmp, static_cast<size_t>(n));
      size_t end = buf.find("\r\n\r\n");
      if (end != std::string::npos && need == std::string::npos) {
        size_t cl = buf.find("Content-Length: ");
        need = end + 4 + std::stoul(buf.substr(cl + 16));
      }
    }
    return buf;
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
  bool handshake_ = false;
};

class TlsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = absl::StrCat(TmpDir(), "/tls.crt");
    key_ = absl::StrCat(TmpDir(), "/tls.key");
    WriteCert(cert_, key_, "first");
    TlsServerOptions o;
    o.address = "127.0.0.1:0";
    o.cert_file = cert_;
    o.key_file = key_;
    o.reload_check = absl::ZeroDuration();
    o.max_body = 1024;
    auto s = TlsServer::Start(o, [](const HttpRequest& r) {
      return HttpResponse{200, "text/plain",
                          r.method + " " + r.path + " " + r.body};
    });
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  std::string cert_, key_;
  std::unique_ptr<TlsServer> server_;
};

TEST_F(TlsServerTest, ServesRequestsOnAKeptAliveConnection) {
  Client c(server_->port(), cert_);
  ASSERT_TRUE(c.ok());
  std::string r1 = c.RoundTrip(
      "POST /mutate?timeout=10s HTTP/1.1\r\nHost: x\r\nContent-Length: "
      "5\r\n\r\nhello");
  EXPECT_THAT(r1, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r1, HasSubstr("\r\n\r\nPOST /mutate hello"));
  std::string r2 = c.RoundTrip("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(r2, HasSubstr("\r\n\r\nGET /healthz "));
}

TEST_F(TlsServerTest, RefusesWhatItDoesNotServe) {
  Client chunked(server_->port(), cert_);
  EXPECT_THAT(
      chunked.RoundTrip(
          "POST /mutate HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
      StartsWith("HTTP/1.1 411 "));
  Client big(server_->port(), cert_);
  EXPECT_THAT(
      big.RoundTrip("POST /mutate HTTP/1.1\r\nContent-Length: 4096\r\n\r\n"),
      StartsWith("HTTP/1.1 413 "));
  Client garbage(server_->port(), cert_);
  EXPECT_THAT(garbage.RoundTrip("hello there\r\n\r\n"),
              StartsWith("HTTP/1.1 400 "));
}

TEST_F(TlsServerTest, NewConnectionsGetARenewedCertificate) {
  {
    Client c(server_->port(), cert_);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c.PeerCN(), "first");
  }
  // A pair that does not match (a half-written update) is not taken.
  std::string other_key = absl::StrCat(TmpDir(), "/other.key");
  WriteCert(absl::StrCat(TmpDir(), "/other.crt"), other_key, "other");
  std::rename(other_key.c_str(), key_.c_str());
  {
    Client c(server_->port(), cert_);  // still trusts (and gets) "first"
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c.PeerCN(), "first");
  }
  EXPECT_EQ(server_->reloads(), 0);
  WriteCert(cert_, key_, "second");
  Client c(server_->port(), cert_);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.PeerCN(), "second");
  EXPECT_EQ(server_->reloads(), 1);
}

TEST_F(TlsServerTest, StopEndsIdleConnectionsPromptly) {
  Client c(server_->port(), cert_);
  ASSERT_TRUE(c.ok());
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(TlsServerStart, NamesTheFileThatDoesNotLoad) {
  TlsServerOptions o;
  o.address = "127.0.0.1:0";
  o.cert_file = absl::StrCat(TmpDir(), "/missing.crt");
  o.key_file = absl::StrCat(TmpDir(), "/missing.key");
  auto s =
      TlsServer::Start(o, [](const HttpRequest&) { return HttpResponse{}; });
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("missing.crt"));
}

}  // namespace
}  // namespace mcl::injector
