// The mcl demo: a global etcd, N simulated clusters (real kube-apiservers), an
// election controller in each, and in each cluster R replicas of the example
// app, each with its own sidecar — all real processes on 127.0.0.1. It prints a
// live timeline of who leads, then on its own: resigns the leader, SIGKILLs the
// next leader's app, kills the leader's whole cluster, brings it back, and
// prints each failover time. Ctrl-C stops everything it started.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "e2e/fleet.h"

namespace mcl::demo {
namespace {

using e2e::Fleet;
using e2e::Observation;
using e2e::Sidecar;

std::atomic<bool> interrupted{false};
constexpr char kLock[] = "demo-lock";

struct Args {
  int clusters = 3, replicas = 2, ttl = 2;
  std::string controller, sidecar, app;
  bool stay = false;
};

struct Replica {
  int cluster;
  std::string identity;
  Sidecar* sidecar;
  std::unique_ptr<testbed::Subprocess> app;
};

class Demo {
 public:
  Demo(Args args, Fleet* fleet) : args_(std::move(args)), fleet_(fleet) {}

  absl::Status StartApp(Replica& r) {
    auto p = testbed::Subprocess::Start(
        {args_.app},
        absl::StrCat(fleet_->LogDir(), "/app-", r.identity, ".log"),
        {{"MCL_SIDECAR_ADDR", r.sidecar->address},
         {"MCL_LOCK", kLock},
         {"MCL_IDENTITY", r.identity}});
    if (!p.ok()) return p.status();
    r.app = std::make_unique<testbed::Subprocess>(std::move(*p));
    return absl::OkStatus();
  }

