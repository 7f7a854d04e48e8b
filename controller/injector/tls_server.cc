#include "controller/injector/tls_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <list>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"

namespace mcl::injector {
namespace {

constexpr size_t kMaxHeader = 16 << 10;

std::string SslError(absl::string_view what) {
  std::string out(what);
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    absl::StrAppend(&out, ": ", buf);
  }
  return out;
}

using CtxPtr = std::shared_ptr<SSL_CTX>;

absl::StatusOr<CtxPtr> LoadContext(const std::string& cert,
                                   const std::string& key) {
  CtxPtr ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) return absl::InternalError(SslError("SSL_CTX_new"));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1) {
    return absl::InvalidArgumentError(
        SslError(absl::StrCat("cannot load the certificate ", cert)));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) !=
      1) {
    return absl::InvalidArgumentError(
        SslError(absl::StrCat("cannot load the private key ", key)));
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return absl::InvalidArgumentError(SslError(absl::StrCat(
        "the key ", key, " does not match the certificate ", cert)));
  }
  return ctx;
}

// What identifies a version of a file (the kubelet swaps a Secret volume's
// files by renaming a directory, so the inode changes).
std::string Stamp(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_dev, ":", st.st_ino, ":", st.st_size, ":",
                      st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
  }
  return "Error";
}

bool WriteAll(SSL* ssl, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    int n = SSL_write(
        ssl, data.data() + off,
        static_cast<int>(std::min<size_t>(data.size() - off, 1 << 20)));
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads more bytes into `buf`; false at end of stream, error or timeout.
bool ReadMore(SSL* ssl, std::string& buf) {
  char tmp[16 << 10];
  int n = SSL_read(ssl, tmp, sizeof(tmp));
  if (n <= 0) return false;
  buf.append(tmp, static_cast<size_t>(n));
  return true;
}

struct Parsed {
  bool closed = false;  // the peer went away between requests
  int error = 0;        // an HTTP status to answer before closing
  HttpRequest req;
  bool keep_alive = true;
};

// One request from `buf` (reading more as needed); what follows it stays in
// `buf` for the next one.
Parsed ReadRequest(SSL* ssl, std::string& buf, size_t max_body) {
  Parsed p;
  size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (buf.size() > kMaxHeader) {
      p.error = 431;
      return p;
    }
    if (!ReadMore(ssl, buf)) {
      p.closed = true;
      return p;
    }
  }
  std::vector<std::string> lines =
      absl::StrSplit(absl::string_view(buf).substr(0, end), "\r\n");
  std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
  if (first.size() != 3 || !absl::StartsWith(first[2], "HTTP/1.")) {
    p.error = 400;
    return p;
  }
  p.req.method = first[0];
  p.req.path =
      std::string(absl::string_view(first[1]).substr(0, first[1].find('?')));
  p.keep_alive = first[2] == "HTTP/1.1";
  int64_t length = 0;
  bool chunked = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    if (name == "content-length") {
      if (!absl::SimpleAtoi(value, &length) || length < 0) {
        p.error = 400;
        return p;
      }
    } else if (name == "transfer-encoding") {
      chunked = true;
    } else if (name == "connection") {
      std::string v = absl::AsciiStrToLower(value);
      if (v == "close") p.keep_alive = false;
      if (v == "keep-alive") p.keep_alive = true;
    }
  }
  if (chunked) {
    p.error = 411;  // the apiserver sends Content-Length
    return p;
  }
  if (static_cast<size_t>(length) > max_body) {
    p.error = 413;
    return p;
  }
  const size_t total = end + 4 + static_cast<size_t>(length);
  while (buf.size() < total) {
    if (!ReadMore(ssl, buf)) {
      p.closed = true;
      return p;
    }
  }
  p.req.body = buf.substr(end + 4, static_cast<size_t>(length));
  buf.erase(0, total);
  return p;
}

absl::StatusOr<int> Listen(const std::string& address, int* port) {
  size_t colon = address.rfind(':');
  int want = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &want) || want < 0 ||
      want > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen=", address, ": give HOST:PORT"));
  }
  std::string host = address.substr(0, colon);
  const bool v6 = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (v6) host = host.substr(1, host.size() - 2);
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(want));
    if (inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--listen=", address, ": not an IPv6 address"));
    }
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(want));
    if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--listen=", address, ": not an IPv4 address"));
    }
    len = sizeof(*a);
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 && v6 && host == "::" && errno == EAFNOSUPPORT) {
    // A kernel (or pod) without IPv6: the wildcard is IPv4's.
    return Listen(absl::StrCat("0.0.0.0:", want), port);
  }
  if (fd < 0) return absl::InternalError(std::strerror(errno));
  int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (v6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      listen(fd, 128) != 0) {
    std::string err = std::strerror(errno);
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, ": ", err));
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  *port = ntohs(bound.ss_family == AF_INET6
                    ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                    : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return fd;
}

}  // namespace

struct TlsServer::Impl {
  TlsServerOptions opt;
  Handler handler;
  int listen_fd = -1;
  int wake_fd = -1;
  int port = 0;
  std::thread acceptor;
  std::atomic<int64_t> reloads{0};

  // A connection's thread; joined once done (by the acceptor) or by Stop.
  struct Conn {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  absl::Mutex mu;
  std::set<int> conns ABSL_GUARDED_BY(mu);  // open sockets, for Stop's shutdown
  std::list<std::unique_ptr<Conn>> threads ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;

  absl::Mutex ctx_mu;
  CtxPtr ctx ABSL_GUARDED_BY(ctx_mu);
  std::string stamp ABSL_GUARDED_BY(ctx_mu);
  std::chrono::steady_clock::time_point checked ABSL_GUARDED_BY(ctx_mu);

