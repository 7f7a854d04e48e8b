// Helpers for the controller's integration tests: controllers as real processes
// on the real test bed, candidates simulated by a thread that renews spec with
// the SIDECAR identity (every leaseDuration/4, like the sidecar), and readers
// for CRs and the etcd key.
#ifndef MCL_CONTROLLER_CONTROLLER_TEST_UTIL_H_
#define MCL_CONTROLLER_CONTROLLER_TEST_UTIL_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/contract.h"
#include "common/etcd/client.h"
#include "common/etcd/kv.h"
#include "common/kube/client.h"
#include "common/kube/objects.h"
#include "common/stop_flag.h"
#include "controller/lock_status.h"
#include "gtest/gtest.h"
#include "testbed/cc/subprocess.h"
#include "testbed/cc/testbed.h"

namespace mcl::controller::testing {

constexpr absl::Duration kTtl = absl::Seconds(2);
constexpr int kLeaseSeconds = 2;
// TTL·(1+rho)+m: the ack timeout of design.md §Ack.
inline absl::Duration AckTimeout() {
  return contract::LapseAfterObservedRenewal(kTtl);
}

// One test's world: its own namespace in every cluster (locks, heartbeat and
// election Leases) and its own etcd key prefix, so tests sharing the test bed
// never see each other.
class Env {
 public:
  explicit Env(testbed::Testbed& tb);
  ~Env();

  testbed::Testbed& tb;
  std::string ns;
  std::string prefix;

  kube::KubeClient* admin(int c) {
    return admin_[static_cast<size_t>(c)].get();
  }
  kube::KubeClient* sidecar(int c) {
    return sidecar_[static_cast<size_t>(c)].get();
  }
  etcd::KV& kv() { return *kv_; }
  etcd::Client* etcd() { return etcd_.get(); }

  // Starts a controller for cluster c; waits until it serves (informer synced).
  // `extra` flags last.
  absl::StatusOr<std::unique_ptr<testbed::Subprocess>> StartController(
      int c, const std::string& identity,
      const std::vector<std::string>& extra = {}, bool wait_ready = true);

  absl::Status CreateLock(int c, const std::string& name,
                          const std::string& spec_json = "{}");
  absl::StatusOr<kube::MultiClusterLease> Read(int c, const std::string& name);
  // The etcd key of a lock (nullopt: absent).
  absl::StatusOr<std::optional<etcd::KeyValue>> Key(const std::string& name);
  std::string EtcdKey(const std::string& name) const {
    return prefix + "/" + ns + "/" + name;
  }

 private:
  std::vector<std::unique_ptr<kube::KubeClient>> admin_, sidecar_;
  std::unique_ptr<etcd::Client> etcd_;
  std::unique_ptr<etcd::KV> kv_;
};

// A simulated candidate: renews spec (holderIdentity, leaseDurationSeconds,
// renewTime) every leaseDuration/4 as the sidecar identity, until Stop (goes
// stale) or Resign (removes itself).
class Candidate {
 public:
  Candidate(kube::KubeClient* client, std::string ns, std::string name,
            std::string holder, int lease_seconds = kLeaseSeconds);
  ~Candidate();
  void Start();
  // Stops renewing; returns the monotonic... wall time the last renewal was
  // answered.
  absl::Time Stop();
  absl::Status Resign();
  int renewals() const { return renewals_.load(); }
  const std::string& holder() const { return holder_; }
  // Each answered spec write: its resourceVersion and the monotonic time
  // taken just before it was sent (T_w of design.md §Confirmation).
  std::vector<std::pair<int64_t, absl::Duration>> writes();

 private:
  absl::Status RenewOnce();
  kube::KubeClient* client_;
  std::string ns_, name_, holder_;
  int lease_seconds_;
  std::unique_ptr<StopFlag> stop_;  // one per Start()
  std::atomic<int> renewals_{0};
  absl::Mutex mu_;
  absl::Time last_renewal_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<int64_t, absl::Duration>> writes_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// The fixture of the integration tests: a fresh Env on the shared two-cluster
// test bed, and the controllers and candidates a test starts, stopped in
// TearDown (candidates first; a controller a test paused is continued first).
class ControllerFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A controller for cluster c (owned by the fixture); null, with a failure
  // recorded, when it does not start.
  testbed::Subprocess* Start(int c, const std::string& id,
                             const std::vector<std::string>& extra = {},
                             bool wait_ready = true);
  // A candidate `holder` renewing lock `name` in cluster c.
  Candidate* Campaign(int c, const std::string& name, const std::string& holder,
                      int lease_seconds = kLeaseSeconds);
  // Waits until cluster c's status says its candidate `holder` holds the lock;
  // returns the view (nullopt after `timeout`).
  std::optional<kube::MultiClusterLease> WaitHeld(int c,
                                                  const std::string& name,
                                                  const std::string& holder,
                                                  absl::Duration timeout);

  std::unique_ptr<Env> env_;
  std::vector<std::unique_ptr<testbed::Subprocess>> procs_;
  std::vector<std::unique_ptr<Candidate>> candidates_;
};

bool CondIs(const kube::MultiClusterLease& v, const std::string& type,
            const std::string& status, const std::string& reason = "");
// status says a local candidate holds the global lock.
bool Holds(const kube::MultiClusterLease& v);

}  // namespace mcl::controller::testing

#endif  // MCL_CONTROLLER_CONTROLLER_TEST_UTIL_H_
