// ClientConfig: where etcd is and how to talk to it. Plain data; Client::Create
// validates it and reports a clear error for anything unusable (no endpoints,
// unreadable certificate files, ...).
#ifndef MCL_COMMON_ETCD_CONFIG_H_
#define MCL_COMMON_ETCD_CONFIG_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/backoff.h"
#include "common/clock.h"

namespace mcl::etcd {

// TLS towards every endpoint. All paths are PEM files, read once by
// Client::Create.
struct TlsConfig {
  // Roots that sign the server's certificate; empty = the system roots.
  std::string ca_file;
  // Client certificate, for mTLS (with key_file); both or neither.
  std::string cert_file;
  std::string key_file;
  // The name checked against the server certificate; empty = the endpoint's
  // host (an IP SAN for "127.0.0.1:2379").
  std::string server_name;
};

struct ClientConfig {
  // "host:port", "http://host:port" or "https://host:port". Calls go to one
  // endpoint at a time and move to the next when it is unreachable (failover).
  std::vector<std::string> endpoints;
  // Set: TLS (and mTLS when a client certificate is given). An https://
  // endpoint without it uses TLS with the system roots; an http:// endpoint
  // with it is a configuration error.
  std::optional<TlsConfig> tls;
  // Both set: etcd user authentication. The token from Auth.Authenticate rides
  // in every call's metadata and is fetched again when etcd says it is invalid
  // (expired, auth re-enabled).
  std::string username;
  std::string password;
  // The deadline of a unary call when the call does not give its own.
  absl::Duration call_timeout = absl::Seconds(5);
  // How long one endpoint may take to connect before the next one is tried.
  absl::Duration dial_timeout = absl::Seconds(2);
  // Reconnects of the keepalive and watch streams.
  Backoff::Options reconnect_backoff = {absl::Milliseconds(50),
                                        absl::Seconds(2), 2.0};
  // Monotonic time for keepalive send times and lease expiry; not owned.
  Clock* clock = Clock::Real();
};

}  // namespace mcl::etcd

#endif  // MCL_COMMON_ETCD_CONFIG_H_
