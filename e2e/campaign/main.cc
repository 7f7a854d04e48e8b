// mcl-campaign: the fault campaign (campaign.h) as a command;
// e2e/campaign/run.sh builds it and runs it from the repository root.
//
//   mcl-campaign --runs=N [--seed=S | --seeds=S1,S2,...] [--etcd-members=1|3]
//   --out=DIR
//                [--fault-phase=15s] [--l3-bound=30s] [--keep-logs]
//                [--controller=PATH --sidecar=PATH --recorder=PATH]
//   mcl-campaign --plans=N [--seed=S] [--etcd-members=1|3]
//                prints the faults of seeds S..S+N-1 and runs nothing
//
// Exit status: 0 when every run passed, 1 when any run had a violation or
// could not start, 2 on bad flags. Prints each failing run's seed; replay one
// with --seed=S --runs=1.
#include <cstdio>
#include <map>
#include <random>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "e2e/campaign/campaign.h"
#include "e2e/campaign/plan.h"
#include "testbed/cc/subprocess.h"

int main(int argc, char** argv) {
  using mcl::campaign::CampaignOptions;
  CampaignOptions o;
  o.seed = std::random_device{}() & 0xffffffffu;
  o.binaries.controller = mcl::testbed::Runfile("controller/mcl-controller");
  o.binaries.sidecar = mcl::testbed::Runfile("sidecar/mcl-sidecar");
  o.binaries.recorder = mcl::testbed::Runfile("e2e/campaign/mcl-recorder");
  o.binaries.faketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
  auto fail = [](const std::string& msg) {
    fprintf(stderr,
            "mcl-campaign: %s (see the header of e2e/campaign/main.cc)\n",
            msg.c_str());
    return 2;
  };
  int plans = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--keep-logs") {
      o.keep_logs = true;
      continue;
    }
    size_t eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos) {
      return fail("expected --flag=value, got '" + a + "'");
    }
    std::string k = a.substr(2, eq - 2), v = a.substr(eq + 1);
    bool ok = true;
    if (k == "plans") {
      ok = absl::SimpleAtoi(v, &plans) && plans > 0;
    } else if (k == "runs") {
      ok = absl::SimpleAtoi(v, &o.runs) && o.runs > 0;
    } else if (k == "seed") {
      ok = absl::SimpleAtoi(v, &o.seed);
    } else if (k == "seeds") {
      for (absl::string_view part : absl::StrSplit(v, ',')) {
        uint64_t s = 0;
        ok = ok && absl::SimpleAtoi(part, &s);
        o.seeds.push_back(s);
      }
    } else if (k == "etcd-members") {
      ok = absl::SimpleAtoi(v, &o.etcd_members) &&
           (o.etcd_members == 1 || o.etcd_members == 3);
    } else if (k == "out") {
      o.out = v;
    } else if (k == "fault-phase") {
      ok = absl::ParseDuration(v, &o.fault_phase) &&
           o.fault_phase > absl::Seconds(1);
    } else if (k == "l3-bound") {
      ok = absl::ParseDuration(v, &o.l3_bound) &&
           o.l3_bound > absl::ZeroDuration();
    } else if (k == "controller") {
      o.binaries.controller = v;
    } else if (k == "sidecar") {
      o.binaries.sidecar = v;
    } else if (k == "recorder") {
      o.binaries.recorder = v;
    } else if (k == "faketime") {
      o.binaries.faketime = v;
    } else {
      return fail("unknown flag --" + k);
    }
    if (!ok) return fail("bad value for --" + k + ": '" + v + "'");
  }
  if (plans > 0) {
    mcl::campaign::Shape shape;
    shape.etcd_members = o.etcd_members;
    for (int k = 0; k < plans; ++k) {
      auto plan = mcl::campaign::MakePlan(o.seed + static_cast<uint64_t>(k),
                                          shape, o.fault_phase);
      for (const auto& f : plan.faults) {
        printf("%llu\t%s\n", static_cast<unsigned long long>(plan.seed),
               f.Describe().c_str());
      }
    }
    return 0;
  }
  if (o.out.empty()) return fail("--out=DIR is required");
  fprintf(stderr,
          "mcl-campaign: %d run(s) from seed %llu, etcd members %d, out %s\n",
          o.runs, static_cast<unsigned long long>(o.seed), o.etcd_members,
          o.out.c_str());
  auto summary = mcl::campaign::RunCampaign(o);
  if (!summary.ok()) {
    fprintf(stderr, "mcl-campaign: %s\n", summary.status().ToString().c_str());
    return 1;
  }
  printf("%s", summary->ToText().c_str());
  return summary->failed == 0 && summary->setup_errors == 0 ? 0 : 1;
}
