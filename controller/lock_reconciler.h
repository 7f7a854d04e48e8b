// LockReconciler: the per-lock election logic of docs/design.md §"Controller
// reconcile" and §Ack, as a pure function of its inputs with an injected clock.
// No I/O: the adapter (controller.cc) turns the CR, the etcd key and the
// session into the views below, runs the one Action the Plan names, reports the
// outcome (OnStatusResult), and reconciles again. Level-triggered: the same
// inputs give the same plan, so re-running after any event or timeout is always
// right.
//
// The one invariant everything here serves (S1): at most one holder is
// "announced" per lock — a candidate that may believe it leads because a status
// we wrote (or may have written) names it. Before the key is deleted,
// re-pointed to another holder, or a different holder is announced, the
// announced one must have acknowledged (resign, or a spec write after our
// revoking status write) or timed out (its last observed renewal + TTL·(1+rho)
// + m). See Acked().
#ifndef MCL_CONTROLLER_LOCK_RECONCILER_H_
#define MCL_CONTROLLER_LOCK_RECONCILER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "controller/liveness.h"
#include "controller/session_tracker.h"

namespace mcl::controller {

inline constexpr char kFinalizer[] = "mcl.dev/release";

// Condition types and the status values of metav1.Condition.
inline constexpr char kBackendReachable[] = "BackendReachable";
inline constexpr char kGlobalLockHeld[] = "GlobalLockHeld";
inline constexpr char kCandidateLive[] = "CandidateLive";

struct Condition {
  std::string type;
  std::string status;  // "True" / "False" / "Unknown"
  std::string reason;
  std::string message;
  std::string
      last_transition_time;  // RFC 3339; kept while status stays the same
};

// MultiClusterLease .status (the CRD's fields).
struct LockStatus {
  std::string leader;
  std::string leader_cluster;
  std::string acquire_time;
  int64_t fencing_token = 0;
  int64_t observed_generation = 0;
  int64_t transitions = 0;
  std::string session;
  std::string heartbeat;
  int64_t session_ttl_ms = 0;
  std::string confirmed_resource_version;
  std::string last_confirmed_renew_time;
  std::vector<Condition> conditions;

  const Condition* Find(const std::string& type) const;
};

// True when a and b differ in anything a reader acts on. observedGeneration and
// the confirmation fields change with every renewal; comparing them would turn
// every renewal into a status write.
bool StatusDiffers(const LockStatus& a, const LockStatus& b);

// The CR as the informer (or our own last write) has it.
struct CrView {
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string resource_version;
  int64_t generation = 0;
  bool deleting = false;
  bool has_finalizer = false;
  std::optional<std::string> holder;
  int64_t lease_duration_seconds = 0;  // 0: absent
  std::string renew_time;
  LockStatus status;
};

// The etcd key's value: JSON {"cluster","holder","session","acquireTime"}.
struct KeyValue {
  std::string cluster;
  std::string holder;
  std::string session;
  std::string acquire_time;
};
std::string EncodeKeyValue(const KeyValue& v);
// nullopt for anything that is not such an object with non-empty cluster and
// holder.
std::optional<KeyValue> ParseKeyValue(const std::string& raw);

// The etcd key of the lock, from the watch (or our own Txn results).
struct KeyView {
  bool known = false;  // listed/watched since the last (re)connect; false while
                       // etcd is down
  bool present = false;
  int64_t mod_revision = 0;
  int64_t lease = 0;
  std::string raw;
};

struct ReconcilerConfig {
  std::string cluster;    // this cluster's name
  std::string heartbeat;  // namespace/name of our heartbeat Lease
  // Staleness when spec.leaseDurationSeconds is absent (15 s, client-go's
  // default).
  absl::Duration default_lease_duration = absl::Seconds(15);
};

struct Action {
  enum Kind {
    kNone,
    kAddFinalizer,
    kRemoveFinalizer,
    kTxnCreate,   // create the key if absent, value `value`, attached to the
                  // session
    kTxnRepoint,  // if mod_revision == expected_mod_revision: put `value` (same
                  // session)
    kTxnDelete,   // if mod_revision == expected_mod_revision: delete
    kWriteStatus,  // write `status` through /status, preconditioned on
                   // precondition_rv
  };
  enum Purpose { kInfo, kGrant, kRevoke };
  Kind kind = kNone;
  std::string value;
  int64_t expected_mod_revision = 0;
  LockStatus status;
  std::string precondition_rv;
  Purpose purpose = kInfo;
  // For kRevoke: the revoked grant and the CR generation the write was computed
  // from.
  std::string revoke_holder;
  int64_t revoke_token = 0;
  int64_t revoke_generation = 0;
  bool revoke_is_resign_ack = false;
};
const char* ActionName(Action::Kind k);

struct EventNote {
  bool warning = false;
  std::string reason;
  std::string message;
};

struct Plan {
  Action action;  // at most one mutation
  std::optional<absl::Duration>
      requeue_at;  // monotonic time to reconcile again by itself
  std::vector<EventNote>
      events;           // emit when the action succeeds (or now, if none)
  std::string why;      // for the log line
  bool forget = false;  // CR gone and nothing held: drop this lock's memory
};

struct Grantee {
  std::string holder;
  int64_t token = 0;
  // The CR generation the grant was computed from. A resign by `holder` at a
  // later generation is its ack: the grant's status write was preconditioned on
  // this version, so any later spec write came after it, and the sidecar writes
  // only after applying what it has seen.
  int64_t generation = 0;
};

// What the controller remembers about one lock between reconciles.
struct LockMemory {
  LivenessTracker liveness;
  bool initialized = false;
  // The holder that may believe it leads (see the file comment).
  std::optional<Grantee> announced;
  // Our applied status write that revoked `announced` (leader cleared).
  struct Revoke {
    Grantee grantee;
    int64_t generation = 0;  // CR generation the write was computed from
    bool acked =
        false;  // resign seen, or a spec write by the grantee after the revoke
  };
  std::optional<Revoke> revoke;
  int64_t max_token_seen = 0;  // for status.transitions
  std::string warned_value;    // garbage key value already reported
};

enum class WriteOutcome { kApplied, kConflict, kFailed };

class LockReconciler {
 public:
  LockReconciler(ReconcilerConfig config, Clock* clock)
      : config_(std::move(config)), clock_(clock) {}

  // `cr` null: the CR is gone from the cache. Updates `mem` (observations,
  // acks) and returns what to do next.
  Plan Reconcile(const CrView* cr, const KeyView& key,
                 const SessionView& session, LockMemory& mem) const;
  // The outcome of a kWriteStatus action.
  void OnStatusResult(const Action& action, WriteOutcome outcome,
                      LockMemory& mem) const;

  const ReconcilerConfig& config() const { return config_; }

 private:
  bool Acked(const Grantee& g, const SessionView& s, const LockMemory& mem,
             absl::Duration now) const;
  absl::Duration AckDeadline(const Grantee& g, const SessionView& s,
                             const LockMemory& mem) const;

  ReconcilerConfig config_;
  Clock* clock_;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_LOCK_RECONCILER_H_
