// The wire contract between mcl's components: every name, annotation, format
// and timing constant that more than one of them must agree on. The sidecar,
// the controller and the test fakes include this header instead of spelling any
// of these again; docs/design.md explains each one.
//
//   sidecar ──spec──▶ MultiClusterLease ◀──status── controller ──Txn──▶ etcd
//   sidecar ◀──────── heartbeat Lease ◀──────────── controller
//
// Changing a value here changes the protocol: sidecars and controllers of
// different versions must agree on it, so treat every edit as a wire change.
#ifndef MCL_COMMON_CONTRACT_H_
#define MCL_COMMON_CONTRACT_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace mcl::contract {

// ---- Timing (design.md §Confirmation) -------------------------------------

// Clock-rate drift allowance rho: the monotonic clocks of a sidecar, its
// controller and the etcd leader may run at rates that differ by up to 1 %.
inline constexpr double kRho = 0.01;
// Margin m: scheduling and timer lateness, and the time an app needs to act on
// LOST. Subtracted from every validity, added to every wait for a lapse.
inline constexpr absl::Duration kMargin = absl::Milliseconds(150);

// How long a sidecar may count a confirmation of a session with TTL `ttl`,
// from the send time of the confirmed write: TTL·(1−rho) − m.
inline absl::Duration ValidityAfterConfirmedWrite(absl::Duration ttl) {
  return ttl * (1 - kRho) - kMargin;
}
// How long a controller waits, from its observation of a holder's last
// renewal, before that holder can no longer count itself leader on any
// confirmation: TTL·(1+rho) + m (the mirror image of the bound above).
inline absl::Duration LapseAfterObservedRenewal(absl::Duration ttl) {
  return ttl * (1 + kRho) + kMargin;
}

// The session TTLs a controller may be configured with (--session-ttl), and
// so the only ones a sidecar believes in a heartbeat or a status. The minimum
// is etcd's lease granularity. The maximum bounds what a corrupt or forged
// confirmation can claim: a sidecar counts leadership for about one TTL from
// each confirmation, so an unbounded TTL (the fuzzer found 2^63-1 ms accepted)
// would let one bad write keep an app leading for ever.
inline constexpr absl::Duration kMinSessionTtl = absl::Seconds(1);
inline constexpr absl::Duration kMaxSessionTtl = absl::Hours(1);
// OK for a TTL in [kMinSessionTtl, kMaxSessionTtl]; otherwise InvalidArgument
// naming the range.
absl::Status CheckSessionTtl(absl::Duration ttl);

// ---- MultiClusterLease ------------------------------------------------------

// Added by the controller to every lock it acts on, removed once the lock's
// etcd key is released, so a deleted lock still releases its key.
inline constexpr char kFinalizer[] = "mcl.dev/release";

// Candidacy instances (misuse: one identity campaigning twice). Each Campaign
// stream picks a random instance and writes it as spec.holderInstance next to
// spec.holderIdentity; the controller treats (identity, instance) as the
// holder, so a new instance under the same identity is a change of holder
// (revocation, ack or timeout, then a new grant with a new token), and names
// the granted instance in status.leaderInstance. A sidecar counts a grant as
// its own only when identity, cluster and instance all match.
inline constexpr size_t kMaxInstanceLength = 64;

// ---- Heartbeat Lease (coordination.k8s.io/v1), one per controller -----------

// "<namespace>/mcl-heartbeat-<cluster>"; status.heartbeat names it.
inline constexpr absl::string_view kHeartbeatLeasePrefix = "mcl-heartbeat-";
// The etcd lease ID of the controller's session, lowercase hex.
inline constexpr char kSessionAnnotation[] = "mcl.dev/session";
// c: the newest MultiClusterLease resourceVersion the controller had processed
// before it sent the keepalive that etcd answered (design.md §Confirmation 2).
inline constexpr char kConfirmedResourceVersionAnnotation[] =
    "mcl.dev/confirmed-resource-version";
// The session's TTL in milliseconds.
inline constexpr char kSessionTtlAnnotation[] = "mcl.dev/session-ttl-ms";

std::string HeartbeatLeaseName(absl::string_view cluster);
// The cluster a heartbeat Lease reference ("ns/mcl-heartbeat-<cluster>" or just
// the name) names; "" when it does not have that form.
std::string ClusterFromHeartbeat(absl::string_view heartbeat);

// ---- Replica election Lease (coordination.k8s.io/v1), one per cluster
// --------

inline constexpr absl::string_view kElectionLeasePrefix = "mcl-controller-";
std::string ElectionLeaseName(absl::string_view cluster);

// ---- etcd
// ---------------------------------------------------------------------

inline constexpr char kDefaultKeyPrefix[] = "/mcl/locks";

// "<prefix>/<namespace>/<name>"; `prefix` without a trailing slash.
std::string EtcdKey(absl::string_view prefix, absl::string_view ns,
                    absl::string_view name);
// "namespace/name" of an etcd key under `prefix`; "" when it is not a lock key
// (a replica-epoch key is not one).
std::string LockKeyOfEtcdKey(absl::string_view prefix,
                             absl::string_view etcd_key);

// The replica-epoch key of a cluster's controller: "<prefix>/_epoch/<cluster>",
// under the prefix (one etcd permission covers it) but outside the lock-key
// space (no Kubernetes namespace contains '_'). A replica that becomes active
// writes it first; its mod_revision is that replica's epoch, and every etcd
// Txn the replica makes requires the key still at that revision, so a replica
// paused past its replica Lease and resumed cannot change a lock key that
// another replica granted (docs/design.md, "Replica epoch").
inline constexpr absl::string_view kReplicaEpochSegment = "_epoch";
std::string ReplicaEpochKey(absl::string_view prefix,
                            absl::string_view cluster);
// The cluster whose replica-epoch key `etcd_key` is; "" when it is not one.
std::string ClusterOfReplicaEpochKey(absl::string_view prefix,
                                     absl::string_view etcd_key);

// The value of a lock's etcd key: JSON {"cluster","holder","session",
// "acquireTime"} and, when the holder's candidacy has one, "instance". The
// fencing token of a grant is not in the value: it is the key's mod_revision,
// the etcd revision of the write that made the grant.
struct KeyValue {
  std::string cluster;
  std::string holder;
  std::string session;       // the granting controller's etcd lease, hex
  std::string acquire_time;  // RFC 3339 (the granting controller's wall clock;
                             // display only, never compared)
  // spec.holderInstance of the granted candidacy ("" when it had none); the
  // holder is the pair (holder, instance).
  std::string instance;
};
std::string EncodeKeyValue(const KeyValue& v);
// nullopt for anything that is not such an object with non-empty cluster and
// holder (another program's value under our prefix: never overwritten).
std::optional<KeyValue> ParseKeyValue(absl::string_view raw);

}  // namespace mcl::contract

#endif  // MCL_COMMON_CONTRACT_H_
