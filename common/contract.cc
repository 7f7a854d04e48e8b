#include "common/contract.h"

#include <cpprest/json.h>

#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mcl::contract {

using web::json::value;

absl::Status CheckSessionTtl(absl::Duration ttl) {
  if (ttl >= kMinSessionTtl && ttl <= kMaxSessionTtl) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("session TTL ", absl::FormatDuration(ttl), " is outside ",
                   absl::FormatDuration(kMinSessionTtl), "..",
                   absl::FormatDuration(kMaxSessionTtl),
                   " (the range a controller's --session-ttl may take)"));
}

std::string HeartbeatLeaseName(absl::string_view cluster) {
  return absl::StrCat(kHeartbeatLeasePrefix, cluster);
}

std::string ClusterFromHeartbeat(absl::string_view heartbeat) {
  absl::string_view name = heartbeat;
  const size_t slash = name.rfind('/');
  if (slash != absl::string_view::npos) name.remove_prefix(slash + 1);
  if (!absl::StartsWith(name, kHeartbeatLeasePrefix) ||
      name.size() == kHeartbeatLeasePrefix.size()) {
    return "";
  }
  return std::string(name.substr(kHeartbeatLeasePrefix.size()));
}

std::string ElectionLeaseName(absl::string_view cluster) {
  return absl::StrCat(kElectionLeasePrefix, cluster);
}

std::string EtcdKey(absl::string_view prefix, absl::string_view ns,
                    absl::string_view name) {
  return absl::StrCat(prefix, "/", ns, "/", name);
}

std::string LockKeyOfEtcdKey(absl::string_view prefix,
                             absl::string_view etcd_key) {
  const std::string with_slash = absl::StrCat(prefix, "/");
  if (!absl::StartsWith(etcd_key, with_slash)) return "";
  std::vector<absl::string_view> parts =
      absl::StrSplit(etcd_key.substr(with_slash.size()), '/');
  if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) return "";
  if (parts[0] == kReplicaEpochSegment) return "";
  return absl::StrCat(parts[0], "/", parts[1]);
}

std::string ReplicaEpochKey(absl::string_view prefix,
                            absl::string_view cluster) {
  return absl::StrCat(prefix, "/", kReplicaEpochSegment, "/", cluster);
}

std::string ClusterOfReplicaEpochKey(absl::string_view prefix,
                                     absl::string_view etcd_key) {
  const std::string head = absl::StrCat(prefix, "/", kReplicaEpochSegment, "/");
  if (!absl::StartsWith(etcd_key, head) || etcd_key.size() == head.size()) {
    return "";
  }
  return std::string(etcd_key.substr(head.size()));
}

std::string EncodeKeyValue(const KeyValue& v) {
  value o = value::object();
  o["cluster"] = value::string(v.cluster);
  o["holder"] = value::string(v.holder);
  o["session"] = value::string(v.session);
  o["acquireTime"] = value::string(v.acquire_time);
  if (!v.instance.empty()) o["instance"] = value::string(v.instance);
  return o.serialize();
}

std::optional<KeyValue> ParseKeyValue(absl::string_view raw) {
  std::error_code ec;
  // cpprestsdk throws on some malformed input despite the error_code overload
  // (deeply nested arrays); nothing may cross this boundary.
  value o;
  try {
    o = value::parse(std::string(raw), ec);
  } catch (...) {
    return std::nullopt;
  }
  if (ec || !o.is_object()) return std::nullopt;
  auto str = [&](const char* k) -> std::optional<std::string> {
    if (!o.has_field(k)) return std::string();
    const value& f = o.at(k);
    if (!f.is_string()) return std::nullopt;
    return f.as_string();
  };
  auto cluster = str("cluster"), holder = str("holder"),
       session = str("session"), acquire = str("acquireTime"),
       instance = str("instance");
  if (!cluster || !holder || !session || !acquire || !instance ||
      cluster->empty() || holder->empty()) {
    return std::nullopt;
  }
  return KeyValue{*cluster, *holder, *session, *acquire, *instance};
}

}  // namespace mcl::contract