  absl::Status Setup() {
    for (int c = 0; c < args_.clusters; ++c) {
      for (int k = 0; k < args_.replicas; ++k) {
        auto sc = fleet_->AddSidecar(c);
        if (!sc.ok()) return sc.status();
        replicas_.push_back(
            {c, absl::StrCat("app-c", c, "-r", k), *sc, nullptr});
      }
      observers_[c] = fleet_->AddObserver(absl::StrCat("cluster-", c),
                                          replicas_.back().sidecar, kLock);
    }
    for (Replica& r : replicas_) {
      absl::Status s = StartApp(r);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // The leader as the live clusters see it (first live observer with a view).
  Observation Current() {
    for (auto& [c, o] : observers_) {
      if (dead_cluster_ == c) continue;
      Observation v = o->latest();
      if (!v.identity.empty()) return v;
    }
    return {};
  }

  Replica* ReplicaOf(const std::string& identity) {
    for (Replica& r : replicas_) {
      if (r.identity == identity) return &r;
    }
    return nullptr;
  }

  void PrintIfChanged() {
    Observation now = Current();
    if (now.identity == shown_.identity && now.token == shown_.token) return;
    shown_ = now;
    since_ = absl::Now();
    if (now.identity.empty()) {
      Line("no leader");
    } else {
      Replica* r = ReplicaOf(now.identity);
      Line(absl::StrFormat(
          "LEADER %-12s cluster-%d  token %-6d since %s", now.identity,
          r ? r->cluster : -1, now.token,
          absl::FormatTime("%H:%M:%E3S", since_, absl::LocalTimeZone())));
    }
  }

  void Line(const std::string& s) {
    std::printf("[%8.3fs] %s\n", absl::ToDoubleSeconds(absl::Now() - start_),
                s.c_str());
    std::fflush(stdout);
  }

  // Follows the timeline for `d` (or until Ctrl-C).
  void Watch(absl::Duration d) {
    absl::Time end = absl::Now() + d;
    while (absl::Now() < end && !interrupted) {
      PrintIfChanged();
      absl::SleepFor(absl::Milliseconds(2));
    }
  }

  // Waits for a leader other than `old`; prints and returns the time since
  // `t0`.
  std::optional<absl::Duration> AwaitNewLeader(const std::string& old,
                                               absl::Time t0,
                                               absl::Duration timeout) {
    absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end && !interrupted) {
      PrintIfChanged();
      Observation v = Current();
      if (!v.identity.empty() && v.identity != old) return absl::Now() - t0;
      absl::SleepFor(absl::Milliseconds(1));
    }
    return std::nullopt;
  }

  void Report(const std::string& what, std::optional<absl::Duration> d) {
    std::string r =
        d ? absl::StrFormat("%.0f ms", absl::ToDoubleMilliseconds(*d))
          : "no new leader (timed out)";
    Line(absl::StrCat(">>> ", what, ": new leader after ", r));
    summary_.push_back(absl::StrFormat("  %-44s %s", what, r));
  }

  int Run() {
    start_ = absl::Now();
    Line(absl::StrFormat(
        "%d clusters x %d replicas (app + sidecar), session TTL %ds; logs in "
        "%s",
        args_.clusters, args_.replicas, args_.ttl, fleet_->LogDir()));
    Watch(absl::Seconds(0));
    absl::Time t0 = absl::Now();
    if (!AwaitNewLeader("", t0, absl::Seconds(30))) {
      Line("no leader within 30 s; see the logs");
      return 1;
    }
    Watch(absl::Seconds(3));

    // 1. Graceful handoff: the leader resigns (its app's stream ends; the app's
    // client library campaigns again, now as a follower).
    Observation l = Current();
    Replica* r = ReplicaOf(l.identity);
    if (r == nullptr || interrupted) return Interrupted();
    Line(absl::StrCat("--- resigning ", l.identity, " (Resign over gRPC)"));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    mcl::v1::ResignRequest req;
    req.mutable_lock()->set_name(kLock);
    req.set_identity(l.identity);
    mcl::v1::ResignResponse resp;
    t0 = absl::Now();
    grpc::Status st = r->sidecar->Stub()->Resign(&ctx, req, &resp);
    if (!st.ok()) Line("resign failed: " + st.error_message());
    Report("graceful handoff (Resign)",
           AwaitNewLeader(l.identity, t0, absl::Seconds(30)));
    Watch(absl::Seconds(3));

    // 2. The next leader's app is SIGKILLed: its stream breaks, its sidecar
    // resigns for it.
    l = Current();
    r = ReplicaOf(l.identity);
    if (r == nullptr || interrupted) return Interrupted();
    Line(absl::StrCat("--- SIGKILL the app of ", l.identity));
    t0 = absl::Now();
    (void)r->app->Signal(SIGKILL);
    Report("app SIGKILLed (stream broken)",
           AwaitNewLeader(l.identity, t0, absl::Seconds(30)));
    (void)r->app->Wait(absl::Seconds(5));
    (void)StartApp(*r);
    Watch(absl::Seconds(3));

    // 3. The leader's whole cluster is lost: controller, sidecars and apps
    // SIGKILLed.
    l = Current();
    r = ReplicaOf(l.identity);
    if (r == nullptr || interrupted) return Interrupted();
    int lost = r->cluster;
    Line(absl::StrCat("--- killing cluster-", lost,
                      " (controller, sidecars, apps)"));
    dead_cluster_ = lost;
    t0 = absl::Now();
    for (Replica& x : replicas_) {
      if (x.cluster == lost && x.app) (void)x.app->Signal(SIGKILL);
    }
    (void)fleet_->KillCluster(lost);
    Report(absl::StrCat("cluster-", lost, " lost (TTL ", args_.ttl, " s)"),
           AwaitNewLeader(l.identity, t0, absl::Seconds(60)));
    Watch(absl::Seconds(3));

    // 4. It comes back; its candidates campaign again and follow the current
    // leader.
    Line(absl::StrCat("--- bringing cluster-", lost, " back"));
    absl::Status s = fleet_->ReviveCluster(lost);
    if (!s.ok()) Line("revive failed: " + std::string(s.message()));
    for (Replica& x : replicas_) {
      if (x.cluster == lost) (void)StartApp(x);
    }
    dead_cluster_ = -1;
    Observation cur = Current();
    absl::Time back = absl::Now();
    bool caught_up =
        observers_[lost]->WaitForLeader(cur.identity, 0, absl::Seconds(30));
    Line(
        absl::StrFormat("cluster-%d is back and %s the leader %s after %.0f ms",
                        lost, caught_up ? "sees" : "does NOT see", cur.identity,
                        absl::ToDoubleMilliseconds(absl::Now() - back)));
    Watch(absl::Seconds(2));

    std::printf("\nFailover times (this machine, this run):\n");
    for (const std::string& line : summary_) std::printf("%s\n", line.c_str());
    absl::Status check = fleet_->history().Check();
    std::printf("Observers' histories: %s\n",
                check.ok()
                    ? "consistent (tokens only grow, one holder per token)"
                    : std::string(check.message()).c_str());
    if (args_.stay) {
      Line("following the timeline; Ctrl-C stops everything");
      while (!interrupted) Watch(absl::Seconds(1));
    }
    return check.ok() ? 0 : 1;
  }

  int Interrupted() {
    Line("interrupted");
    return 130;
  }

 private:
  Args args_;
  Fleet* fleet_;
  std::vector<Replica> replicas_;
  std::map<int, e2e::Observer*> observers_;
  Observation shown_;
  absl::Time since_, start_;
  int dead_cluster_ = -1;
  std::vector<std::string> summary_;
};

}  // namespace
}  // namespace mcl::demo

int main(int argc, char** argv) {
  using mcl::demo::Args;
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << f << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (f == "--clusters")
      a.clusters = std::atoi(value().c_str());
    else if (f == "--replicas")
      a.replicas = std::atoi(value().c_str());
    else if (f == "--ttl")
      a.ttl = std::atoi(value().c_str());
    else if (f == "--controller")
      a.controller = value();
    else if (f == "--sidecar")
      a.sidecar = value();
    else if (f == "--app")
      a.app = value();
    else if (f == "--stay")
      a.stay = true;
    else {
      std::cerr
          << "usage: mcl_demo --controller PATH --sidecar PATH --app PATH "
             "[--clusters 2..9] [--replicas 1..5] [--ttl SECONDS] [--stay]\n";
      return 2;
    }
  }
  if (a.clusters < 2 || a.clusters > 9 || a.replicas < 1 || a.replicas > 5 ||
      a.ttl < 1 || a.ttl > 60 || a.controller.empty() || a.sidecar.empty() ||
      a.app.empty()) {
    std::cerr
        << "mcl_demo: --clusters must be 2..9, --replicas 1..5, --ttl 1..60 "
           "seconds; --controller, --sidecar and --app are required\n";
    return 2;
  }
  // Ctrl-C / SIGTERM: finish the current step and stop everything (destructors
  // do the stopping).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig;
    sigwait(&set, &sig);
    mcl::demo::interrupted = true;
  }).detach();

  mcl::e2e::FleetOptions opts;
  opts.clusters = a.clusters;
  opts.session_ttl = absl::Seconds(a.ttl);
  opts.lease_duration_seconds = a.ttl;
  opts.controller_binary = a.controller;
  opts.sidecar_binary = a.sidecar;
  std::printf(
      "starting %d clusters (global etcd + per cluster: etcd, kube-apiserver, "
      "controller)...\n",
      a.clusters);
  std::fflush(stdout);
  auto fleet = mcl::e2e::Fleet::Start(opts);
  if (!fleet.ok()) {
    std::cerr << "demo: " << fleet.status() << "\n";
    return 1;
  }
  int rc;
  {
    mcl::demo::Demo demo(a, fleet->get());
    absl::Status s = demo.Setup();
    if (!s.ok()) {
      std::cerr << "demo: " << s << "\n";
      return 1;
    }
    rc = demo.Run();
  }
  std::printf("stopping everything...\n");
  fleet->reset();
  std::printf("stopped.\n");
  return rc;
}
