// LockTable: the sidecar's campaign bookkeeping. Per lock: the latest
// MultiClusterLease version, the campaigns on it (each with its Leadership and
// Candidacy state machines) and the observers. No I/O and no threads of its
// own: the threads around it (election.h) call in —
//   * watch callbacks (informer threads): ApplyObject, ApplyDeletion,
//     ApplyConfirmation;
//   * RPC handlers (gRPC worker threads): StartCampaign, StartObserve, Resign,
//     CachedGrant;
//   * the spec writer (spec_writer.h): EndCampaign/EndObserve for streams
//     that went away, NextWrite, WriteDone, ApplyRead;
//   * the deadline timer: TickDeadlines.
//
// Concurrency: one mutex guards everything; every call takes it briefly and
// none makes a request while holding it. Events are handed to sinks under the
// mutex, so every sink of a lock receives them in the same order (all
// observers see the same sequence). Sinks never call back in while the mutex
// is held; the hooks below must not call back in either.
//
// The write invariant (docs/design.md §The sidecar's rule) holds by
// construction: an object version is applied to every campaign's Leadership
// (and its events handed out) in the same critical section that makes it the
// lock's latest version, and NextWrite bases every write on the latest
// version, preconditioned on its resourceVersion.
#ifndef MCL_SIDECAR_LOCK_TABLE_H_
#define MCL_SIDECAR_LOCK_TABLE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/backoff.h"
#include "common/clock.h"
#include "common/kube/objects.h"
#include "sidecar/candidacy.h"
#include "sidecar/election_api.h"
#include "sidecar/leadership.h"
#include "sidecar/watches.h"

namespace mcl::sidecar {

class LockTable {
 public:
  struct Options {
    // This sidecar's cluster ("" = learn it from status.heartbeat; see
    // Leadership::Options).
    std::string cluster;
    Clock* clock = Clock::Real();
  };
  // Called with the table's mutex held: they must only note the fact and
  // return (wake a thread, look up a cache).
  struct Hooks {
    // NextWrite may have a write to make sooner than it last said.
    std::function<void()> write_due = [] {};
    // A campaign is leading until monotonic `deadline` unless confirmed
    // again: TickDeadlines must run then.
    std::function<void(absl::Duration deadline)> deadline = [](absl::Duration) {
    };
    // A lock's status names heartbeat Lease `heartbeat` ("ns/name", or a bare
    // name in `lock_ns`): watch it, and return its latest confirmation if one
    // is known. Later ones come through ApplyConfirmation.
    std::function<std::optional<Confirmation>(const std::string& heartbeat,
                                              const std::string& lock_ns)>
        heartbeat =
            [](const std::string&, const std::string&) { return std::nullopt; };
    // A campaign was removed (Shutdown waits for none to be left).
    std::function<void()> campaign_removed = [] {};
  };
  // A spec write for the writer to make, based on the latest version.
  struct Write {
    enum Kind { kCreate, kUpdate } kind = kUpdate;
    uint64_t campaign = 0;
    bool release = false;  // clears the holder (the campaign ended)
    kube::MultiClusterLease obj;
    LockKey key() const {
      return LockKey{obj.metadata.namespace_, obj.metadata.name};
    }
  };

  LockTable(Options options, Hooks hooks);
  LockTable(const LockTable&) = delete;
  LockTable& operator=(const LockTable&) = delete;

  // ---- RPC handlers. `cache` is the namespace's synced watch: the lock's
  // current version is read from it under the mutex (see LeaseWatch::Get).
  absl::StatusOr<uint64_t> StartCampaign(const LockKey& key,
                                         const std::string& identity,
                                         absl::Duration lease_duration,
                                         std::shared_ptr<EventSink> sink,
                                         LeaseWatch* cache);
  absl::StatusOr<uint64_t> StartObserve(const LockKey& key,
                                        std::shared_ptr<EventSink> sink,
                                        LeaseWatch* cache);
  // Ends the matching campaigns (LOST first) and arranges `done` to be called
  // once their release is written. False when none matched (`done` is not
  // kept).
  bool Resign(const LockKey& key, const std::string& identity,
              std::function<void(absl::StatusOr<bool>)> done);
  // The grant of a lock the table tracks; nullopt when it does not track it.
  std::optional<Grant> CachedGrant(const LockKey& key);

  // ---- Watch callbacks.
  void ApplyObject(const kube::MultiClusterLease& obj);
  void ApplyDeletion(const std::string& ns, const kube::MultiClusterLease& obj);
  void ApplyConfirmation(const std::string& heartbeat, const Confirmation& c);

