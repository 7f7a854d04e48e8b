#include "sidecar/flags.h"

#include <arpa/inet.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace mcl::sidecar {
namespace {

absl::StatusOr<absl::Duration> ParseSeconds(const std::string& flag,
                                            const std::string& v,
                                            absl::Duration min,
                                            absl::Duration max) {
  absl::Duration d;
  int64_t secs = 0;
  if (absl::SimpleAtoi(v, &secs)) {
    d = absl::Seconds(secs);
  } else if (!absl::ParseDuration(v, &d)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=", v,
        " is not a duration; give seconds (15) or a unit (15s, 1m)"));
  }
  if (d < min || d > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=", v, " is outside [", absl::FormatDuration(min), ", ",
        absl::FormatDuration(max), "]"));
  }
  return d;
}

bool ValidPort(absl::string_view p) {
  int port = 0;
  return absl::SimpleAtoi(p, &port) && port >= 0 && port <= 65535;
}

}  // namespace

std::string Usage() {
  return R"(mcl-sidecar: multi-cluster leader election for the programs in this pod.

Serves the gRPC API mcl.v1.Election (proto/mcl/v1/election.proto), the gRPC health service and
server reflection on a loopback address or a unix socket, and keeps this pod's candidacy in the
local MultiClusterLease objects.

Flags:
  --kubeconfig=PATH         kubeconfig to use (default: $KUBECONFIG, else in-cluster config)
  --listen=ADDR             where to serve gRPC: 127.0.0.1:PORT, [::1]:PORT, localhost:PORT or
                            unix:///path (default 127.0.0.1:7400). Non-loopback addresses are refused.
  --namespace=NS            namespace of locks whose request leaves it empty
                            (default: $POD_NAMESPACE, else the kubeconfig's namespace)
  --socket-mode=OCTAL       permissions of the unix socket, i.e. who in the pod may connect
                            (default 0600: the sidecar's user only; 0660 adds its group)
  --identity=ID             default candidate identity (default: $POD_NAME_$POD_UID, the name
                            cut so the whole stays within 128 characters)
  --cluster-name=NAME       this cluster's name as the controller knows it (default: learned from
                            the local controller's heartbeat Lease, mcl-heartbeat-<cluster>)
  --lease-duration=DUR      default lease duration of a Campaign (default 15s; range 2s..3600s);
                            the holder renews every quarter of it
  --metrics-address=ADDRS   HOST:PORT[,HOST:PORT...] for /metrics, /healthz and /readyz over
                            HTTP; HOST is IPv4, [IPv6], localhost (both loopbacks) or empty
                            (all IPv4 interfaces) (default: off)
  --shutdown-grace=DUR      on SIGTERM, how long to wait for resignations to be written (default 10s)
  --request-timeout=DUR     deadline of each kube-apiserver request (default 5s)
  --help                    this text
)";
}

absl::StatusOr<SidecarFlags> ParseFlags(const std::vector<std::string>& args) {
  SidecarFlags f;
  bool socket_mode_set = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h" || a == "-help") {
      f.help = true;
      continue;
    }
    if (!absl::StartsWith(a, "--")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", a,
                       "\"; flags look like --name=value (see --help)"));
    }
    std::string name = a.substr(2), value;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value"));
      }
      value = args[++i];
    }
    if (name == "kubeconfig") {
      f.kubeconfig = value;
    } else if (name == "listen") {
      f.listen = value;
    } else if (name == "socket-mode") {
      unsigned mode = 0;
      bool octal = !value.empty() && value.size() <= 4;
      for (char c : value) {
        if (c < '0' || c > '7') octal = false;
        mode = mode * 8 + static_cast<unsigned>(c - '0');
      }
      if (!octal || mode > 0777) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--socket-mode=", value,
            " is not a permission mode; use octal like 0600 or 0660"));
      }
      f.socket_mode = mode;
      socket_mode_set = true;
    } else if (name == "namespace") {
      f.namespace_ = value;
    } else if (name == "identity") {
      f.identity = value;
    } else if (name == "cluster-name") {
      f.cluster_name = value;
    } else if (name == "metrics-address") {
      f.metrics_address = value;
    } else if (name == "lease-duration") {
      auto d = ParseSeconds(name, value, absl::Seconds(2), absl::Seconds(3600));
      if (!d.ok()) return d.status();
      f.lease_duration = *d;
    } else if (name == "shutdown-grace") {
      auto d =
          ParseSeconds(name, value, absl::ZeroDuration(), absl::Minutes(10));
      if (!d.ok()) return d.status();
      f.shutdown_grace = *d;
    } else if (name == "request-timeout") {
      auto d =
          ParseSeconds(name, value, absl::Milliseconds(100), absl::Minutes(5));
      if (!d.ok()) return d.status();
      f.request_timeout = *d;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
  }
  if (!f.help) {
    absl::Status s = ValidateListenAddress(f.listen);
    if (!s.ok()) return s;
    if (socket_mode_set && UnixSocketPath(f.listen).empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--socket-mode applies to a unix socket, but --listen=", f.listen,
          " is a TCP address"));
    }
  }
  return f;
}

std::string UnixSocketPath(const std::string& address) {
  absl::string_view a = address;
  if (!absl::ConsumePrefix(&a, "unix:")) return "";
  absl::ConsumePrefix(&a, "//");
  return std::string(a);
}

absl::Status ValidateListenAddress(const std::string& address) {
  absl::string_view a = address;
  if (absl::ConsumePrefix(&a, "unix:")) {
    absl::ConsumePrefix(&a, "//");
    if (a.empty()) {
      return absl::InvalidArgumentError("--listen=" + address +
                                        " names no socket path");
    }
    return absl::OkStatus();
  }
  auto refuse = [&address](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("refusing to serve on --listen=", address, ": ", why,
                     ". The sidecar's API is unauthenticated and serves only "
                     "its own pod: use 127.0.0.1:PORT, "
                     "[::1]:PORT, localhost:PORT or unix:///path"));
  };
  size_t colon = a.rfind(':');
  if (colon == absl::string_view::npos) return refuse("no port");
  absl::string_view host = a.substr(0, colon), port = a.substr(colon + 1);
  if (!ValidPort(port)) return refuse("the port is not a number in [0, 65535]");
  if (host == "localhost") return absl::OkStatus();
  if (absl::ConsumePrefix(&host, "[")) {
    if (!absl::ConsumeSuffix(&host, "]")) return refuse("unbalanced brackets");
    in6_addr a6;
    if (inet_pton(AF_INET6, std::string(host).c_str(), &a6) != 1)
      return refuse("not an address");
    if (IN6_IS_ADDR_LOOPBACK(&a6)) return absl::OkStatus();
    return refuse("not a loopback address");
  }
  if (host.empty()) return refuse("an empty host means every interface");
  in_addr a4;
  if (inet_pton(AF_INET, std::string(host).c_str(), &a4) != 1) {
    return refuse(
        "not a loopback IP address (host names other than localhost are not "
        "accepted)");
  }
  if ((ntohl(a4.s_addr) >> 24) == 127) return absl::OkStatus();
  return refuse("not a loopback address");
}

}  // namespace mcl::sidecar
