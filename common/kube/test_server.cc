#include "common/kube/test_server.h"

#include <arpa/inet.h>
#include <cpprest/uri.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mcl::kube::testing {
namespace {

std::string ReasonPhrase(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 404:
      return "Not Found";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

std::string PemOf(X509* cert) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, cert);
  char* data;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(b);
  return out;
}

std::string PemOf(EVP_PKEY* key) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(b);
  return out;
}

X509* ParseCert(const std::string& pem) {
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* c = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  return c;
}

EVP_PKEY* ParseKey(const std::string& pem) {
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  return k;
}

void AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext != nullptr) {
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
}

// Makes a certificate for `key`, signed by `issuer_key` (self-signed when
// issuer is null).
absl::StatusOr<X509*> MakeCert(EVP_PKEY* key, const std::string& cn,
                               X509* issuer, EVP_PKEY* issuer_key, bool is_ca,
                               const std::string& san) {
  static std::atomic<long> serial{1000};
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600L * 24);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(
      cert, issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509* iss = issuer != nullptr ? issuer : cert;
  if (is_ca) {
    AddExt(cert, iss, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(cert, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(cert, iss, NID_basic_constraints, "critical,CA:FALSE");
    AddExt(cert, iss, NID_ext_key_usage, "serverAuth");
    AddExt(cert, iss, NID_subject_alt_name, san.c_str());
  }
  if (X509_sign(cert, issuer_key, EVP_sha256()) == 0) {
    X509_free(cert);
    return absl::InternalError("X509_sign: " + OpenSslError());
  }
  return cert;
}

sockaddr_in LoopbackAddress(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

// A listening socket on 127.0.0.1, on a port the kernel picks (`*port`).
absl::StatusOr<int> ListenOnLoopback(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = LoopbackAddress(0);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, 64) != 0) {
    const int err = errno;
    close(fd);
    return absl::InternalError(
        absl::StrCat("bind/listen on 127.0.0.1: ", std::strerror(err)));
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

// The next connection on `listen_fd`; -1 once `stopping()` (looked at every
// 50 ms).
int AcceptUnlessStopping(int listen_fd, const std::function<bool()>& stopping) {
  while (true) {
    pollfd p{listen_fd, POLLIN, 0};
    int r = poll(&p, 1, 50);
    if (stopping()) return -1;
    if (r <= 0) continue;
    int fd = accept(listen_fd, nullptr, nullptr);
    if (fd >= 0) return fd;
  }
}

}  // namespace

std::string LeaseJson(const std::string& name, const std::string& rv,
                      const std::string& holder) {
  return absl::StrCat(
      R"({"apiVersion":"mcl.dev/v1alpha1","kind":"MultiClusterLease","metadata":{"name":")",
      name, R"(","namespace":"default","resourceVersion":")", rv,
      R"("},"spec":{"holderIdentity":")", holder,
      R"(","leaseDurationSeconds":15}})");
}

std::string ListJson(const std::vector<std::string>& items,
                     const std::string& rv) {
  std::string out = absl::StrCat(
      R"({"apiVersion":"mcl.dev/v1alpha1","kind":"MultiClusterLeaseList","metadata":{"resourceVersion":")",
      rv, R"("},"items":[)");
  for (size_t i = 0; i < items.size(); ++i)
    absl::StrAppend(&out, i ? "," : "", items[i]);
  return out + "]}";
}

std::string WatchEventJson(const std::string& type, const std::string& object) {
  return absl::StrCat(R"({"type":")", type, R"(","object":)", object, "}\n");
}

bool Connection::Respond(int code, absl::string_view content_type,
                         absl::string_view body) {
  return Write(absl::StrCat("HTTP/1.1 ", code, " ", ReasonPhrase(code),
                            "\r\nContent-Type: ", content_type,
                            "\r\nContent-Length: ", body.size(), "\r\n\r\n",
                            body));
}

bool Connection::StartChunked(int code, absl::string_view content_type) {
  return Write(absl::StrCat("HTTP/1.1 ", code, " ", ReasonPhrase(code),
                            "\r\nContent-Type: ", content_type,
                            "\r\nTransfer-Encoding: chunked\r\n\r\n"));
}