  // The current TLS context, reloading a changed certificate/key pair at most
  // once per reload_check.
  CtxPtr Context() {
    absl::MutexLock l(&ctx_mu);
    auto now = std::chrono::steady_clock::now();
    if (now - checked < absl::ToChronoNanoseconds(opt.reload_check)) return ctx;
    checked = now;
    std::string s = Stamp(opt.cert_file) + "|" + Stamp(opt.key_file);
    if (s == stamp) return ctx;
    auto next = LoadContext(opt.cert_file, opt.key_file);
    if (!next.ok()) {
      // Often a half-updated pair (certificate renamed, key not yet): keep
      // the old one; the next check retries.
      LogWarn("keeping the previous TLS certificate",
              {{"error", std::string(next.status().message())}});
      return ctx;
    }
    ctx = *next;
    stamp = s;
    reloads.fetch_add(1);
    LogInfo("loaded a new TLS certificate", {{"cert", opt.cert_file}});
    return ctx;
  }

  // Joins the threads of connections that have ended.
  void Reap() {
    std::list<std::unique_ptr<Conn>> ended;
    {
      absl::MutexLock l(&mu);
      for (auto it = threads.begin(); it != threads.end();) {
        if ((*it)->done.load()) {
          ended.push_back(std::move(*it));
          it = threads.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& c : ended) c->thread.join();
  }

  void Accept() {
    for (;;) {
      pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
      if (poll(fds, 2, 1000) < 0 && errno != EINTR) return;
      if (fds[1].revents != 0) return;
      Reap();
      if ((fds[0].revents & POLLIN) == 0) continue;
      int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      absl::MutexLock l(&mu);
      if (stopping ||
          threads.size() >= static_cast<size_t>(opt.max_connections)) {
        close(fd);
        continue;
      }
      conns.insert(fd);
      auto c = std::make_unique<Conn>();
      Conn* raw = c.get();
      c->thread = std::thread([this, fd, raw] {
        Serve(fd);
        {
          absl::MutexLock l2(&mu);
          conns.erase(fd);
        }
        close(fd);
        raw->done.store(true);
      });
      threads.push_back(std::move(c));
    }
  }

  void Serve(int fd) {
    timeval idle = absl::ToTimeval(opt.idle_timeout);
    timeval send = absl::ToTimeval(absl::Seconds(10));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof(idle));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send, sizeof(send));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    CtxPtr ctx = Context();
    SSL* ssl = SSL_new(ctx.get());
    if (ssl == nullptr) return;
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      std::string buf;
      for (;;) {
        Parsed p = ReadRequest(ssl, buf, opt.max_body);
        if (p.closed) break;
        HttpResponse resp;
        if (p.error != 0) {
          resp = {p.error, "text/plain", absl::StrCat(Reason(p.error), "\n")};
          p.keep_alive = false;
        } else {
          resp = handler(p.req);
        }
        {
          absl::MutexLock l(&mu);
          if (stopping) p.keep_alive = false;
        }
        std::string out = absl::StrCat(
            "HTTP/1.1 ", resp.status, " ", Reason(resp.status),
            "\r\nContent-Type: ", resp.content_type,
            "\r\nContent-Length: ", resp.body.size(),
            p.keep_alive ? "" : "\r\nConnection: close", "\r\n\r\n", resp.body);
        if (!WriteAll(ssl, out) || !p.keep_alive) break;
      }
      SSL_shutdown(ssl);
    }
    ERR_clear_error();
    SSL_free(ssl);
  }
};

TlsServer::TlsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<TlsServer>> TlsServer::Start(
    TlsServerOptions options, Handler handler) {
  // A peer that closes its end while a response is written must not kill the
  // process (OpenSSL writes with write(2), which raises SIGPIPE).
  signal(SIGPIPE, SIG_IGN);
  auto impl = std::make_unique<Impl>();
  impl->opt = std::move(options);
  impl->handler = std::move(handler);
  {
    auto ctx = LoadContext(impl->opt.cert_file, impl->opt.key_file);
    if (!ctx.ok()) return ctx.status();
    absl::MutexLock l(&impl->ctx_mu);
    impl->ctx = *ctx;
    impl->stamp = Stamp(impl->opt.cert_file) + "|" + Stamp(impl->opt.key_file);
    impl->checked = std::chrono::steady_clock::now();
  }
  auto fd = Listen(impl->opt.address, &impl->port);
  if (!fd.ok()) return fd.status();
  impl->listen_fd = *fd;
  impl->wake_fd = eventfd(0, EFD_CLOEXEC);
  Impl* raw = impl.get();
  impl->acceptor = std::thread([raw] { raw->Accept(); });
  return std::unique_ptr<TlsServer>(new TlsServer(std::move(impl)));
}

int TlsServer::port() const { return impl_->port; }
int64_t TlsServer::reloads() const { return impl_->reloads.load(); }

void TlsServer::Stop() {
  if (!impl_ || impl_->listen_fd < 0) return;
  {
    absl::MutexLock l(&impl_->mu);
    impl_->stopping = true;
    // Wakes connection threads blocked in a read; a response being written
    // is cut short only if the peer stopped reading.
    for (int fd : impl_->conns) shutdown(fd, SHUT_RDWR);
  }
  uint64_t one = 1;
  (void)!write(impl_->wake_fd, &one, sizeof(one));
  if (impl_->acceptor.joinable()) impl_->acceptor.join();
  std::list<std::unique_ptr<Impl::Conn>> threads;
  {
    absl::MutexLock l(&impl_->mu);
    threads.swap(impl_->threads);
  }
  for (auto& c : threads) c->thread.join();
  close(impl_->listen_fd);
  close(impl_->wake_fd);
  impl_->listen_fd = -1;
}

TlsServer::~TlsServer() { Stop(); }

}  // namespace mcl::injector
