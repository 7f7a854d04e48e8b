#include "e2e/campaign/campaign.h"

#include <signal.h>
#include <time.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "e2e/campaign/recorder_log.h"
#include "e2e/history.h"

namespace mcl::campaign {
namespace {

absl::Duration Mono() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return absl::Seconds(ts.tv_sec) + absl::Nanoseconds(ts.tv_nsec);
}

void SleepUntil(absl::Duration mono) {
  const absl::Duration d = mono - Mono();
  if (d > absl::ZeroDuration()) absl::SleepFor(d);
}

std::string Json(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string JsonList(const std::vector<std::string>& v) {
  std::vector<std::string> q;
  for (const auto& s : v) q.push_back(Json(s));
  return absl::StrCat("[", absl::StrJoin(q, ","), "]");
}

// An injected fault: what it hit, and how to undo it.
struct Applied {
  std::string target;
  std::function<absl::Status()> heal;
};

// Resolves the fault's target (the leader's, or a fixed one) and injects it.
absl::StatusOr<Applied> Apply(World& w, const Shape& sh, const Fault& f) {
  std::string app = f.on_leader ? w.Leader() : "";
  const bool fixed = app.empty();
  if (fixed) app = World::Name(f.cluster, 'a', f.index % sh.sidecars);
  const int cluster = World::ClusterOf(app);
  const std::string replica =
      fixed ? World::Name(f.cluster, 'r', f.index % sh.replicas)
            : w.ActiveReplica(cluster);
  using Mode = faultproxy::FaultProxy::Mode;
  auto link_fault = [&](Mode mode) -> absl::StatusOr<Applied> {
    std::string link;
    switch (f.link) {
      case Link::kAppSidecar:
        link = app + ">sc";
        break;
      case Link::kSidecarApiserver:
        link = w.SidecarOf(app) + ">api";
        break;
      case Link::kControllerApiserver:
        link = replica + ">api";
        break;
      case Link::kControllerEtcd:
        link = absl::StrCat(replica, ">etcd", f.member % sh.etcd_members);
        break;
    }
    absl::Status s = w.SetLink(link, {mode, f.latency});
    if (!s.ok()) return s;
    return Applied{link, [&w, link] { return w.SetLink(link, {}); }};
  };
  std::string target;
  switch (f.target) {
    case Target::kApp:
      target = app;
      break;
    case Target::kSidecar:
      target = w.SidecarOf(app);
      break;
    case Target::kController:
      target = replica;
      break;
    case Target::kEtcdMember:
      target = testbed::Testbed::GlobalEtcdMember(f.member % sh.etcd_members);
      break;
    case Target::kApiserver:
      target = absl::StrCat("apiserver-", cluster);
      break;
  }
  auto signal =
      [&](int sig,
          std::function<absl::Status()> heal) -> absl::StatusOr<Applied> {
    absl::Status s = w.Signal(target, sig);
    if (!s.ok()) return s;
    return Applied{target, std::move(heal)};
  };
  switch (f.kind) {
    case Kind::kKill:
      return signal(SIGKILL, [&w, target] { return w.StartAgain(target); });
    case Kind::kStop:
      return signal(SIGTERM, [&w, target] { return w.StartAgain(target); });
    case Kind::kPause:
      return signal(SIGSTOP, [&w, target] { return w.StartAgain(target); });
    case Kind::kReset:
      return link_fault(Mode::kReset);
    case Kind::kHold:
      return link_fault(Mode::kHold);
    case Kind::kLatency:
      return link_fault(Mode::kPass);
    case Kind::kClockStep: {
      absl::Status s = w.StepClock(target, f.clock_step_seconds);
      if (!s.ok()) return s;
      return Applied{target, [&w, target] { return w.StepClock(target, 0); }};
    }
    case Kind::kTwoCandidacies: {
      auto twin = w.StartTwin(app, f.other_cluster);
      if (!twin.ok()) return twin.status();
      const std::string name = *twin;
      return Applied{absl::StrCat(name, " as ", app),
                     [&w, name] { return w.Signal(name, SIGTERM); }};
    }
    case Kind::kSplitBrain:
      target = w.ActiveReplica(cluster);
      return signal(SIGSTOP,
                    [&w, target] { return w.Signal(target, SIGCONT); });
  }
  return absl::InternalError("unknown fault kind");
}

class FaultLog {
 public:
  explicit FaultLog(const std::string& path) : out_(path) {}
  void Write(const std::string& ev, const std::string& fields) {
    absl::MutexLock l(&mu_);
    out_ << "{\"t\":" << absl::ToInt64Nanoseconds(Mono()) << ",\"ev\":\"" << ev
         << "\"" << fields << "}" << std::endl;
  }

 private:
  absl::Mutex mu_;
  std::ofstream out_ ABSL_GUARDED_BY(mu_);
};

// Waits (bounded) until `holds` is true, checking every 100 ms: the recorders'
// logs are files, and the measurements come from their timestamps, not from
// when this loop looked.
bool PollUntil(const std::function<bool()>& holds, absl::Duration timeout) {
  const absl::Duration until = Mono() + timeout;
  while (!holds()) {
    if (Mono() >= until) return false;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return true;
}

void Judge(const RecorderLog& log, absl::Duration heal, absl::Duration end,
           const CampaignOptions& o, RunResult* r) {
  std::vector<e2e::Interval> intervals = e2e::IntervalsFromEvents(log.events);
  r->intervals = static_cast<int>(intervals.size());
  absl::Status s = e2e::CheckIntervals(intervals);
  if (!s.ok()) {
    r->violations[absl::StartsWith(s.message(), "S1") ? "S1" : "S2"] =
        std::string(s.message());
  }
  s = e2e::CheckObservations(intervals, log.observations);
  if (!s.ok()) r->violations["observers"] = std::string(s.message());
  r->leader_after_heal =
      e2e::LeaderAfter(intervals, heal, std::min(end, heal + o.l3_bound));
  if (!r->leader_after_heal.has_value()) {
    r->violations["L3"] = absl::StrCat(
        "no leader within ", absl::FormatDuration(o.l3_bound), " of the heal");
  }
}

// The fault phase: each fault on its own thread, injected at its offset and
// healed after its duration. Returns when every fault has healed.
void InjectFaults(World& w, const Shape& sh, const Plan& plan, FaultLog& flog,
                  RunResult* r) {
  const absl::Duration t0 = Mono();
  flog.Write("phase", ",\"seed\":" + std::to_string(plan.seed));
  std::vector<std::thread> threads;
  absl::Mutex mu;
  for (const Fault& f : plan.faults) {
    threads.emplace_back([&, f] {
      SleepUntil(t0 + f.at);
      auto applied = Apply(w, sh, f);
      std::string desc = f.Describe();
      if (!applied.ok()) {
        flog.Write("fault_error",
                   absl::StrCat(",\"fault\":", Json(desc), ",\"error\":",
                                Json(applied.status().ToString())));
        absl::MutexLock l(&mu);
        r->faults.push_back(desc +
                            " -> not injected: " + applied.status().ToString());
        return;
      }
      flog.Write("fault", absl::StrCat(",\"fault\":", Json(desc),
                                       ",\"target\":", Json(applied->target)));
      SleepUntil(t0 + f.at + f.duration);
      absl::Status healed = applied->heal();
      flog.Write("heal", absl::StrCat(",\"fault\":", Json(desc), ",\"ok\":",
                                      healed.ok() ? "true" : "false"));
      absl::MutexLock l(&mu);
      r->faults.push_back(absl::StrCat(desc, " -> ", applied->target));
    });
  }
  for (auto& t : threads) t.join();
}

RunResult RunOne(testbed::Testbed* tb, const CampaignOptions& o, int k) {
  RunResult r;
  r.run = k;
  r.seed = o.seeds.empty() ? o.seed + static_cast<uint64_t>(k)
                           : o.seeds[static_cast<size_t>(k)];
  r.etcd_members = o.etcd_members;
  Shape sh;
  sh.etcd_members = o.etcd_members;
  const Plan plan = MakePlan(r.seed, sh, o.fault_phase);
  WorldOptions wo;
  wo.shape = sh;
  wo.binaries = o.binaries;
  wo.run_id = absl::StrFormat("%d-%x", k, r.seed);
  wo.dir = absl::StrCat(o.out, "/run-", wo.run_id);
  r.dir = wo.dir;
  std::filesystem::create_directories(wo.dir);
  for (const Fault& f : plan.faults) {
    r.labels.push_back(f.Label());
    if (f.kind == Kind::kClockStep) {
      wo.faketime.insert(f.target == Target::kApp       ? "app"
                         : f.target == Target::kSidecar ? "sidecar"
                                                        : "controller");
    }
  }
  FaultLog flog(wo.dir + "/faults.jsonl");
  auto world = World::Start(tb, wo);
  if (!world.ok()) {
    r.setup_error = world.status().ToString();
    return r;
  }
  World& w = **world;
  if (!PollUntil([&] { return !w.Leader().empty(); }, o.first_leader_timeout)) {
    r.setup_error = absl::StrCat("no leader within ",
                                 absl::FormatDuration(o.first_leader_timeout),
                                 " of the start, before any fault");
    w.StopAll();
    return r;
  }
  InjectFaults(w, sh, plan, flog, &r);
  absl::Status healed = w.HealAll();
  const absl::Duration heal = Mono();
  flog.Write("healed",
             absl::StrCat(",\"ok\":", healed.ok() ? "true" : "false"));
  PollUntil(
      [&] {
        RecorderLog log;
        w.ReadLogs(&log);
        return e2e::LeaderAfter(e2e::IntervalsFromEvents(log.events), heal,
                                Mono())
            .has_value();
      },
      o.l3_bound);
  // A moment more, so a second leader right after the first one is seen too.
  absl::SleepFor(absl::Seconds(1));
  r.exits = w.UnexpectedExits();
  w.StopAll();
  const absl::Duration end = Mono();
  RecorderLog log;
  w.ReadLogs(&log);
  Judge(log, heal, end, o, &r);
  if (!healed.ok()) r.faults.push_back("heal: " + healed.ToString());
  return r;
}

void Prune(const RunResult& r, bool keep) {
  if (keep || !r.ok()) return;
  std::error_code ignored;
  for (const auto& e : std::filesystem::directory_iterator(r.dir, ignored)) {
    if (e.path().filename() != "faults.jsonl") {
      std::filesystem::remove(e.path(), ignored);
    }
  }
}

}  // namespace

std::string RunResult::ToJson() const {
  std::vector<std::string> v;
  for (const auto& [kind, msg] : violations) {
    v.push_back(absl::StrCat(Json(kind), ":", Json(msg)));
  }
  return absl::StrCat(
      "{\"run\":", run, ",\"seed\":", seed, ",\"etcd_members\":", etcd_members,
      ",\"ok\":", ok() ? "true" : "false", ",\"labels\":", JsonList(labels),
      ",\"faults\":", JsonList(faults), ",\"setup_error\":", Json(setup_error),
      ",\"violations\":{", absl::StrJoin(v, ","), "},\"leader_after_heal_ms\":",
      leader_after_heal.has_value()
          ? std::to_string(absl::ToInt64Milliseconds(*leader_after_heal))
          : "null",
      ",\"exits\":", JsonList(exits), ",\"intervals\":", intervals,
      ",\"dir\":", Json(dir), "}");
}

void Summary::Add(const RunResult& r) {
  ++runs;
  if (!r.setup_error.empty()) {
    ++setup_errors;
    failing.push_back(absl::StrCat("seed ", r.seed, " (etcd ", r.etcd_members,
                                   "): setup: ", r.setup_error));
    return;
  }
  for (const auto& l : r.labels) ++faults[l];
  for (const auto& e : r.exits) {
    ++exits[e[0] == 't' || e[2] == 'a' ? "app"
            : e[2] == 's'              ? "sidecar"
                                       : "controller"];
  }
  if (r.leader_after_heal.has_value()) {
    leader_after_heal.push_back(*r.leader_after_heal);
  }
  if (r.violations.empty()) {
    ++passed;
    return;
  }
  ++failed;
  for (const auto& [kind, msg] : r.violations) {
    ++violations[kind];
    failing.push_back(absl::StrCat("seed ", r.seed, " (etcd ", r.etcd_members,
                                   ", faults ", absl::StrJoin(r.faults, "; "),
                                   "): ", kind, ": ", msg, " [logs ", r.dir,
                                   "]"));
  }
}

namespace {

std::string Percentiles(std::vector<absl::Duration> v) {
  if (v.empty()) return "none";
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    return absl::ToInt64Milliseconds(v[std::min(i, v.size() - 1)]);
  };
  return absl::StrCat("p50 ", at(0.5), " ms, p99 ", at(0.99), " ms, max ",
                      absl::ToInt64Milliseconds(v.back()), " ms (n=", v.size(),
                      ")");
}

}  // namespace

std::string Summary::ToJson() const {
  std::vector<std::string> f, v, l;
  for (const auto& [k, n] : faults) f.push_back(absl::StrCat(Json(k), ":", n));
  for (const auto& [k, n] : violations) {
    v.push_back(absl::StrCat(Json(k), ":", n));
  }
  for (absl::Duration d : leader_after_heal) {
    l.push_back(std::to_string(absl::ToInt64Milliseconds(d)));
  }
  return absl::StrCat(
      "{\"runs\":", runs, ",\"passed\":", passed, ",\"failed\":", failed,
      ",\"setup_errors\":", setup_errors, ",\"faults\":{",
      absl::StrJoin(f, ","), "},\"violations\":{", absl::StrJoin(v, ","),
      "},\"leader_after_heal_ms\":[", absl::StrJoin(l, ","),
      "],\"failing\":", JsonList(failing), "}");
}

std::string Summary::ToText() const {
  int injected = 0;
  for (const auto& [k, n] : faults) injected += n;
  std::string s = absl::StrCat(
      runs, " runs: ", passed, " passed, ", failed, " with violations, ",
      setup_errors, " could not start\n", injected, " faults injected:");
  for (const auto& [k, n] : faults) absl::StrAppend(&s, " ", k, "=", n);
  absl::StrAppend(&s, "\nviolations by kind:");
  if (violations.empty()) absl::StrAppend(&s, " none");
  for (const auto& [k, n] : violations) absl::StrAppend(&s, " ", k, "=", n);
  absl::StrAppend(&s, "\nprocesses that exited on their own:");
  if (exits.empty()) absl::StrAppend(&s, " none");
  for (const auto& [k, n] : exits) absl::StrAppend(&s, " ", k, "=", n);
  absl::StrAppend(&s, "\ntime to a leader after the heal: ",
                  Percentiles(leader_after_heal), "\n");
  for (const auto& f : failing) absl::StrAppend(&s, "FAILED ", f, "\n");
  return s;
}

absl::StatusOr<Summary> RunCampaign(const CampaignOptions& o) {
  std::filesystem::create_directories(o.out);
  std::ofstream runs_out(o.out + "/runs.jsonl", std::ios::app);
  testbed::TestbedOptions to;
  to.clusters = Shape().clusters;
  to.etcd_members = o.etcd_members;
  std::unique_ptr<testbed::Testbed> tb;
  Summary summary;
  const int runs = o.seeds.empty() ? o.runs : static_cast<int>(o.seeds.size());
  for (int k = 0; k < runs; ++k) {
    if (tb == nullptr) {
      auto started = testbed::Testbed::Start(to);
      if (!started.ok()) return started.status();
      tb = std::move(*started);
    }
    RunResult r = RunOne(tb.get(), o, k);
    runs_out << r.ToJson() << std::endl;
    summary.Add(r);
    fprintf(stderr, "run %d seed %llu: %s%s\n", k,
            static_cast<unsigned long long>(r.seed),
            r.ok() ? "ok" : "FAILED (logs kept in ",
            r.ok() ? "" : (r.dir + ")").c_str());
    for (const auto& [kind, msg] : r.violations) {
      fprintf(stderr, "  %s: %s\n", kind.c_str(), msg.c_str());
    }
    if (!r.setup_error.empty()) {
      fprintf(stderr, "  setup: %s\n", r.setup_error.c_str());
      tb.reset();  // a fresh test bed for the next run
    }
    Prune(r, o.keep_logs);
  }
  std::ofstream(o.out + "/summary.json") << summary.ToJson() << std::endl;
  return summary;
}

}  // namespace mcl::campaign