bool Connection::Chunk(absl::string_view data) {
  return Write(absl::StrCat(absl::Hex(data.size()), "\r\n", data, "\r\n"));
}

absl::StatusOr<TestCa> TestCa::Create(const std::string& common_name) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr)
    return absl::InternalError("EVP_EC_gen: " + OpenSslError());
  auto cert = MakeCert(key, common_name, nullptr, key, true, "");
  if (!cert.ok()) {
    EVP_PKEY_free(key);
    return cert.status();
  }
  TestCa ca;
  ca.ca.cert_pem = PemOf(*cert);
  ca.ca.key_pem = PemOf(key);
  X509_free(*cert);
  EVP_PKEY_free(key);
  return ca;
}

absl::StatusOr<TlsIdentity> TestCa::Issue(const std::string& common_name,
                                          const std::string& dns_only) const {
  X509* ca_cert = ParseCert(ca.cert_pem);
  EVP_PKEY* ca_key = ParseKey(ca.key_pem);
  EVP_PKEY* key = EVP_EC_gen("P-256");
  absl::StatusOr<TlsIdentity> out =
      absl::InternalError("cannot issue: " + OpenSslError());
  if (ca_cert != nullptr && ca_key != nullptr && key != nullptr) {
    std::string san = dns_only.empty() ? "IP:127.0.0.1" : "DNS:" + dns_only;
    auto cert = MakeCert(key, common_name, ca_cert, ca_key, false, san);
    if (cert.ok()) {
      out = TlsIdentity{PemOf(*cert), PemOf(key)};
      X509_free(*cert);
    } else {
      out = cert.status();
    }
  }
  X509_free(ca_cert);
  EVP_PKEY_free(ca_key);
  EVP_PKEY_free(key);
  return out;
}

class ConnectionImpl : public Connection {
 public:
  ConnectionImpl(LoopbackServer* server, int fd, SSL* ssl)
      : server_(server), fd_(fd), ssl_(ssl) {}
  bool Write(absl::string_view bytes) override {
    size_t off = 0;
    while (off < bytes.size()) {
      int n = ssl_ != nullptr
                  ? SSL_write(ssl_, bytes.data() + off,
                              static_cast<int>(bytes.size() - off))
                  : static_cast<int>(send(fd_, bytes.data() + off,
                                          bytes.size() - off, MSG_NOSIGNAL));
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  void CloseAfter() override { close_ = true; }
  void Hang(absl::Duration timeout) override {
    absl::MutexLock l(&server_->mu_);
    server_->mu_.AwaitWithTimeout(absl::Condition(&server_->stopping_),
                                  timeout);
  }
  // Reads more bytes into buf_; false on EOF/error/stop.
  bool Fill() {
    while (true) {
      {
        absl::MutexLock l(&server_->mu_);
        if (server_->stopping_) return false;
      }
      if (ssl_ == nullptr || SSL_pending(ssl_) == 0) {
        pollfd p{fd_, POLLIN, 0};
        int r = poll(&p, 1, 100);
        if (r == 0) continue;
        if (r < 0) return false;
      }
      char tmp[16384];
      int n = ssl_ != nullptr
                  ? SSL_read(ssl_, tmp, sizeof(tmp))
                  : static_cast<int>(recv(fd_, tmp, sizeof(tmp), 0));
      if (n <= 0) return false;
      buf_.append(tmp, static_cast<size_t>(n));
      return true;
    }
  }
  std::optional<HttpRequest> ReadRequest() {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    HttpRequest req;
    std::vector<std::string> lines =
        absl::StrSplit(buf_.substr(0, end), "\r\n");
    buf_.erase(0, end + 4);
    std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
    if (first.size() < 2) return std::nullopt;
    req.method = first[0];
    req.target = first[1];
    size_t q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) {
      for (absl::string_view kv :
           absl::StrSplit(req.target.substr(q + 1), '&')) {
        std::pair<std::string, std::string> p =
            absl::StrSplit(kv, absl::MaxSplits('=', 1));
        req.query[p.first] = web::uri::decode(p.second);
      }
    }
    for (size_t i = 1; i < lines.size(); ++i) {
      size_t colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      req.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    }
    size_t length = 0;
    if (req.headers.count("content-length") != 0) {
      (void)absl::SimpleAtoi(req.headers["content-length"], &length);
    }
    while (buf_.size() < length) {
      if (!Fill()) return std::nullopt;
    }
    req.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return req;
  }
  bool close_ = false;

 private:
  LoopbackServer* server_;
  int fd_;
  SSL* ssl_;
  std::string buf_;
};

absl::StatusOr<std::unique_ptr<LoopbackServer>> LoopbackServer::Start(
    Handler handler, std::optional<TlsIdentity> tls) {
  // OpenSSL writes to the socket with write(2): a peer that hung up (e.g. after
  // rejecting our certificate) must not kill the test with SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<LoopbackServer> s(new LoopbackServer());
  s->handler_ = std::move(handler);
  if (tls.has_value()) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    X509* cert = ParseCert(tls->cert_pem);
    EVP_PKEY* key = ParseKey(tls->key_pem);
    bool ok = cert != nullptr && key != nullptr &&
              SSL_CTX_use_certificate(ctx, cert) == 1 &&
              SSL_CTX_use_PrivateKey(ctx, key) == 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    if (!ok) {
      SSL_CTX_free(ctx);
      return absl::InternalError("TLS identity: " + OpenSslError());
    }
    s->ssl_ctx_ = ctx;
  }
  auto fd = ListenOnLoopback(&s->port_);
  if (!fd.ok()) return fd.status();
  s->listen_fd_ = *fd;
  s->acceptor_ = std::thread([p = s.get()] { p->AcceptLoop(); });
  return s;
}

