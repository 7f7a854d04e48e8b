// Subscriptions: the watches the sidecar keeps open, apart from the campaign
// bookkeeping they feed (lock_table.h). One MultiClusterLease watch per
// namespace that a Campaign, Observe or Leader call named (shared by all locks
// of the namespace), and one watch per heartbeat Lease that a lock's status
// names (one per controller in the cluster; kept until exit), with the latest
// confirmation each carried.
//
// Threads: the callbacks run on each watch's informer thread; they update this
// class under its own mutex, release it, and then call into the LockTable.
// The LockTable calls Heartbeat() with its mutex held, so this class's mutex
// comes after the table's and is never held across a call into the table.
#ifndef MCL_SIDECAR_SUBSCRIPTIONS_H_
#define MCL_SIDECAR_SUBSCRIPTIONS_H_

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "sidecar/lease_view.h"
#include "sidecar/lock_table.h"
#include "sidecar/watches.h"

namespace mcl::sidecar {

class Subscriptions {
 public:
  // Neither is owned; both must outlive this object.
  Subscriptions(WatchFactory* factory, LockTable* table);
  ~Subscriptions();  // Stop()
  Subscriptions(const Subscriptions&) = delete;
  Subscriptions& operator=(const Subscriptions&) = delete;

  // The watch of namespace `ns`, started on first use. Valid until Stop();
  // nullptr after it.
  LeaseWatch* Leases(const std::string& ns);
  // The namespace's watch reported an error and has delivered no event since.
  // (The informer's LastError() stays set while a resumed watch is healthy,
  // until that watch ends; events prove it works.)
  bool Failing(const std::string& ns);
  // OK while no namespace's watch is failing; else the error of one that is.
  absl::Status Status();

  // Subscribes to heartbeat Lease `heartbeat` ("ns/name", or a bare name in
  // `default_ns`) and returns its latest confirmation, if one arrived.
  std::optional<Confirmation> Heartbeat(const std::string& heartbeat,
                                        const std::string& default_ns);

  // Stops every watch and waits for their threads. Call without holding the
  // table's mutex (the callbacks take it).
  void Stop();

 private:
  struct Namespace {
    std::unique_ptr<LeaseWatch> watch;
    // OK, or the error the watch reported last and has delivered no event
    // since.
    absl::Status failing;
  };
  struct HeartbeatSub {
    std::unique_ptr<HeartbeatWatch> watch;
    std::optional<Confirmation> latest;
    // The last refusal logged, so a bad heartbeat rewritten every few seconds
    // logs once per distinct problem.
    std::string refused;
  };
  void SetFailing(const std::string& ns, const absl::Status& failing);
  void OnHeartbeat(const std::string& heartbeat, const kube::Lease& lease);

  WatchFactory* const factory_;
  LockTable* const table_;
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Namespace> namespaces_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, HeartbeatSub> heartbeats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_SUBSCRIPTIONS_H_
