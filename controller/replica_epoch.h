// ReplicaEpoch: this replica's claim on its cluster's replica-epoch key in
// etcd (contract::ReplicaEpochKey; PLAN decision 5, design.md §"Replica
// epoch"). A replica that has just become active claims it before it acts:
// it reads the key and writes it only if nobody wrote it in between; the
// write's revision is the replica's epoch. Every etcd Txn the replica makes is
// guarded by the key still being at that revision (Guard()). So a replica
// that was paused past its replica Lease and resumed cannot delete or rewrite
// a key that another replica granted: the other replica claimed a newer epoch
// before it acted, and every Txn of the old epoch fails. A failed guard (or a
// newer write of the key, seen by the key watch) marks this replica deposed.
//
// Abandoned sessions. When a replica releases keys without revoking their
// grants first (standing down, shutdown, a lost session), the statuses that
// name those grants and that session must never be confirmed again. Before
// such a release it records the session as abandoned in the key's value (a
// guarded write, which moves its own epoch); a replica that claims the epoch
// later reads that value and never adopts an abandoned session (so no
// heartbeat of it is ever published again). The value is JSON
// {"identity","abandoned"}; an older or foreign value allows adoption.
//
// Threads: Claim/Abandon from the lifecycle or session threads; Guard,
// CheckGuard, Observe and the readers from any thread.
#ifndef MCL_CONTROLLER_REPLICA_EPOCH_H_
#define MCL_CONTROLLER_REPLICA_EPOCH_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/etcd/txn.h"
#include "controller/executor_io.h"

namespace mcl::controller {

class ReplicaEpoch {
 public:
  // `key`: contract::ReplicaEpochKey(prefix, cluster); `identity` is written
  // in the key's value (who holds the epoch). `on_deposed` runs once per
  // epoch, on the thread that found out.
  ReplicaEpoch(KeyWriter* keys, std::string key, std::string identity,
               std::function<void()> on_deposed);

  // Claims a new epoch; returns it. ABORTED when another replica wrote the
  // key between our read and our write (it claimed first).
  absl::StatusOr<int64_t> Claim();
  // Records `session` as abandoned (see the file comment). ABORTED when
  // deposed.
  absl::Status Abandon(int64_t session);
  // No epoch (standing down).
  void Clear();

  int64_t epoch() const;
  const std::string& key() const { return key_; }
  // Holds an epoch that no newer write has replaced, as far as we know.
  bool Held() const;
  bool deposed() const;
  // Whether the session `id` may be adopted: the value read at Claim() does
  // not record it as abandoned.
  bool AdoptAllowed(int64_t id) const;

  // Guards `txn` with the epoch (etcd::Txn::Guard); a txn without an epoch is
  // rejected before it is sent.
  void Guard(etcd::Txn& txn) const;
  // After a guarded txn did not succeed: false (and deposed) when another
  // replica moved the epoch key; true when only another compare failed or the
  // move was our own (Abandon): the caller may reconcile again.
  bool CheckGuard(const etcd::TxnResult& result);
  // The key watch saw a write (or delete) of the epoch key at `revision`.
  void Observe(int64_t revision);

 private:
  std::string Value(int64_t abandoned) const;
  void Depose(const char* why);

  KeyWriter* const keys_;
  const std::string key_;
  const std::string identity_;
  const std::function<void()> on_deposed_;

  mutable absl::Mutex mu_;
  int64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  bool deposed_ ABSL_GUARDED_BY(mu_) = false;
  // A write of ours is in flight: watch events at its revision are ours.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  int64_t seen_while_writing_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t abandoned_ ABSL_GUARDED_BY(mu_) = 0;  // as read at Claim()
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_REPLICA_EPOCH_H_
