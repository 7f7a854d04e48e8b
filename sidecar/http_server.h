// A minimal HTTP/1.0 server for /metrics and /healthz: one thread, one request
// per connection, GET only. Small on purpose (the sidecar's memory budget is 15
// MiB); not for general use.
#ifndef MCL_SIDECAR_HTTP_SERVER_H_
#define MCL_SIDECAR_HTTP_SERVER_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace mcl::sidecar {

struct HttpReply {
  int code = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  using Handler = std::function<HttpReply(const std::string& path)>;
  // Listens on "HOST:PORT" (IPv4; HOST may be empty or 0.0.0.0 for all
  // interfaces). Port 0 picks one.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& address, Handler handler);
  ~HttpServer();
  int port() const { return port_; }

 private:
  HttpServer() = default;
  void Loop();
  void Serve(int fd);
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  int port_ = 0;
  Handler handler_;
  std::thread thread_;
};

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_HTTP_SERVER_H_
