// A small HTTPS/1.1 server for the admission webhook (the kube-apiserver is its
// only client). OpenSSL directly: the project's HTTP server is plain HTTP, and
// cpprestsdk is built without its listener.
//
// TLS comes from a certificate and key file. The kubelet updates a mounted
// Secret in place (a new certificate after the chart or cert-manager renewed
// it); the server notices on the next connection (files are checked at most
// once per `reload_check`) and uses the new pair for new connections. A pair
// that does not load is logged and the old one kept.
//
// Threads: one accepts; each connection gets a thread of its own (at most
// `max_connections`, further ones are closed at once), which reads requests
// with keep-alive, calls the handler and writes the response. Stop() stops
// accepting, shuts the open connections down and joins every thread.
#ifndef MCL_CONTROLLER_INJECTOR_TLS_SERVER_H_
#define MCL_CONTROLLER_INJECTOR_TLS_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mcl::injector {

struct HttpRequest {
  std::string method;
  std::string path;  // without the query
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

struct TlsServerOptions {
  // "HOST:PORT": 0.0.0.0:9443, [::]:9443 (IPv6 and IPv4), 127.0.0.1:0 (tests).
  std::string address = "[::]:9443";
  std::string cert_file;
  std::string key_file;
  int max_connections = 64;
  // A connection that sends nothing for this long is closed.
  absl::Duration idle_timeout = absl::Seconds(60);
  size_t max_body = 4 << 20;
  absl::Duration reload_check = absl::Seconds(5);
};

class TlsServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // Loads the certificate, binds and starts accepting. Errors name the file or
  // the address.
  static absl::StatusOr<std::unique_ptr<TlsServer>> Start(
      TlsServerOptions options, Handler handler);
  ~TlsServer();  // Stop()s
  TlsServer(const TlsServer&) = delete;
  TlsServer& operator=(const TlsServer&) = delete;

  int port() const;
  // How many times a changed certificate was loaded (for tests and /metrics).
  int64_t reloads() const;
  void Stop();

 private:
  struct Impl;
  explicit TlsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcl::injector

#endif  // MCL_CONTROLLER_INJECTOR_TLS_SERVER_H_
