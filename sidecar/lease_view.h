// LeaseView: the parts of one version of a MultiClusterLease that the sidecar's
// rules read, as plain values (resourceVersions already parsed to integers,
// design.md §Confirmation 5). Built from the API object by the adapter
// (sidecar/kube_view.h); the pure state machines never see JSON.
#ifndef MCL_SIDECAR_LEASE_VIEW_H_
#define MCL_SIDECAR_LEASE_VIEW_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"

namespace mcl::sidecar {

// The global holder of a lock, as the local controller's status reports it.
struct Grant {
  // status.leader: the holderIdentity of the leading candidate.
  std::string leader;
  // status.leaderCluster.
  std::string cluster;
  // status.fencingToken.
  int64_t token = 0;
  // status.acquireTime (display only).
  absl::Time acquire_time = absl::InfinitePast();
  // status.leaderInstance: which candidacy of `leader` the grant is for, when
  // it is in this cluster (common/contract.h). Not part of SameAs: a new
  // instance is a new grant with a new token.
  std::string instance;

  bool empty() const { return leader.empty(); }
  // Same grant: same holder, cluster and token (acquire time is informational).
  bool SameAs(const Grant& o) const {
    return leader == o.leader && cluster == o.cluster && token == o.token;
  }
};

struct LeaseView {
  int64_t resource_version = 0;
  // False for a deletion (the watch's DELETED event, or 404 on a read).
  bool exists = true;

  // spec (written by candidates' sidecars).
  // spec.holderIdentity; absent = no local candidate.
  std::optional<std::string> holder;
  // spec.holderInstance: which candidacy of `holder` writes the spec.
  std::optional<std::string> holder_instance;
  int32_t lease_duration_seconds = 0;
  // spec.renewTime, compared only for change (S3).
  std::string renew_time;

  // status (written by the local controller only).
  Grant grant;
  // status.session: the etcd session backing a local grant.
  std::string session;
  // status.heartbeat: "namespace/name" of the controller's heartbeat Lease.
  std::string heartbeat;
  // status.sessionTTLMilliseconds; 0 when absent or refused.
  int64_t session_ttl_ms = 0;
  // Why the status's session TTL was refused (empty: it was not).
  std::string refused_confirmation;
  // status.confirmedResourceVersion; 0 when absent.
  int64_t confirmed_rv = 0;
};

// One confirmation (design.md §Confirmation 2): the controller with etcd
// session `session` had observed every write at or below `confirmed_rv` before
// it sent a keepalive that etcd answered.
struct Confirmation {
  std::string session;
  int64_t confirmed_rv = 0;
  absl::Duration ttl = absl::ZeroDuration();
};

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_LEASE_VIEW_H_
