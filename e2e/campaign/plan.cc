#include "e2e/campaign/plan.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"

namespace mcl::campaign {
namespace {

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kKill:
      return "kill";
    case Kind::kStop:
      return "stop";
    case Kind::kPause:
      return "pause";
    case Kind::kReset:
      return "reset";
    case Kind::kHold:
      return "hold";
    case Kind::kLatency:
      return "latency";
    case Kind::kClockStep:
      return "clock";
    case Kind::kTwoCandidacies:
      return "two-candidacies";
    case Kind::kSplitBrain:
      return "split-brain";
  }
  return "?";
}

const char* TargetName(Target t) {
  switch (t) {
    case Target::kApp:
      return "app";
    case Target::kSidecar:
      return "sidecar";
    case Target::kController:
      return "controller";
    case Target::kEtcdMember:
      return "etcd-member";
    case Target::kApiserver:
      return "apiserver";
  }
  return "?";
}

const char* LinkName(Link l) {
  switch (l) {
    case Link::kAppSidecar:
      return "app-sidecar";
    case Link::kSidecarApiserver:
      return "sidecar-apiserver";
    case Link::kControllerApiserver:
      return "controller-apiserver";
    case Link::kControllerEtcd:
      return "controller-etcd";
  }
  return "?";
}

bool IsLinkFault(Kind k) {
  return k == Kind::kReset || k == Kind::kHold || k == Kind::kLatency;
}

// One template per (kind, target or link): a fault picks one uniformly.
struct Template {
  Kind kind;
  Target target = Target::kApp;
  Link link = Link::kAppSidecar;
  bool other_cluster = false;
};

std::vector<Template> Templates() {
  std::vector<Template> t;
  for (Kind k : {Kind::kKill, Kind::kStop, Kind::kPause}) {
    for (Target g : {Target::kApp, Target::kSidecar, Target::kController,
                     Target::kEtcdMember, Target::kApiserver}) {
      t.push_back({k, g});
    }
  }
  for (Kind k : {Kind::kReset, Kind::kHold, Kind::kLatency}) {
    for (Link l : {Link::kAppSidecar, Link::kSidecarApiserver,
                   Link::kControllerApiserver, Link::kControllerEtcd}) {
      t.push_back({k, Target::kApp, l});
    }
  }
  for (Target g : {Target::kApp, Target::kSidecar, Target::kController}) {
    t.push_back({Kind::kClockStep, g});
  }
  t.push_back({Kind::kTwoCandidacies, Target::kApp, Link::kAppSidecar, false});
  t.push_back({Kind::kTwoCandidacies, Target::kApp, Link::kAppSidecar, true});
  t.push_back({Kind::kSplitBrain, Target::kController});
  t.push_back({Kind::kSplitBrain, Target::kController});
  return t;
}

absl::Duration LogUniform(std::mt19937_64& rng, absl::Duration lo,
                          absl::Duration hi) {
  std::uniform_real_distribution<double> u(std::log(absl::ToDoubleSeconds(lo)),
                                           std::log(absl::ToDoubleSeconds(hi)));
  return absl::Milliseconds(std::llround(std::exp(u(rng)) * 1000));
}

}  // namespace

std::string Fault::Label() const {
  if (IsLinkFault(kind))
    return absl::StrCat(KindName(kind), "/", LinkName(link));
  if (kind == Kind::kTwoCandidacies) {
    return absl::StrCat(KindName(kind),
                        other_cluster ? "/two-clusters" : "/one-cluster");
  }
  if (kind == Kind::kSplitBrain) return KindName(kind);
  return absl::StrCat(KindName(kind), "/", TargetName(target));
}

std::string Fault::Describe() const {
  std::string where =
      on_leader ? "leader's" : absl::StrCat("cluster ", cluster, " #", index);
  if ((IsLinkFault(kind) && link == Link::kControllerEtcd) ||
      (!IsLinkFault(kind) && target == Target::kEtcdMember)) {
    absl::StrAppend(&where, " etcd member ", member);
  }
  std::string extra;
  if (kind == Kind::kLatency) {
    extra = absl::StrCat(" +", absl::FormatDuration(latency));
  }
  if (kind == Kind::kClockStep) {
    extra = absl::StrCat(" ", clock_step_seconds > 0 ? "+" : "",
                         clock_step_seconds, "s");
  }
  return absl::StrCat(Label(), extra, " (", where, ") at ",
                      absl::FormatDuration(at), " for ",
                      absl::FormatDuration(duration));
}

Plan MakePlan(uint64_t seed, const Shape& shape, absl::Duration fault_phase) {
  std::mt19937_64 rng(seed);
  Plan plan;
  plan.seed = seed;
  plan.fault_phase = fault_phase;
  const std::vector<Template> templates = Templates();
  std::discrete_distribution<int> count({40, 35, 25});  // 1, 2, 3 faults
  const int n = count(rng) + 1;
  std::uniform_int_distribution<size_t> pick(0, templates.size() - 1);
  std::bernoulli_distribution on_leader(0.75);
  std::bernoulli_distribution coin(0.5);
  std::uniform_int_distribution<int> cluster(0, shape.clusters - 1);
  std::uniform_int_distribution<int> member(0, shape.etcd_members - 1);
  for (int k = 0; k < n; ++k) {
    const Template& t = templates[pick(rng)];
    Fault f;
    f.kind = t.kind;
    f.target = t.target;
    f.link = t.link;
    f.other_cluster = t.other_cluster;
    f.on_leader = on_leader(rng);
    f.cluster = cluster(rng);
    const int per_cluster = (f.target == Target::kController ||
                             f.link == Link::kControllerApiserver ||
                             f.link == Link::kControllerEtcd)
                                ? shape.replicas
                                : shape.sidecars;
    f.index = std::uniform_int_distribution<int>(0, per_cluster - 1)(rng);
    f.member = member(rng);
    f.duration = LogUniform(rng, absl::Milliseconds(100), 3 * shape.ttl);
    if (f.kind == Kind::kSplitBrain) {
      f.on_leader = true;  // the leader's cluster's active replica
      f.duration = shape.election_lease +
                   LogUniform(rng, absl::Seconds(1), absl::Seconds(3));
    }
    if (f.kind == Kind::kLatency) {
      f.latency =
          LogUniform(rng, absl::Milliseconds(50), absl::Milliseconds(1500));
    }
    if (f.kind == Kind::kClockStep) {
      const int64_t size = std::uniform_int_distribution<int64_t>(1, 7200)(rng);
      f.clock_step_seconds = coin(rng) ? size : -size;
    }
    const absl::Duration latest =
        std::max(absl::ZeroDuration(), fault_phase - f.duration);
    f.at = absl::Milliseconds(std::uniform_int_distribution<int64_t>(
        0, absl::ToInt64Milliseconds(latest))(rng));
    plan.faults.push_back(f);
  }
  std::sort(plan.faults.begin(), plan.faults.end(),
            [](const Fault& a, const Fault& b) { return a.at < b.at; });
  return plan;
}

}  // namespace mcl::campaign
