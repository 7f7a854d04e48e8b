// The fault campaign (shared/DESIGN.md, "Fault model"): runs of the whole
// system on the real test bed, each with faults drawn from its seed, each
// judged at the apps.
//
// One run: start the run's processes (World), wait for a first leader, inject
// the plan's faults on their own threads, heal everything, wait for a leader
// again (L3), stop, then check every app's history: no two apps acting as
// leader at once (S1, with each LEADER's validity bound), tokens strictly
// increasing and never given to two apps (S2), every observer's sequence
// consistent, and a leader within `l3_bound` of the heal.
//
// Output, in `out`: runs.jsonl (one JSON object per run), summary.json, and
// for each failing run its directory (every process's log, faults.jsonl) —
// passing runs keep only faults.jsonl unless `keep_logs`.
#ifndef MCL_E2E_CAMPAIGN_CAMPAIGN_H_
#define MCL_E2E_CAMPAIGN_CAMPAIGN_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "e2e/campaign/plan.h"
#include "e2e/campaign/world.h"

namespace mcl::campaign {

struct CampaignOptions {
  int runs = 1;
  uint64_t seed = 1;            // run k (from 0) uses seed + k ...
  std::vector<uint64_t> seeds;  // ... or seeds[k] when given (runs = size)
  int etcd_members = 1;
  std::string out;
  absl::Duration fault_phase = absl::Seconds(15);
  // L3: after the heal, a leader within this bound. It covers a controller
  // replica taking over its Lease (election lease, 6 s at TTL 2 s), a new
  // etcd session, an old grant's session expiring (TTL) and its candidate's
  // staleness (leaseDuration), with room for a loaded machine.
  absl::Duration l3_bound = absl::Seconds(30);
  absl::Duration first_leader_timeout = absl::Seconds(60);
  Binaries binaries;
  bool keep_logs = false;
};

struct RunResult {
  int run = 0;
  uint64_t seed = 0;
  int etcd_members = 1;
  std::vector<std::string> labels;  // the faults' kinds
  std::vector<std::string> faults;  // described, with resolved targets
  std::string setup_error;          // the run could not start (not judged)
  std::map<std::string, std::string> violations;  // S1, S2, observers, L3
  std::optional<absl::Duration> leader_after_heal;
  std::vector<std::string> exits;  // processes that exited on their own
  int intervals = 0;
  std::string dir;

  bool ok() const { return setup_error.empty() && violations.empty(); }
  std::string ToJson() const;
};

struct Summary {
  int runs = 0;
  int passed = 0;
  int failed = 0;  // any violation
  int setup_errors = 0;
  std::map<std::string, int> faults;      // by label
  std::map<std::string, int> violations;  // by kind
  std::map<std::string, int> exits;       // by process kind ("controller")
  std::vector<absl::Duration> leader_after_heal;
  std::vector<std::string> failing;  // "seed S (etcd M): kind: message"

  void Add(const RunResult& r);
  std::string ToJson() const;
  std::string ToText() const;
};

// Runs the campaign; stops everything it started before it returns.
absl::StatusOr<Summary> RunCampaign(const CampaignOptions& options);

}  // namespace mcl::campaign

#endif  // MCL_E2E_CAMPAIGN_CAMPAIGN_H_
