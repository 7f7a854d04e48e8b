// Plan: the faults of one campaign run, drawn from its seed. Pure and
// deterministic (std::mt19937_64 with libstdc++'s distributions), so a run's
// seed replays the same faults at the same offsets; what the system does in
// response is real and may differ between replays.
//
// A fault names a kind, a target and a window [at, at + duration) inside the
// fault phase. Targets are either fixed (cluster/index) or "the leader's"
// (the app that leads when the fault starts, its sidecar, its cluster's active
// controller replica, its cluster's apiserver): faults on the leader's path are
// the ones that can expose two leaders, so most faults aim there.
#ifndef MCL_E2E_CAMPAIGN_PLAN_H_
#define MCL_E2E_CAMPAIGN_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace mcl::campaign {

// The processes and links of one run.
struct Shape {
  int clusters = 3;
  int replicas = 2;      // controller replicas per cluster
  int sidecars = 2;      // candidate pods (app + sidecar) per cluster
  int etcd_members = 1;  // of the global etcd: 1 or 3
  absl::Duration ttl = absl::Seconds(2);  // session TTL = leaseDuration
  // How long a paused active replica must stay paused for a standby to take
  // its replica Lease (the controller's default: 3 x TTL, within [3 s, 15 s]).
  absl::Duration election_lease = absl::Seconds(6);
};

enum class Kind {
  kKill,            // SIGKILL, started again when the fault heals
  kStop,            // SIGTERM (graceful), started again when the fault heals
  kPause,           // SIGSTOP, SIGCONT when the fault heals
  kReset,           // a link resets every connection
  kHold,            // a link holds every byte
  kLatency,         // a link adds latency each way
  kClockStep,       // the wall clock of one process jumps, and back at heal
  kTwoCandidacies,  // a second app campaigns with an existing identity
  kSplitBrain,      // the active controller replica paused past its Lease
};

enum class Target { kApp, kSidecar, kController, kEtcdMember, kApiserver };

enum class Link {
  kAppSidecar,
  kSidecarApiserver,
  kControllerApiserver,
  kControllerEtcd,
};

struct Fault {
  Kind kind = Kind::kKill;
  Target target = Target::kApp;   // process faults, clock steps
  Link link = Link::kAppSidecar;  // link faults
  bool on_leader = true;          // resolve the target from the leader
  int cluster = 0;                // fixed targets (and the leader-less case)
  int index = 0;                  // app/sidecar/replica index in the cluster
  int member = 0;                 // etcd member (kEtcdMember, kControllerEtcd)
  bool other_cluster = false;  // kTwoCandidacies: the twin in another cluster
  absl::Duration at;           // from the start of the fault phase
  absl::Duration duration;
  absl::Duration latency;          // kLatency
  int64_t clock_step_seconds = 0;  // kClockStep: + forward, - back

  // "pause/sidecar", "hold/controller-etcd", "clock/controller", ...: the
  // fault's kind for counting.
  std::string Label() const;
  // The label with its target and window, for logs.
  std::string Describe() const;
};

struct Plan {
  uint64_t seed = 0;
  absl::Duration fault_phase;
  std::vector<Fault> faults;
};

// 1 to 3 faults, each in [0, fault_phase), lasting 0.1 s to 3 x TTL
// (log-uniform; a split brain lasts past the replica Lease instead).
Plan MakePlan(uint64_t seed, const Shape& shape, absl::Duration fault_phase);

}  // namespace mcl::campaign

#endif  // MCL_E2E_CAMPAIGN_PLAN_H_
