// FakeController: a test thread that plays the election controller of one
// cluster exactly as docs/design.md describes it, with the CONTROLLER identity
// on a real kube-apiserver, for the locks a test names. It grants the local
// spec holder, the candidacy (holderIdentity, holderInstance), naming its
// instance in status.leaderInstance (token = a strictly increasing counter),
// re-points a grant to a new local holder (another identity, or another
// instance of the same one) only after the old grantee acked or timed out
// (§Ack), always with a new token, clears
// the grant when the holder resigns, and publishes confirmations in its
// heartbeat Lease every TTL/4: it reads c = the informer's processed
// resourceVersion *before* its "keepalive" and publishes (session, c) after it
// — optionally late, to test that late confirmations do not extend validity.
//
// It lets a test control what a real controller cannot be made to do on demand
// (stop heartbeats, delay them) and record precisely when each confirmation was
// captured.
#ifndef MCL_SIDECAR_TESTING_FAKE_CONTROLLER_H_
#define MCL_SIDECAR_TESTING_FAKE_CONTROLLER_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/contract.h"
#include "common/kube/client.h"
#include "common/kube/informer.h"
#include "common/kube/typed_client.h"

namespace mcl::sidecar::testing {

class FakeController {
 public:
  struct Options {
    std::string kubeconfig;  // CONTROLLER identity
    std::string ns = "default";
    std::string cluster = "cluster-0";
    std::string session = "5e551011";
    absl::Duration ttl = absl::Seconds(2);
  };
  explicit FakeController(Options o);
  ~FakeController();

  void Manage(const std::string& lock);
  // Stop / resume publishing heartbeats (a dead or partitioned controller).
  void SetHeartbeats(bool on);
  // Publish each confirmation this long after capturing c (a slow keepalive or
  // watch).
  void SetHeartbeatDelay(absl::Duration d);
  // Real times at which published confirmations were captured (c read), in
  // order.
  std::vector<absl::Time> CaptureTimes();
  absl::Time LastPublishedCapture();
  int64_t grants();
  std::string heartbeat_name() const {
    return contract::HeartbeatLeaseName(o_.cluster);
  }

 private:
  struct Observed {
    std::string holder, renew;
    absl::Time seen;  // test process clock (monotonic enough for a test)
  };
  void Loop();
  void Heartbeat();
  void Reconcile(const std::string& lock, const std::string& c);

  Options o_;
  std::unique_ptr<kube::KubeClient> client_;
  std::unique_ptr<kube::TypedInformer<kube::MultiClusterLease>> informer_;
  absl::Mutex mu_;
  absl::CondVar cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool heartbeats_ ABSL_GUARDED_BY(mu_) = true;
  absl::Duration delay_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> locks_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> captures_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Observed> observed_;  // loop thread only
  // When the current grantee's last renewal was observed (loop thread only).
  std::map<std::string, absl::Time> last_renewal_;
  int64_t next_token_ = 1000;
  int64_t grants_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time next_heartbeat_ = absl::InfinitePast();  // loop thread only
  std::thread thread_;
};

}  // namespace mcl::sidecar::testing

#endif  // MCL_SIDECAR_TESTING_FAKE_CONTROLLER_H_
