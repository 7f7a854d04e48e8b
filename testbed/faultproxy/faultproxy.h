// FaultProxy: a loopback TCP proxy whose links a fault test breaks on purpose.
//
// Each link listens on 127.0.0.1 and forwards every connection it accepts to
// one upstream port on 127.0.0.1, byte for byte (TLS and HTTP/2 pass through
// untouched). A component is pointed at the link's port instead of its real
// peer; the test then sets the link's fault:
//
//   kPass   forward, after `latency` (each chunk is held that long);
//   kReset  every open connection is reset (RST both ways) and every new one
//           is reset as soon as it is accepted: a refused, broken path;
//   kHold   nothing moves in either direction and nothing is closed: bytes
//           wait in the proxy and in the kernel's buffers, so requests hang
//           until their own timeouts, as on a path that drops packets without
//           a reset. When the link passes again, the held bytes go on in order.
//
// Limits, by construction of a user-space proxy: a held link still completes
// TCP handshakes and answers TCP keepalive probes (the kernel does), so only
// application-level liveness checks (HTTP/2 PING, watch bookmarks, request
// timeouts) can see a hold; a reset is an RST, never a silent drop.
//
//   auto proxy = FaultProxy::Start();
//   auto port = (*proxy)->AddLink("c0-sidecar-api", apiserver_port);
//   ... point the sidecar at 127.0.0.1:*port ...
//   (*proxy)->Set("c0-sidecar-api", {FaultProxy::Mode::kHold});
//
// Threads: one event thread (epoll) owns every socket; AddLink and Set hand it
// a command and return once it is in force. Every listener is on 127.0.0.1.
#ifndef MCL_TESTBED_FAULTPROXY_FAULTPROXY_H_
#define MCL_TESTBED_FAULTPROXY_FAULTPROXY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mcl::faultproxy {

class FaultProxy {
 public:
  enum class Mode { kPass, kReset, kHold };
  struct Fault {
    Mode mode = Mode::kPass;
    absl::Duration latency = absl::ZeroDuration();  // kPass only
  };
  struct LinkStats {
    int64_t connections = 0;  // accepted so far
    int64_t open = 0;         // open now
    int64_t bytes = 0;        // forwarded, both directions
    int64_t resets = 0;       // connections reset by a fault
  };

  static absl::StatusOr<std::unique_ptr<FaultProxy>> Start();
  // Stops the event thread and closes every socket.
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // Listens on 127.0.0.1:`listen_port` (0: any free port) and forwards to
  // 127.0.0.1:`upstream_port`. Returns the port it listens on. Names are
  // unique.
  absl::StatusOr<int> AddLink(const std::string& name, int upstream_port,
                              int listen_port = 0);
  // Sets a link's fault; in force when this returns (a reset has been sent).
  absl::Status Set(const std::string& name, Fault fault);
  absl::StatusOr<LinkStats> Stats(const std::string& name);

 private:
  class Loop;
  explicit FaultProxy(std::unique_ptr<Loop> loop);
  std::unique_ptr<Loop> loop_;
};

absl::string_view ModeName(FaultProxy::Mode mode);
// "pass", "reset", "hold".
absl::StatusOr<FaultProxy::Mode> ParseMode(absl::string_view name);

}  // namespace mcl::faultproxy

#endif  // MCL_TESTBED_FAULTPROXY_FAULTPROXY_H_
