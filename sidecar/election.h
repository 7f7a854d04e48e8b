// Election: the sidecar's core, between the gRPC service (service.h) and the
// Kubernetes API. It keeps, per lock, the latest MultiClusterLease version and
// the campaigns and observers on it; it runs the pure state machines
// (leadership.h, candidacy.h) and executes the spec writes they ask for on one
// worker thread.
//
// Concurrency: one mutex guards all state. Watch callbacks and RPC handlers
// take it briefly; the worker releases it for every apiserver request. Events
// are handed to sinks under the mutex, so every sink of a lock receives them in
// the same order (all observers see the same sequence). Sinks never call back
// into Election while the mutex is held; stream ends (EndCampaign/EndObserve)
// only enqueue.
//
// The write invariant (design.md §The sidecar's rule) holds by construction: an
// object version is applied to every campaign's Leadership (and its events
// handed out) in the same critical section that makes it the lock's latest
// version; a write is always preconditioned on the latest version.
#ifndef MCL_SIDECAR_ELECTION_H_
#define MCL_SIDECAR_ELECTION_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/backoff.h"
#include "common/clock.h"
#include "common/kube/objects.h"
#include "common/kube/typed_client.h"
#include "sidecar/candidacy.h"
#include "sidecar/leadership.h"

namespace mcl::sidecar {

struct LockKey {
  std::string ns, name;
  std::string str() const { return ns + "/" + name; }
  bool operator<(const LockKey& o) const {
    return ns != o.ns ? ns < o.ns : name < o.name;
  }
  bool operator==(const LockKey& o) const {
    return ns == o.ns && name == o.name;
  }
};

// One event for a stream (Campaign or Observe).
struct StreamEvent {
  LockKey lock;
  LeadershipEvent event;
  absl::Time time;  // wall clock, informational
};

// A stream's outlet. Thread-safe; Send/Finish must not block and must not call
// into Election.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void Send(const StreamEvent& e) = 0;
  // Ends the stream after the events already sent.
  virtual void Finish(const absl::Status& s) = 0;
};

// The watches Election needs, implemented over the one kube Informer
// (watches.h). Callbacks come from the informer's thread; destroying a watch
// stops it.
struct LeaseWatchCallbacks {
  std::function<void(const kube::MultiClusterLease&)> on_upsert;
  std::function<void(const kube::MultiClusterLease&)>
      on_delete;  // the last known state
  // A list or watch failed (apiserver unreachable, 403, ...); the watch retries
  // with backoff.
  std::function<void(const absl::Status&)> on_error;
};
class LeaseWatch {
 public:
  virtual ~LeaseWatch() = default;
  // Must not be called with Election's mutex held (the first sync delivers
  // callbacks).
  virtual bool WaitForSync(absl::Duration timeout) = 0;
  virtual bool HasSynced() = 0;
  virtual std::optional<kube::MultiClusterLease> Get(
      const std::string& name) = 0;
  // Of the latest list/watch attempt; OK while the apiserver answers.
  virtual absl::Status LastError() = 0;
};
struct HeartbeatCallbacks {
  std::function<void(const kube::Lease&)> on_upsert;
};
class HeartbeatWatch {
 public:
  virtual ~HeartbeatWatch() = default;
};
class WatchFactory {
 public:
  virtual ~WatchFactory() = default;
  // One watch of every MultiClusterLease in `ns` (shared by all locks of the
  // namespace).
  virtual std::unique_ptr<LeaseWatch> WatchLeases(const std::string& ns,
                                                  LeaseWatchCallbacks cb) = 0;
  // The heartbeat Lease `ns/name` (a field selector on its name).
  virtual std::unique_ptr<HeartbeatWatch> WatchHeartbeat(
      const std::string& ns, const std::string& name,
      HeartbeatCallbacks cb) = 0;
};

