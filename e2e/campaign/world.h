// World: the mcl processes of one campaign run on a running test bed, wired
// through a FaultProxy so every link can be broken, and the operations the
// faults need (signal, start again, break a link, step a clock, a second
// candidacy of one identity).
//
// Per cluster I: controller replicas cIr0, cIr1 (one replica Lease), sidecars
// cIs0, cIs1 and one recorder app per sidecar, cIa0, cIa1 (identity = name).
// Links, each a proxy listener on 127.0.0.1: "<app>>sc" (app to its sidecar),
// "<sidecar>>api", "<replica>>api", "<replica>>etcdJ" (to global etcd member
// J). Test-bed components keep their testbed.sh names (apiserver-I,
// global-etcd, global-etcd-J) and are restarted through testbed.sh.
//
// Every process dies with the driver (testbed::Subprocess); the World's
// destructor kills what is left. Threads: the fault threads of campaign.cc
// call in concurrently; each process has its own mutex.
#ifndef MCL_E2E_CAMPAIGN_WORLD_H_
#define MCL_E2E_CAMPAIGN_WORLD_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "e2e/campaign/plan.h"
#include "e2e/campaign/recorder_log.h"
#include "e2e/history.h"
#include "testbed/cc/subprocess.h"
#include "testbed/cc/testbed.h"
#include "testbed/faultproxy/faultproxy.h"

namespace mcl::campaign {

struct Binaries {
  std::string controller;
  std::string sidecar;
  std::string recorder;
  std::string faketime;  // libfaketimeMT.so.1
};

struct WorldOptions {
  Shape shape;
  Binaries binaries;
  std::string dir;     // this run's directory: logs, kubeconfigs, clocks
  std::string run_id;  // lowercase, DNS-safe; names the run's namespaces
  // Process kinds ("app", "sidecar", "controller") started under libfaketime,
  // so a clock fault can step them.
  std::set<std::string> faketime;
};

// Helpers shared by world.cc and world_faults.cc.
namespace world_internal {
int64_t MonoNs();
int PortOf(absl::string_view url);  // the port of "scheme://host:port"
absl::Status WriteFile(const std::string& path, const std::string& text);
bool Accepts(int port);  // something accepts TCP on 127.0.0.1:port
}  // namespace world_internal

class World {
 public:
  static constexpr char kLock[] = "campaign-lock";
  static absl::StatusOr<std::unique_ptr<World>> Start(testbed::Testbed* tb,
                                                      WorldOptions options);
  ~World();  // kills every process; the proxy closes every link

  const std::string& lock_namespace() const { return lock_ns_; }
  std::vector<std::string> apps() const;  // cIaK, in cluster order
  std::string SidecarOf(const std::string& app) const;
  static int ClusterOf(const std::string& name);               // from "cI..."
  static std::string Name(int cluster, char kind, int index);  // "c0s1"

  // The replica that holds cluster's replica Lease (by the apiserver), or
  // replica 0 when that cannot be read.
  std::string ActiveReplica(int cluster);
  // The app acting as leader now by the recorders' logs, or "".
  std::string Leader();

  // A process of the run (app, sidecar, replica) or a test-bed component.
  // SIGKILL/SIGTERM stop it (an app's death is logged for the checker),
  // SIGSTOP/SIGCONT pause and resume it.
  absl::Status Signal(const std::string& target, int sig);
  // Starts a stopped target again (no-op when it runs); waits until it serves.
  absl::Status StartAgain(const std::string& target);
  absl::Status SetLink(const std::string& link,
                       faultproxy::FaultProxy::Fault f);
  // Sets the wall-clock offset of a process started under libfaketime
  // (libfaketime reads it within a second).
  absl::Status StepClock(const std::string& target, int64_t offset_seconds);
  // A new app "twinN" campaigning with `app`'s identity, on the other sidecar
  // of its cluster or on a sidecar of another cluster. Returns its name.
  absl::StatusOr<std::string> StartTwin(const std::string& app,
                                        bool other_cluster);

  // Everything running, resumed, passing and on real time again.
  absl::Status HealAll();
  // Kills the apps (their deaths logged), then everything else.
  void StopAll();
  // Every app's recorder log, parsed.
  void ReadLogs(RecorderLog* out) const;
  // Processes that exited although no fault stopped them ("c0r1 exit 1"):
  // not a violation (a kubelet would restart them), but worth knowing.
  std::vector<std::string> UnexpectedExits();
  std::vector<std::string> links() const;

 private:
  struct Proc {
    std::string name;
    std::string kind;  // app, sidecar, controller
    std::vector<std::string> argv;
    std::map<std::string, std::string> env;
    std::string log;
    std::string clock_file;  // under libfaketime when set
    std::string listen;      // sidecars: host:port to wait for
    absl::Mutex mu;
    std::unique_ptr<testbed::Subprocess> p ABSL_GUARDED_BY(mu);
    bool paused ABSL_GUARDED_BY(mu) = false;
    bool stopped_by_fault ABSL_GUARDED_BY(mu) = false;
  };
  // Notes an exit no fault asked for (once per incarnation).
  void NoteExitLocked(Proc* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu);

  World(testbed::Testbed* tb, WorldOptions o) : tb_(tb), o_(std::move(o)) {}
  absl::Status Build();
  absl::StatusOr<int> AddLink(const std::string& name, int upstream);
  absl::Status AddController(int cluster, int replica);
  absl::Status AddCandidate(int cluster, int index);  // sidecar + its app
  absl::Status CreateNamespaces();
  absl::StatusOr<std::string> Kubeconfig(int cluster, testbed::Identity who,
                                         int port, const std::string& name);
  Proc* AddProc(const std::string& name, const std::string& kind,
                std::vector<std::string> argv);
  absl::Status StartLocked(Proc* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu);
  absl::Status StopLocked(Proc* p, int sig)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu);
  Proc* Find(const std::string& name) const;
  absl::Status WaitForControllers();
  bool IsTestbedComponent(const std::string& target) const;
  void ResumeComponents();  // SIGCONT every test-bed component we paused

  testbed::Testbed* tb_;
  const WorldOptions o_;
  std::string lock_ns_, controller_ns_;
  std::unique_ptr<faultproxy::FaultProxy> proxy_;
  std::vector<std::string> links_;
  std::map<std::string, std::unique_ptr<Proc>> procs_;  // fixed after Build
  absl::Mutex exits_mu_;
  std::vector<std::string> exits_ ABSL_GUARDED_BY(exits_mu_);
  absl::Mutex twins_mu_;
  std::map<std::string, std::unique_ptr<Proc>> twins_
      ABSL_GUARDED_BY(twins_mu_);
  int next_twin_ ABSL_GUARDED_BY(twins_mu_) = 0;
  absl::Mutex paused_mu_;
  std::set<std::string> paused_components_ ABSL_GUARDED_BY(paused_mu_);
};

}  // namespace mcl::campaign

#endif  // MCL_E2E_CAMPAIGN_WORLD_H_