std::string LoopbackServer::url() const {
  return absl::StrCat(ssl_ctx_ != nullptr ? "https" : "http",
                      "://127.0.0.1:", port_);
}

std::vector<HttpRequest> LoopbackServer::requests() const {
  absl::MutexLock l(&mu_);
  return requests_;
}

void LoopbackServer::AcceptLoop() {
  auto stopping = [this] {
    absl::MutexLock l(&mu_);
    return stopping_;
  };
  int fd;
  while ((fd = AcceptUnlessStopping(listen_fd_, stopping)) >= 0) {
    absl::MutexLock l(&mu_);
    fds_.push_back(fd);
    workers_.emplace_back([this, fd] { Serve(fd); });
  }
}

void LoopbackServer::Serve(int fd) {
  SSL* ssl = nullptr;
  if (ssl_ctx_ != nullptr) {
    ssl = SSL_new(static_cast<SSL_CTX*>(ssl_ctx_));
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {  // e.g. the client rejected our certificate
      SSL_free(ssl);
      shutdown(fd, SHUT_RDWR);
      return;
    }
  }
  ConnectionImpl conn(this, fd, ssl);
  while (true) {
    auto req = conn.ReadRequest();
    if (!req.has_value()) break;
    {
      absl::MutexLock l(&mu_);
      requests_.push_back(*req);
    }
    handler_(*req, conn);
    if (conn.close_) break;
  }
  if (ssl != nullptr) {
    SSL_shutdown(ssl);
    SSL_free(ssl);
  }
  shutdown(fd, SHUT_RDWR);
}

void LoopbackServer::Stop() {
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return;
    stopping_ = true;
    for (int fd : fds_) shutdown(fd, SHUT_RDWR);
  }
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> workers;
  {
    absl::MutexLock l(&mu_);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
  absl::MutexLock l(&mu_);
  for (int fd : fds_) close(fd);
  fds_.clear();
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
}

LoopbackServer::~LoopbackServer() {
  Stop();
  if (ssl_ctx_ != nullptr) SSL_CTX_free(static_cast<SSL_CTX*>(ssl_ctx_));
}

}  // namespace mcl::kube::testing