struct ElectionOptions {
  std::string default_namespace = "default";
  std::string default_identity;
  // This sidecar's cluster ("" = learn it from status.heartbeat; see
  // Leadership::Options).
  std::string cluster;
  absl::Duration default_lease_duration = absl::Seconds(15);
  // How long Campaign/Leader wait for a namespace's first sync before
  // UNAVAILABLE.
  absl::Duration sync_timeout = absl::Seconds(5);
  Clock* clock = Clock::Real();
};

// Counters for /metrics.
struct LockMetrics {
  bool is_leader = false;
  int64_t transitions = 0;  // LEADER events
  int64_t renew_errors = 0;
};

class Election {
 public:
  // `client` does the spec writes (the sidecar identity); `watches` the
  // watches.
  Election(ElectionOptions options, kube::MultiClusterLeaseClient client,
           std::unique_ptr<WatchFactory> watches);
  ~Election();
  Election(const Election&) = delete;
  Election& operator=(const Election&) = delete;

  const ElectionOptions& options() const { return options_; }
  // Fills in the defaults of a request.
  LockKey Key(const std::string& ns, const std::string& name) const;
  std::string Identity(const std::string& requested) const;

  // Registers a candidate and sends its first event to `sink` before returning.
  // Errors: ALREADY_EXISTS (same lock and identity), UNAVAILABLE (not synced /
  // watch failing).
  absl::StatusOr<uint64_t> StartCampaign(const LockKey& key,
                                         const std::string& identity,
                                         absl::Duration lease_duration,
                                         std::shared_ptr<EventSink> sink);
  // The stream ended (cancelled, disconnected): resign at once. Never blocks.
  void EndCampaign(uint64_t id, const std::string& reason);
  // Resigns the campaigns of `key` (all identities when `identity` is empty);
  // `done` gets whether one of them was leading, or FAILED_PRECONDITION /
  // UNAVAILABLE. `done` runs on the worker thread or the calling thread, never
  // under the mutex.
  void Resign(const LockKey& key, const std::string& identity,
              std::function<void(absl::StatusOr<bool>)> done);

  absl::StatusOr<uint64_t> StartObserve(const LockKey& key,
                                        std::shared_ptr<EventSink> sink);
  void EndObserve(uint64_t id);
  // Current grant; NOT_FOUND when nobody leads; UNAVAILABLE when not synced /
  // watch failing.
  absl::StatusOr<Grant> Leader(const LockKey& key);

  // SIGTERM: resign every campaign (LOST first), wait up to `grace` for the
  // spec writes, end every stream. Further calls fail with UNAVAILABLE.
  void Shutdown(absl::Duration grace);

  std::map<std::string, LockMetrics> Metrics();
  // The apiserver has been reachable since the last error (for /healthz and
  // tests).
  bool Healthy();

 private:
  struct Campaign {
    uint64_t id = 0;
    LockKey key;
    std::string identity;
    absl::Duration lease_duration;
    std::unique_ptr<Leadership> leadership;
    std::unique_ptr<Candidacy> candidacy;
    std::shared_ptr<EventSink> sink;
    bool ended = false;  // resigned or stream gone: release the spec, then drop
    bool was_leader = false;  // at the time it ended
    bool finish_stream =
        false;  // end the stream with OK after release (Resign)
    absl::Duration retry_at = -absl::InfiniteDuration();
    absl::Duration release_until =
        absl::InfiniteDuration();  // give up releasing after this
    Backoff backoff{
        Backoff::Options{absl::Milliseconds(100), absl::Seconds(5), 2.0}};
    std::vector<std::function<void(absl::StatusOr<bool>)>> waiters;
  };
  struct Lock {
    LockKey key;
    std::optional<kube::MultiClusterLease> obj;  // latest existing version
    std::optional<LeaseView> view;               // latest version (or deletion)
    std::map<uint64_t, std::unique_ptr<Campaign>> campaigns;
    std::map<uint64_t, std::shared_ptr<EventSink>> observers;
    Grant observed;  // what observers were last told
    std::string heartbeat;
    LockMetrics metrics;
  };
  struct Namespace {
    std::unique_ptr<LeaseWatch> watch;
    // The watch reported an error and has delivered no event since. (The
    // informer's LastError() stays set while a resumed watch is healthy, until
    // that watch ends; events prove it works.)
    bool failing = false;
  };
  struct Heartbeat {
    std::unique_ptr<HeartbeatWatch> watch;
    std::optional<Confirmation> latest;
    int refs = 0;
  };
  struct Write {
    enum Kind { kCreate, kUpdate } kind = kUpdate;
    uint64_t campaign = 0;
    bool release = false;
    kube::MultiClusterLease obj;
    absl::Duration sent_at;
  };