  // ---- The spec writer.
  void EndCampaign(uint64_t id, const std::string& reason);
  void EndObserve(uint64_t id);
  // The next write to make, or nullopt; `*wake` is when to ask again (unless
  // write_due fires first).
  std::optional<Write> NextWrite(absl::Duration* wake);
  // The result of `w`, sent at monotonic `sent_at`.
  void WriteDone(const Write& w, absl::Duration sent_at,
                 const absl::StatusOr<kube::MultiClusterLease>& result);
  // A direct read of `key` (after a conflict): applies it. Returns the read's
  // error, except NOT_FOUND (applied as a deletion).
  absl::Status ApplyRead(const LockKey& key,
                         const absl::StatusOr<kube::MultiClusterLease>& read);
  // Callbacks that became due (Resign completions); the caller runs them
  // without any mutex held.
  std::vector<std::function<void()>> TakeDeferred();

  // ---- The deadline timer: re-evaluates every campaign whose LOST deadline
  // has passed (LOST goes out) and returns the earliest deadline left
  // (absl::InfiniteDuration() when none).
  absl::Duration TickDeadlines();

  // ---- Shutdown: ends every campaign ("the sidecar is shutting down"),
  // releasing until at most monotonic `release_until`; further Starts fail.
  void BeginShutdown(absl::Duration release_until);
  size_t campaigns();
  // Ends every remaining stream: campaigns with OK, observers UNAVAILABLE.
  void FinishStreams();

  std::map<std::string, LockMetrics> Metrics();

 private:
  // How a stream ends when this sidecar goes away: UNAVAILABLE, so every
  // client library reconnects with backoff and campaigns again (through
  // another sidecar, or this one restarted). OK is kept for Resign, which the
  // app asked for.
  static absl::Status ShuttingDown();
  struct Campaign {
    uint64_t id = 0;
    LockKey key;
    std::string identity;
    // This candidacy's random instance (spec.holderInstance).
    std::string instance;
    absl::Duration lease_duration;
    std::unique_ptr<Leadership> leadership;
    std::unique_ptr<Candidacy> candidacy;
    std::shared_ptr<EventSink> sink;
    bool ended = false;  // resigned or stream gone: release the spec, then drop
    bool was_leader = false;  // at the time it ended
    // How to end the stream once the spec is released: OK after Resign (the
    // app asked to stop), UNAVAILABLE when the sidecar shuts down (the app
    // should campaign again, through another sidecar); none when the stream
    // is already gone.
    std::optional<absl::Status> finish_with;
    absl::Duration retry_at = -absl::InfiniteDuration();
    // Give up releasing after this.
    absl::Duration release_until = absl::InfiniteDuration();
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

  Lock& EnsureLock(const LockKey& key, LeaseWatch* cache)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeDropLock(const LockKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes `view` (and `obj`, null for a deletion) the latest version of
  // `lock` if it is newer, and applies it everywhere. It may end campaigns
  // (another live candidacy of their identity renews) and so drop `lock`:
  // callers must not use `lock` or its campaigns afterwards without looking
  // them up again.
  void Apply(Lock& lock, const LeaseView& view,
             const kube::MultiClusterLease* obj)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyObjectLocked(const kube::MultiClusterLease& obj)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetHeartbeat(Lock& lock, const std::string& hb)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Flush(Lock& lock, Campaign& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ArmDeadline(Campaign& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateIsLeader(Lock& lock) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyObservers(Lock& lock) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndCampaignLocked(Campaign& c, const std::string& reason,
                         std::optional<absl::Status> finish_with)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Campaign* FindCampaign(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CompleteRelease(Lock& lock, Campaign& c, absl::StatusOr<bool> result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the campaign's stream with `error` (after LOST, if it was leading)
  // and drops it; nothing is released (it holds nothing).
  void FailCampaign(Lock& lock, Campaign& c, const absl::Status& error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveCampaign(Lock& lock, Campaign& c)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The write campaign `c` of `lock` needs now, if any (may schedule `*wake`,
  // or mark the campaign done).
  std::optional<Write> WriteFor(Lock& lock, Campaign& c, absl::Duration now,
                                absl::Duration* wake, bool* done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  const Hooks hooks_;

  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<LockKey, Lock> locks_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, LockKey> campaign_locks_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, LockKey> observer_locks_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, LockMetrics> retired_metrics_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> deferred_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_LOCK_TABLE_H_
