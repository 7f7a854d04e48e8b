// HttpServer: the one small HTTP/1.0 server of mcl's binaries, for /metrics and
// the probes (/healthz, /readyz, ...). GET only, one request per connection,
// one connection at a time on one thread. It blocks in poll() on its listening
// sockets and a stop pipe, so an idle server never wakes up, and stops at once
// (the destructor writes to the pipe). A client gets one second to send its
// request and to take the answer, so a silent one cannot hold the server long.
// Small on purpose: a scrape or a probe every few seconds is its whole load,
// and the sidecar's memory budget is 15 MiB.
//
//   auto http = HttpServer::Start(
//       "127.0.0.1:9090,[::1]:9090", "--metrics-address",
//       [](absl::string_view path) -> HttpReply {
//         if (path == "/healthz") return {200, "text/plain", "ok\n"};
//         return {404, "text/plain", "not found\n"};
//       });
//   if (!http.ok()) ...;       // the message names the flag and what is wrong
//   (*http)->port();           // the bound port (port 0 picks one)
//
// Addresses: a comma-separated list of HOST:PORT. HOST is an IPv4 literal, an
// IPv6 literal in brackets, "localhost" (both 127.0.0.1 and [::1], on the same
// port), or empty (all IPv4 interfaces). Port 0 picks a free port; every
// address in the list with port 0 gets the port the first one picked, so
// "localhost:0" serves one port on both loopbacks.
//
// The handler runs on the server's thread, one request at a time; it must not
// block for long (probes time out in a second or so).
#ifndef MCL_COMMON_HTTP_SERVER_H_
#define MCL_COMMON_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mcl {

struct HttpReply {
  int code = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  // Path without the query string ("/metrics").
  using Handler = std::function<HttpReply(absl::string_view path)>;

  // Binds every address (see the file comment) and starts serving. `what`
  // names the setting in error messages (e.g. "--metrics-address").
  // INVALID_ARGUMENT for an address that is not HOST:PORT as above,
  // UNAVAILABLE when one cannot be bound (nothing is left listening then).
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      absl::string_view addresses, absl::string_view what, Handler handler);
  // Stops serving (a request being answered is finished first) and closes the
  // sockets.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port of the first address.
  int port() const { return listeners_.empty() ? 0 : listeners_[0].port; }
  // "127.0.0.1:PORT", "[::1]:PORT", ... as bound.
  std::vector<std::string> bound() const;

 private:
  struct Listener {
    int fd = -1;
    int port = 0;
    std::string address;  // as bound, with the port
  };
  HttpServer() = default;
  void Loop();
  void Serve(int fd);

  std::vector<Listener> listeners_;
  int stop_pipe_[2] = {-1, -1};
  Handler handler_;
  std::thread thread_;
};

}  // namespace mcl

#endif  // MCL_COMMON_HTTP_SERVER_H_
