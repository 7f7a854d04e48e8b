// Testbed: the real multi-cluster test bed (testbed/testbed.sh) from C++ tests.
// A global etcd plus N clusters, each a real etcd and a real kube-apiserver on
// 127.0.0.1, with static tokens for an admin, a sidecar and a controller
// identity. Destroying the Testbed stops every process it started.
//
//   auto tb = mcl::testbed::Testbed::Start(2);
//   ASSERT_TRUE(tb.ok()) << tb.status();
//   (*tb)->cluster(0).apiserver  // "https://127.0.0.1:PORT"
//
// A test binary that wants one test bed for all its tests uses SharedTestbed(N)
// (a GoogleTest Environment registers its teardown).
#ifndef MCL_TESTBED_CC_TESTBED_H_
#define MCL_TESTBED_CC_TESTBED_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "testbed/cc/subprocess.h"

namespace mcl::testbed {

struct Cluster {
  int index = 0;
  std::string name;       // "cluster-I"
  std::string apiserver;  // https://127.0.0.1:PORT
  std::string etcd;       // http://127.0.0.1:PORT (the cluster's own store)
  std::string kubeconfig_admin, kubeconfig_sidecar, kubeconfig_controller;
  std::string token_admin, token_sidecar, token_controller;
};

enum class Identity { kAdmin, kSidecar, kController };

struct TestbedOptions {
  int clusters = 2;
  // Members of the global etcd (1 or 3), separate processes on loopback.
  int etcd_members = 1;
};

class Testbed {
 public:
  // Starts `clusters` clusters and a global etcd in a new directory under
  // TEST_TMPDIR (or /tmp). The test bed is stopped when the Testbed is
  // destroyed, and also when this process exits without destroying it (killed,
  // crashed): testbed.sh's guard watches this process.
  static absl::StatusOr<std::unique_ptr<Testbed>> Start(int clusters);
  static absl::StatusOr<std::unique_ptr<Testbed>> Start(
      const TestbedOptions& options);
  ~Testbed();
  Testbed(const Testbed&) = delete;
  Testbed& operator=(const Testbed&) = delete;

  const std::string& dir() const { return dir_; }
  const std::string& global_etcd() const {
    return global_etcd_;
  }  // http://127.0.0.1:P
  // "127.0.0.1:P", the form gRPC channels take.
  std::string global_etcd_address() const;
  // Every member of the global etcd, "127.0.0.1:P"; member J is the component
  // "global-etcd" (J = 0) or "global-etcd-J".
  const std::vector<std::string>& global_etcd_members() const {
    return global_members_;
  }
  static std::string GlobalEtcdMember(int j);
  const std::string& ca_file() const { return ca_file_; }
  int clusters() const { return static_cast<int>(clusters_.size()); }
  const Cluster& cluster(int i) const {
    return clusters_.at(static_cast<size_t>(i));
  }
  std::string kubeconfig(int cluster, Identity who) const;

  // Component names: "global-etcd", "global-etcd-J", "etcd-I", "apiserver-I".
  absl::Status Stop(const std::string& component);  // SIGTERM, wait
  absl::Status Kill(const std::string& component);  // SIGKILL
  absl::Status StartAgain(
      const std::string& component);  // same port and data; waits for ready
  // The PID of a running component (to pause it with SIGSTOP, say).
  absl::StatusOr<pid_t> Pid(const std::string& component) const;

  // Runs kubectl against cluster `i` as `who`; returns its output, or an error
  // with the output when kubectl exits non-zero.
  absl::StatusOr<std::string> Kubectl(int i,
                                      const std::vector<std::string>& args,
                                      const std::string& stdin_data = "",
                                      Identity who = Identity::kAdmin) const;

 private:
  Testbed() = default;
  absl::Status Script(const std::vector<std::string>& args,
                      absl::Duration timeout) const;

  std::string dir_;
  std::string global_etcd_;
  std::vector<std::string> global_members_;
  std::string ca_file_;
  std::string kubectl_;
  std::vector<Cluster> clusters_;
};

// One test bed per test binary, started on first use and stopped at exit
// (through a GoogleTest Environment). Fails the calling test if it cannot
// start.
Testbed& SharedTestbed(int clusters);

// A fresh, unique name for a test's objects ("prefix-<random>"), so tests
// sharing a test bed never see each other's locks.
std::string UniqueName(const std::string& prefix);

}  // namespace mcl::testbed

#endif  // MCL_TESTBED_CC_TESTBED_H_
