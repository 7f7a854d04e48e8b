// LockReconciler: the per-lock election logic of docs/design.md §"Controller
// reconcile" and §Ack, as a pure function of its inputs with an injected clock.
// No I/O: the adapter turns the CR (the typed kube::MultiClusterLease), the
// etcd key and the session into the inputs below, runs the one Action the Plan
// names (executor.h), reports the outcome (OnStatusResult), and reconciles
// again. Level-triggered: the same inputs give the same plan, so re-running
// after any event or timeout is always right.
//
// The one invariant everything here serves (S1): at most one holder is
// "announced" per lock — a candidate that may believe it leads because a status
// we wrote (or may have written) names it. Before the key is deleted,
// re-pointed to another holder, or a different holder is announced, the
// announced one must have acknowledged (resign, or a spec write after our
// revoking status write) or timed out (its last observed renewal + TTL·(1+rho)
// + m). See Acked().
//
// Reconcile() is a dispatcher; each rule of the design is one member function
// (lock_reconciler.cc names the rule it implements).
#ifndef MCL_CONTROLLER_LOCK_RECONCILER_H_
#define MCL_CONTROLLER_LOCK_RECONCILER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "common/contract.h"
#include "common/kube/objects.h"
#include "controller/liveness.h"
#include "controller/lock_status.h"
#include "controller/session_tracker.h"

namespace mcl::controller {

// The etcd key of the lock, from the watch (or our own Txn results).
struct KeyView {
  // Listed/watched since the last (re)connect; false while etcd is down.
  bool known = false;
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

// A candidacy: spec.holderIdentity with spec.holderInstance (contract.h). Two
// candidacies of one identity differ by instance, and a change of instance is a
// change of holder: the old one must stop (ack or timeout) before the new one
// is granted, with a new token (design.md §"Instances").
struct Holder {
  std::string identity;
  std::string instance;  // "" for a candidacy that names none

  bool operator==(const Holder& o) const {
    return identity == o.identity && instance == o.instance;
  }
  bool operator!=(const Holder& o) const { return !(*this == o); }
  // The name under which LivenessTracker records this holder's renewals.
  std::string Key() const { return LivenessKey(identity, instance); }
  // For messages: "pod-a" or "pod-a (instance 9f3a)".
  std::string ToString() const;
  // identity and instance never contain a space (the CRD's patterns), so the
  // key names exactly one candidacy.
  static std::string LivenessKey(const std::string& identity,
                                 const std::string& instance) {
    return instance.empty() ? identity : identity + " " + instance;
  }
};

// The holder the CR's spec names; nullopt when holderIdentity is absent or
// empty.
std::optional<Holder> HolderOf(const kube::MultiClusterLease& cr);

struct Grantee {
  Holder holder;
  int64_t token = 0;
  // The CR generation the grant was computed from. A resign by `holder` at a
  // later generation is its ack: the grant's status write was preconditioned on
  // this version, so any later spec write came after it, and the sidecar writes
  // only after applying what it has seen.
  int64_t generation = 0;
};

// ---- Actions: one struct per kind; a Plan names at most one -----------------

struct AddFinalizer {};     // rule 1
struct RemoveFinalizer {};  // rule 1, once nothing is held
// Rule 3: create the key if absent, attached to the session.
struct TxnCreate {
  std::string value;  // contract::EncodeKeyValue
};
// Rule 4: if the key is unchanged since our write at expected_mod_revision,
// put `value` (same session).
struct TxnRepoint {
  int64_t expected_mod_revision = 0;
  std::string value;
};
// Rule 5: if the key is unchanged since our write at expected_mod_revision,
// delete it.
struct TxnDelete {
  int64_t expected_mod_revision = 0;
};
// A status write revoking `grantee` (leader cleared), computed from the CR at
// `generation`. An ack is judged against it once it is applied.
struct Revocation {
  Grantee grantee;
  int64_t generation = 0;
  // The spec we revoke on top of is the grantee's own resign: that is its ack.
  bool is_resign_ack = false;
};
// Write `status` through /status, preconditioned on precondition_rv.
struct WriteStatus {
  enum class Purpose { kInfo, kGrant, kRevoke };
  LockStatus status;
  std::string precondition_rv;
  Purpose purpose = Purpose::kInfo;
  std::optional<Revocation> revocation;  // with kRevoke
};

using Action = std::variant<std::monostate, AddFinalizer, RemoveFinalizer,
                            TxnCreate, TxnRepoint, TxnDelete, WriteStatus>;
// "none", "add-finalizer", "remove-finalizer", "txn-create", "txn-repoint",
// "txn-delete", "write-status" (for logs).
const char* ActionName(const Action& a);

struct EventNote {
  bool warning = false;
  std::string reason;
  std::string message;
};

struct Plan {
  Action action;  // at most one mutation
  // Monotonic time to reconcile again by itself.
  std::optional<absl::Duration> requeue_at;
  // Emit when the action succeeds (or now, if there is none).
  std::vector<EventNote> events;
  std::string why;      // for the log line
  bool forget = false;  // CR gone and nothing held: drop this lock's memory
};

// What the controller remembers about one lock between reconciles. Owned by
// one thread at a time (lock_table.h).
struct LockMemory {
  LivenessTracker liveness;
  bool initialized = false;
  // The holder that may believe it leads (see the file comment).
  std::optional<Grantee> announced;
  // Our applied status write that revoked `announced` (leader cleared).
  struct Revoke {
    Grantee grantee;
    int64_t generation = 0;  // CR generation the write was computed from
    // Resign seen, or a spec write by the grantee after the revoke.
    bool acked = false;
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
  Plan Reconcile(const kube::MultiClusterLease* cr, const KeyView& key,
                 const SessionView& session, LockMemory& mem) const;
  // The outcome of a WriteStatus action.
  void OnStatusResult(const WriteStatus& action, WriteOutcome outcome,
                      LockMemory& mem) const;

  const ReconcilerConfig& config() const { return config_; }

 private:
  struct Ctx;  // one reconcile's inputs and the plan being built

  // Observations before any rule: liveness (rule 2), the restart rule, acks
  // of a revocation (§Ack), what the key is to us, rule 7's reset.
  void Observe(Ctx& c, LockMemory& mem) const;
  // The CR is gone from the cache.
  Plan CrGone(Ctx& c, LockMemory& mem) const;
  // The conditions every status shows (BackendReachable, CandidateLive).
  void DesiredConditions(Ctx& c, LockMemory& mem) const;
  // The key is ours: grant the status (rule 3's status), re-point to a new
  // local holder (rule 4), or revoke and release (rule 5).
  Plan Grant(Ctx& c, LockMemory& mem) const;
  Plan Repoint(Ctx& c, LockMemory& mem) const;
  Plan Release(Ctx& c, LockMemory& mem) const;
  // The key is not ours.
  Plan DeletedNothingHeld(Ctx& c) const;  // rule 1: the finalizer goes
  Plan SessionLost(Ctx& c) const;         // rule 7
  Plan KeyUnknown(Ctx& c) const;          // etcd down: keep what we knew
  Plan Contend(Ctx& c) const;             // rules 1 and 3
  Plan InvalidValue(Ctx& c, LockMemory& mem) const;
  Plan Foreign(Ctx& c, LockMemory& mem) const;  // rule 6

  bool Acked(const Grantee& g, const SessionView& s, const LockMemory& mem,
             absl::Duration now) const;
  absl::Duration AckDeadline(const Grantee& g, const SessionView& s,
                             const LockMemory& mem) const;

  ReconcilerConfig config_;
  Clock* clock_;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_LOCK_RECONCILER_H_
