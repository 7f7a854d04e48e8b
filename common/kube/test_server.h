// LoopbackServer: a tiny scripted HTTP/1.1 (optionally TLS) server on 127.0.0.1
// for tests that feed the client what a real apiserver never sends: malformed
// JSON, truncated chunks, HTML pages from a "proxy", an untrusted certificate,
// silence. The handler writes raw bytes, so any framing error can be produced.
// Also makes throwaway CAs and certificates (OpenSSL) for TLS tests. Test-only.
// Thread-safe; one thread per connection.
#ifndef MCL_COMMON_KUBE_TEST_SERVER_H_
#define MCL_COMMON_KUBE_TEST_SERVER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mcl::kube::testing {

struct HttpRequest {
  std::string method;
  std::string target;                          // path and query, as sent
  std::string path;                            // without the query
  std::map<std::string, std::string> query;    // decoded
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

class Connection {
 public:
  virtual ~Connection() = default;
  // Writes raw bytes; false once the peer has gone.
  virtual bool Write(absl::string_view bytes) = 0;
  // Closes the connection after the handler returns (otherwise it is kept
  // alive).
  virtual void CloseAfter() = 0;
  // Blocks until the server stops or `timeout` passes (a server that "hangs").
  virtual void Hang(absl::Duration timeout) = 0;

  // Helpers for well-formed responses.
  bool Respond(int code, absl::string_view content_type,
               absl::string_view body);
  bool StartChunked(int code = 200,
                    absl::string_view content_type = "application/json");
  // One chunk (empty data is the terminating chunk).
  bool Chunk(absl::string_view data);
  bool EndChunked() { return Chunk(""); }
};

// JSON a scripted apiserver serves: a MultiClusterLease in "default", a list
// of them at `rv`, and one watch event line.
std::string LeaseJson(const std::string& name, const std::string& rv,
                      const std::string& holder = "pod");
std::string ListJson(const std::vector<std::string>& items,
                     const std::string& rv);
std::string WatchEventJson(const std::string& type, const std::string& object);

struct TlsIdentity {
  std::string cert_pem;
  std::string key_pem;
};

// A self-signed CA, and leaf certificates it signs (SAN IP:127.0.0.1 unless
// `dns_only` is given).
struct TestCa {
  TlsIdentity ca;
  static absl::StatusOr<TestCa> Create(const std::string& common_name);
  absl::StatusOr<TlsIdentity> Issue(const std::string& common_name,
                                    const std::string& dns_only = "") const;
};

class LoopbackServer {
 public:
  using Handler = std::function<void(const HttpRequest&, Connection&)>;
  static absl::StatusOr<std::unique_ptr<LoopbackServer>> Start(
      Handler handler, std::optional<TlsIdentity> tls = std::nullopt);
  // Stops accepting, wakes hanging handlers, closes and joins everything.
  ~LoopbackServer();

  int port() const { return port_; }
  std::string url() const;                    // http(s)://127.0.0.1:PORT
  std::vector<HttpRequest> requests() const;  // in arrival order
  void Stop();

 private:
  LoopbackServer() = default;
  void AcceptLoop();
  void Serve(int fd);
  friend class ConnectionImpl;

  Handler handler_;
  void* ssl_ctx_ = nullptr;  // SSL_CTX*
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(mu_);
  std::vector<int> fds_ ABSL_GUARDED_BY(mu_);
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mcl::kube::testing

#endif  // MCL_COMMON_KUBE_TEST_SERVER_H_