  // Starts the namespace's watch if needed and waits (without the mutex) for
  // its first sync. UNAVAILABLE when it does not sync in time, or when the
  // watch is failing and a direct read of `key` fails too. When that read was
  // made, `*probe` receives its result (nullopt: not found).
  absl::StatusOr<LeaseWatch*> SyncedWatch(
      const LockKey& key,
      std::optional<std::optional<kube::MultiClusterLease>>* probe = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);
  Lock& EnsureLock(const LockKey& key, LeaseWatch* watch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeDropLock(const LockKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes `obj` (or a deletion) the latest version of its lock and applies it
  // everywhere.
  void Apply(Lock& lock, const LeaseView& view,
             const kube::MultiClusterLease* obj)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyObject(const kube::MultiClusterLease& obj)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetHeartbeat(Lock& lock, const std::string& hb)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Flush(Lock& lock, Campaign& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyObservers(Lock& lock) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndCampaignLocked(Campaign& c, const std::string& reason,
                         bool finish_stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void OnLeaseUpsert(const std::string& ns, const kube::MultiClusterLease& obj);
  void OnLeaseDelete(const std::string& ns, const kube::MultiClusterLease& obj);
  void OnLeaseError(const std::string& ns, const absl::Status& s);
  void OnHeartbeat(const std::string& key, const kube::Lease& lease);

  void WorkerLoop();
  // Picks the next write to do (or the time to wake up). Returns false if
  // nothing is due.
  bool NextWrite(Write* w, absl::Duration* wake)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Execute(Write& w) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Refetch(const LockKey& key) ABSL_LOCKS_EXCLUDED(mu_);
  Campaign* FindCampaign(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CompleteRelease(Lock& lock, Campaign& c, absl::StatusOr<bool> result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ElectionOptions options_;
  kube::MultiClusterLeaseClient client_;
  std::unique_ptr<WatchFactory> watches_;

  absl::Mutex mu_;
  absl::CondVar changed_;  // campaigns removed (Shutdown waits on it)
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<LockKey, Lock> locks_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, LockKey> campaign_locks_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, LockKey> observer_locks_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Namespace> namespaces_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Heartbeat> heartbeats_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, LockMetrics> retired_metrics_ ABSL_GUARDED_BY(mu_);
  // Wakes the worker. Stream ends reported by sinks' callbacks go through here
  // too: those callbacks may run inline inside a Send/Finish made under mu_, so
  // they may take only this leaf mutex.
  void Kick();
  absl::Mutex kick_mu_ ABSL_ACQUIRED_AFTER(mu_);
  absl::CondVar kick_cv_;
  bool kicked_ ABSL_GUARDED_BY(kick_mu_) = false;
  std::vector<std::pair<uint64_t, std::string>> pending_campaign_ends_
      ABSL_GUARDED_BY(kick_mu_);
  std::vector<uint64_t> pending_observer_ends_ ABSL_GUARDED_BY(kick_mu_);
  // Callbacks to run after mu_ is released (Resign completions).
  std::vector<std::function<void()>> deferred_ ABSL_GUARDED_BY(mu_);
  std::thread worker_;
};

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_ELECTION_H_
