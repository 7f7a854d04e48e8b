// FakeKube: an in-memory stand-in for the kube-apiserver as the sidecar's core
// sees it (sidecar/lease_store.h, sidecar/watches.h), for unit tests of
// Election on a FakeClock. It keeps MultiClusterLeases with resourceVersions
// from one counter, answers spec writes with the apiserver's errors
// (conflict, already exists, not found, a missing namespace), and delivers
// watch events on its own thread in resourceVersion order, like an informer.
// The test plays the controller: it writes status and publishes heartbeat
// confirmations.
//
// Faults: writes can be held (they block until released, as over a link that
// holds bytes) or failed; watch delivery can be paused (a slow watch).
//
// Waits in this file are bounded real-time waits: they are test scaffolding,
// never a deadline of the code under test.
#ifndef MCL_SIDECAR_TESTING_FAKE_KUBE_H_
#define MCL_SIDECAR_TESTING_FAKE_KUBE_H_

#include <deque>
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
#include "common/kube/objects.h"
#include "sidecar/lease_store.h"
#include "sidecar/watches.h"

namespace mcl::sidecar::testing {

class FakeKube {
 public:
  FakeKube();  // namespace "default" exists
  ~FakeKube();
  FakeKube(const FakeKube&) = delete;
  FakeKube& operator=(const FakeKube&) = delete;

  // For the code under test (they may outlive nothing: destroy them first).
  std::unique_ptr<LeaseStore> Store();
  std::unique_ptr<WatchFactory> Watches();

  void AddNamespace(const std::string& ns);

  // ---- The test's side (the controller and the apiserver's state).
  std::optional<kube::MultiClusterLease> Get(const std::string& ns,
                                             const std::string& name);
  // Rewrites the status of an existing lock, as the controller does through
  // /status; returns the new version.
  absl::StatusOr<kube::MultiClusterLease> UpdateStatus(
      const std::string& ns, const std::string& name,
      const std::function<void(kube::MultiClusterLeaseStatus&)>& edit);
  absl::Status Delete(const std::string& ns, const std::string& name);
  // Writes heartbeat Lease ns/name with the confirmation annotations
  // (common/contract.h) and delivers it to its watches.
  void PublishHeartbeat(const std::string& ns, const std::string& name,
                        const std::string& session, int64_t confirmed_rv,
                        absl::Duration ttl);
  // The latest resourceVersion handed out.
  int64_t rv();
  // Spec writes accepted so far (creates and updates).
  int writes();
  // Waits (real time) until `pred` holds over the stored lock ns/name (nullopt
  // when absent); re-checked after every change.
  bool WaitFor(
      const std::string& ns, const std::string& name,
      const std::function<bool(const std::optional<kube::MultiClusterLease>&)>&
          pred,
      absl::Duration timeout = absl::Seconds(10));

  // ---- Faults.
  // While on, the store's Create/Update (and Get, with `reads`) block, after
  // counting as held, until it is off.
  void HoldWrites(bool on, bool reads = false);
  // Waits (real time) until `n` requests in total have blocked on the hold.
  bool WaitForHeldWrites(int n, absl::Duration timeout = absl::Seconds(10));
  // The next `n` Creates/Updates fail with `s` at once and change nothing.
  void FailWrites(const absl::Status& s, int n);
  // While paused, watch events queue up; resuming delivers them in order.
  void PauseWatches(bool paused);
  // Reports `s` to the watches of `ns` (on the delivery thread).
  void FailWatch(const std::string& ns, const absl::Status& s);
  // Waits (real time) until every queued watch event has been delivered.
  bool DrainWatches(absl::Duration timeout = absl::Seconds(10));

 private:
  class Store_;
  class LeaseWatch_;
  class HeartbeatWatch_;
  class Factory_;
  struct Event {
    enum Kind { kUpsert, kDelete, kError, kHeartbeat } kind;
    std::string ns;
    kube::MultiClusterLease obj;
    kube::Lease lease;
    absl::Status error;
    // Delivered to this watch only (its initial list); null: to all.
    const void* only = nullptr;
  };

  absl::StatusOr<kube::MultiClusterLease> Create(
      const kube::MultiClusterLease& obj);
  absl::StatusOr<kube::MultiClusterLease> Update(
      const kube::MultiClusterLease& obj);
  absl::StatusOr<kube::MultiClusterLease> StoreGet(const std::string& ns,
                                                   const std::string& name);
  void MaybeHold(bool read) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status TakeWriteFault() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Enqueue(Event e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeliveryLoop();
  void Register(LeaseWatch_* w);
  void Unregister(LeaseWatch_* w);
  void Register(HeartbeatWatch_* w);
  void Unregister(HeartbeatWatch_* w);

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t rv_ ABSL_GUARDED_BY(mu_) = 100;
  int writes_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> namespaces_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, kube::MultiClusterLease> objects_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, kube::Lease> heartbeats_ ABSL_GUARDED_BY(mu_);
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_reads_ ABSL_GUARDED_BY(mu_) = false;
  int held_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fault_ ABSL_GUARDED_BY(mu_);
  int fault_count_ ABSL_GUARDED_BY(mu_) = 0;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Event> queue_ ABSL_GUARDED_BY(mu_);
  std::set<LeaseWatch_*> lease_watches_ ABSL_GUARDED_BY(mu_);
  std::set<HeartbeatWatch_*> heartbeat_watches_ ABSL_GUARDED_BY(mu_);
  std::thread delivery_;
};

}  // namespace mcl::sidecar::testing

#endif  // MCL_SIDECAR_TESTING_FAKE_KUBE_H_
