#include "client-stubs/cpp/sidecar_channel.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client-stubs/cpp/leadership.h"

namespace mcl::client {
namespace {

constexpr char kDefaultAddress[] = "127.0.0.1:7400";

bool LowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// DNS-1123: lowercase alphanumerics, '-' and '.' (labels only: no '.'), each
// '.'-separated part starting and ending with an alphanumeric.
absl::Status CheckDns1123(const std::string& what, const std::string& v,
                          size_t max, bool dots) {
  if (v.size() > max) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is ", v.size(),
                                                   " characters long; at most ",
                                                   max, " are allowed"));
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    const bool sep = c == '.' && dots;
    if (!LowerAlnum(c) && c != '-' && !sep) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " \"", v, "\" has '", std::string(1, c), "' at position ", i,
          "; use lowercase letters, digits and '-'", dots ? " and '.'" : "",
          " (a DNS-1123 ", dots ? "subdomain" : "label", ")"));
    }
    const bool part_start = i == 0 || v[i - 1] == '.';
    const bool part_end = i + 1 == v.size() || v[i + 1] == '.';
    if ((part_start || part_end) && c != '.' && !LowerAlnum(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " \"", v,
                       "\" must start and end with a lowercase letter or digit",
                       dots ? " (each '.'-separated part too)" : ""));
    }
    if (c == '.' && (part_start || part_end)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " \"", v, "\" has an empty '.'-separated part"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateLockName(const std::string& name) {
  if (name.empty()) {
    return absl::InvalidArgumentError(
        "the lock name is empty; name the lock (a DNS-1123 subdomain such as "
        "\"my-app.leader\")");
  }
  return CheckDns1123("the lock name", name, 253, /*dots=*/true);
}

absl::Status ValidateNamespace(const std::string& ns) {
  if (ns.empty()) return absl::OkStatus();
  return CheckDns1123("the namespace", ns, 63, /*dots=*/false);
}

absl::StatusOr<std::string> SidecarAddress(
    const std::string& explicit_address) {
  std::string addr = explicit_address;
  std::string source = "the sidecar address";
  if (addr.empty()) {
    const char* env = std::getenv("MCL_SIDECAR_ADDR");
    if (env == nullptr || *env == '\0') return std::string(kDefaultAddress);
    addr = env;
    source = "MCL_SIDECAR_ADDR";
  }
  const std::string fix =
      absl::StrCat("; use HOST:PORT (e.g. ", kDefaultAddress,
                   ") or unix:///absolute/path/to/socket");
  if (absl::StartsWith(addr, "unix:")) {
    if (!absl::StartsWith(addr, "unix:/")) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, " \"", addr, "\" is not an absolute unix socket path", fix));
    }
    return addr;
  }
  const size_t colon = addr.rfind(':');
  int port = 0;
  if (absl::StrContains(addr, "://") || colon == std::string::npos ||
      colon == 0 || !absl::SimpleAtoi(addr.substr(colon + 1), &port) ||
      port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, " \"", addr, "\" is not an address", fix));
  }
  return addr;
}

std::shared_ptr<grpc::Channel> NewSidecarChannel(const std::string& address,
                                                 absl::Duration max_backoff) {
  grpc::ChannelArguments args;
  const int max_ms = static_cast<int>(
      std::clamp<int64_t>(absl::ToInt64Milliseconds(max_backoff), 100, 120000));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_ms);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   args);
}

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

}  // namespace mcl::client
