// Fleet: the whole mcl system on one machine, as real processes — the test bed
// (a global etcd and N clusters of real kube-apiservers), an election
// controller per cluster, and sidecars — plus "apps": Campaign streams held by
// this process, whose leadership reports go into a History.
//
// Used by the end-to-end suite, the failover benchmark and the demo, so all
// three exercise the same thing in the same way.
#ifndef MCL_E2E_FLEET_H_
#define MCL_E2E_FLEET_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kube/client.h"
#include "e2e/history.h"
#include "grpcpp/grpcpp.h"
#include "mcl/v1/election.grpc.pb.h"
#include "testbed/cc/subprocess.h"
#include "testbed/cc/testbed.h"

namespace mcl::e2e {

struct FleetOptions {
  int clusters = 2;
  absl::Duration session_ttl =
      absl::Seconds(2);            // controllers' etcd session TTL
  int lease_duration_seconds = 2;  // candidates' leaseDurationSeconds
  std::string lock_namespace = "default";
  std::string controller_namespace = "mcl-system";
  // Paths of the binaries; default: the Bazel runfiles.
  std::string controller_binary;
  std::string sidecar_binary;
};

// A sidecar process and its gRPC channel. RestartSidecar replaces the process
// and the stub; readers on other threads take the stub through Stub().
struct Sidecar {
  int cluster = 0;
  std::string name;     // unique in the fleet, e.g. "c0-s1"
  std::string address;  // 127.0.0.1:PORT
  std::unique_ptr<testbed::Subprocess> process;
  std::shared_ptr<grpc::Channel> channel;
  std::shared_ptr<mcl::v1::Election::Stub> stub;

  std::shared_ptr<mcl::v1::Election::Stub> Stub() const {
    absl::MutexLock l(&mu);
    return stub;
  }
  bool alive() const {
    absl::MutexLock l(&mu);
    return alive_;
  }
  mutable absl::Mutex mu;
  bool alive_ = false;
};

// An app: one Campaign stream, read by a thread; every LEADER / LOST goes into
// the History.
class App {
 public:
  App(std::string identity, Sidecar* sidecar, History* history);
  ~App();
  // Starts the Campaign for `lock` (leadership bound to this stream).
  void Campaign(const std::string& lock, int lease_duration_seconds);
  // Cancels the stream (= resign through stream end).
  void Cancel();
  // The app "dies" (its sidecar was killed): its leadership ends now in the
  // history.
  void Die();
  // Waits until the stream has reported `state` (LEADER, FOLLOWER, ...) at
  // least once since `since_event` (an event count), or the timeout passes.
  bool WaitFor(mcl::v1::State state, absl::Duration timeout,
               int since_event = 0);
  int events() const;
  bool leading() const;
  int64_t token() const;
  bool finished() const;
  grpc::Status final_status() const;
  const std::string& identity() const { return identity_; }
  Sidecar* sidecar() const { return sidecar_; }

 private:
  int64_t token_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string identity_;
  Sidecar* sidecar_;
  History* history_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::thread reader_;
  mutable absl::Mutex mu_;
  std::vector<mcl::v1::LeadershipEvent> log_ ABSL_GUARDED_BY(mu_);
  bool leading_ ABSL_GUARDED_BY(mu_) = false;
  bool dead_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_ ABSL_GUARDED_BY(mu_);
};

// An observer: one Observe stream; every view goes into the History under its
// name.
class Observer {
 public:
  Observer(std::string name, Sidecar* sidecar, History* history,
           const std::string& lock);
  ~Observer();
  // Waits until the latest view names `identity` ("" = no leader) with a token
  // > `min_token`.
  bool WaitForLeader(const std::string& identity, int64_t min_token,
                     absl::Duration timeout);
  // Waits until the latest view names any leader other than `not_identity`;
  // returns it.
  std::optional<Observation> WaitForOtherLeader(const std::string& not_identity,
                                                absl::Duration timeout);
  Observation latest() const;
  Sidecar* sidecar() const { return sidecar_; }

 private:
  std::string name_;
  Sidecar* sidecar_;
  History* history_;
  std::thread reader_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  Observation latest_ ABSL_GUARDED_BY(mu_);
};

class Fleet {
 public:
  // Starts the test bed and one controller per cluster. Sidecars are added with
  // AddSidecar.
  static absl::StatusOr<std::unique_ptr<Fleet>> Start(FleetOptions options);
  ~Fleet();

  testbed::Testbed& testbed() { return *testbed_; }
  const FleetOptions& options() const { return options_; }
  History& history() { return history_; }

  absl::Status StartController(int cluster);
  // Signals cluster's controller (SIGTERM waits for its exit; SIGKILL does not
  // wait).
  absl::Status StopController(int cluster, int sig);
  testbed::Subprocess* controller(int cluster) {
    return controllers_.at(static_cast<size_t>(cluster)).get();
  }

  absl::StatusOr<Sidecar*> AddSidecar(int cluster);
  // SIGKILL or SIGTERM the sidecar process; apps on it are marked dead at the
  // moment of the signal.
  absl::Status SignalSidecar(Sidecar* sidecar, int sig);
  absl::Status RestartSidecar(Sidecar* sidecar);

  // Apps and observers owned by the fleet (destroyed before the processes).
  App* AddApp(const std::string& identity, Sidecar* sidecar);
  Observer* AddObserver(const std::string& name, Sidecar* sidecar,
                        const std::string& lock);
  std::vector<App*> apps();
  // The app currently leading according to the history, or nullptr.
  App* Leader();
  // Waits (on the history's changes) until an app other than `not_identity`
  // leads; returns it, or nullptr after `timeout`.
  App* WaitForLeader(const std::string& not_identity, absl::Duration timeout);
  // Time from `start` (monotonic) until an app other than `old` was told
  // LEADER; nullopt if none was within `timeout`. Measured from the history, so
  // polling late does not inflate it.
  std::optional<absl::Duration> NewLeaderAfter(const std::string& old,
                                               absl::Duration start,
                                               absl::Duration timeout);

  // Waits until cluster `cluster`'s MultiClusterLease `lock` names `identity`
  // as its local candidate (spec.holderIdentity): a Campaign reports its first
  // event before its sidecar has registered it there. False on timeout.
  bool WaitLocalCandidate(int cluster, const std::string& lock,
                          const std::string& identity, absl::Duration timeout);

  // Kills a whole cluster: its controller and every sidecar in it (SIGKILL).
  absl::Status KillCluster(int cluster);
  // Brings it back: controller, then the same sidecars (apps must Campaign
  // again).
  absl::Status ReviveCluster(int cluster);

  std::string LogDir() const;

 private:
  explicit Fleet(FleetOptions options) : options_(std::move(options)) {}
  // The app named `identity`, or nullptr.
  App* AppWithIdentity(const std::string& identity);

  FleetOptions options_;
  std::unique_ptr<testbed::Testbed> testbed_;
  std::vector<std::unique_ptr<testbed::Subprocess>> controllers_;
  std::vector<std::unique_ptr<Sidecar>> sidecars_;
  std::vector<std::unique_ptr<App>> apps_;
  std::vector<std::unique_ptr<Observer>> observers_;
  std::vector<std::unique_ptr<kube::KubeClient>> admins_;  // per cluster
  History history_;
  int restarts_ = 0;
};

// Monotonic now, as History records it.
absl::Duration MonoNow();

}  // namespace mcl::e2e

#endif  // MCL_E2E_FLEET_H_
