// Sidecar benchmark (a program, not a test): starts its own one-cluster test
// bed, the real mcl-controller and one real mcl-sidecar, then measures
//   1. idle cost: RSS and CPU time per second of the sidecar holding 1 lock
//      (LEADER, default 15 s lease, real controller with a 10 s session) with
//      10 Observe streams open, and which threads spend that CPU; the pages
//      it touches while idle, and its proportional and private memory next to
//      a second idle sidecar;
//   2. Observe fan-out: 100 observers of one lock; the status is changed (a
//      new fencing token, written with the controller identity) `rounds`
//      times; latency from the write to each observer receiving the event;
//      p50/p99/max over all samples.
// Prints a Markdown table for docs/benchmarks.md.
//
//   bazel build -c opt //sidecar:sidecar_benchmark &&
//   bazel-bin/sidecar/sidecar_benchmark [rounds] [idle seconds]
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/kube/typed_client.h"
#include "sidecar/testing/sidecar_client.h"
#include "testbed/cc/testbed.h"

namespace mcl::sidecar::testing {
namespace {

using ::mcl::testbed::Identity;
using ::mcl::testbed::Subprocess;

// A "Field:  N kB" line of /proc/PID/<file> (status, smaps_rollup), or -1.
int64_t ProcKiB(pid_t pid, const std::string& file, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/", file));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::vector<std::string> f =
          absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
      int64_t v = 0;
      if (f.size() >= 2 && absl::SimpleAtoi(f[1], &v)) return v;
    }
  }
  return -1;
}

int64_t StatusKiB(pid_t pid, const std::string& field) {
  return ProcKiB(pid, "status", field);
}

int64_t RssKiB(pid_t pid) { return StatusKiB(pid, "VmRSS"); }

// Clears the accessed bits of every page of `pid`, so that smaps' Referenced
// counts only the pages it touches from now on: its working set.
bool ClearReferenced(pid_t pid) {
  std::ofstream out(absl::StrCat("/proc/", pid, "/clear_refs"));
  out << "1";
  out.flush();
  return static_cast<bool>(out);
}

// CPU time of each thread of `pid`, by thread id, with its name (schedstat:
// nanoseconds, unlike the 10 ms ticks of stat).
struct ThreadCpu {
  std::string name;
  absl::Duration cpu;
};
std::map<std::string, ThreadCpu> CpuByThread(pid_t pid) {
  std::map<std::string, ThreadCpu> out;
  std::string dir = absl::StrCat("/proc/", pid, "/task");
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
  if (d == nullptr) return out;
  while (dirent* e = readdir(d.get())) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(absl::StrCat(dir, "/", e->d_name, "/schedstat"));
    std::ifstream comm(absl::StrCat(dir, "/", e->d_name, "/comm"));
    int64_t ns = 0;
    ThreadCpu t;
    if (!(in >> ns)) continue;
    std::getline(comm, t.name);
    t.cpu = absl::Nanoseconds(ns);
    out[e->d_name] = t;
  }
  return out;
}

// Resident memory by what is mapped (/proc/PID/smaps), largest first: each
// shared library's file-backed pages, and "anon" for the heap, thread stacks
// and the relocated (copied-on-write) pages of every library together.
std::string RssByMapping(pid_t pid, size_t top) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/smaps"));
  std::map<std::string, int64_t> file_kib;
  int64_t anon_kib = 0;
  std::string line, current;
  while (std::getline(in, line)) {
    std::vector<std::string> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.empty()) continue;
    if (f[0].back() != ':') {  // a mapping's header: range perms ... path
      current = f.size() >= 6 ? f[5].substr(f[5].rfind('/') + 1) : "";
      continue;
    }
    int64_t v = 0;
    if (f.size() < 2 || !absl::SimpleAtoi(f[1], &v)) continue;
    if (f[0] == "Anonymous:") {
      anon_kib += v;
      if (!current.empty() && current[0] != '[') file_kib[current] -= v;
    } else if (f[0] == "Rss:" && !current.empty() && current[0] != '[') {
      file_kib[current] += v;
    }
  }
  std::vector<std::pair<int64_t, std::string>> sorted;
  int64_t file_total = 0;
  for (const auto& [name, kib] : file_kib) {
    sorted.emplace_back(kib, name);
    file_total += kib;
  }
  std::sort(sorted.rbegin(), sorted.rend());
  auto mib = [](int64_t kib) { return static_cast<double>(kib) / 1024.0; };
  std::string out = absl::StrFormat("anon %.1f, files %.1f (", mib(anon_kib),
                                    mib(file_total));
  int64_t rest = file_total;
  for (size_t i = 0; i < sorted.size() && i < top; ++i) {
    absl::StrAppendFormat(&out, "%s%s %.1f", i == 0 ? "" : ", ",
                          sorted[i].second, mib(sorted[i].first));
    rest -= sorted[i].first;
  }
  absl::StrAppendFormat(&out, ", %zu others %.1f) MiB",
                        sorted.size() > top ? sorted.size() - top : 0,
                        mib(rest));
  return out;
}

absl::Duration CpuTime(pid_t pid) {
  absl::Duration total;
  for (const auto& [tid, t] : CpuByThread(pid)) total += t.cpu;
  return total;
}

// "name ms/s, ..." for the CPU each group of same-named threads used between
// two snapshots, largest first: where an idle sidecar's CPU goes.
std::string CpuByThreadName(const std::map<std::string, ThreadCpu>& before,
                            const std::map<std::string, ThreadCpu>& after,
                            absl::Duration wall) {
  std::map<std::string, absl::Duration> by_name;
  for (const auto& [tid, t] : after) {
    auto it = before.find(tid);
    by_name[t.name] +=
        t.cpu - (it == before.end() ? absl::ZeroDuration() : it->second.cpu);
  }
  std::vector<std::pair<absl::Duration, std::string>> sorted;
  sorted.reserve(by_name.size());
  for (const auto& [name, cpu] : by_name) sorted.emplace_back(cpu, name);
  std::sort(sorted.rbegin(), sorted.rend());
  std::string out;
  for (const auto& [cpu, name] : sorted) {
    double ms_per_s =
        absl::ToDoubleMilliseconds(cpu) / absl::ToDoubleSeconds(wall);
    if (ms_per_s < 0.005) continue;
    absl::StrAppend(&out, out.empty() ? "" : ", ", name, " ",
                    absl::StrFormat("%.2f", ms_per_s));
  }
  return out;
}

absl::Duration Percentile(std::vector<absl::Duration> v, double p) {
  std::sort(v.begin(), v.end());
  auto i =
      static_cast<size_t>(std::lround(p * static_cast<double>(v.size() - 1)));
  return v[std::min(i, v.size() - 1)];
}

std::string Ms(absl::Duration d) {
  return absl::StrFormat("%.1f ms", absl::ToDoubleMilliseconds(d));
}

int Run(int rounds, absl::Duration idle_window) {
  auto tbs = testbed::Testbed::Start(1);
  if (!tbs.ok()) {
    std::fprintf(stderr, "test bed: %s\n", tbs.status().ToString().c_str());
    return 1;
  }
  testbed::Testbed& tb = **tbs;
  std::string dir = tb.dir();
  const std::string ns = "bench", fan_ns = "bench-fanout";
  for (const std::string& n : {ns, fan_ns})
    (void)tb.Kubectl(0, {"create", "namespace", n});
  auto ctl = Subprocess::Start(
      {testbed::Runfile("controller/mcl-controller"),
       "--kubeconfig=" + tb.kubeconfig(0, Identity::kController),
       "--cluster-name=cluster-0",
       "--etcd-endpoints=" + tb.global_etcd_address(), "--session-ttl=10s",
       "--namespace=" + ns, "--watch-namespaces=" + ns,
       "--metrics-address=127.0.0.1:0"},
      dir + "/controller.log");
  if (!ctl.ok() || !ctl->WaitForLog("informer synced", absl::Seconds(30))) {
    std::fprintf(stderr, "controller did not start\n");
    return 1;
  }
  auto sc = Sidecar::Start(
      "bench", dir,
      {"--kubeconfig=" + tb.kubeconfig(0, Identity::kSidecar),
       "--namespace=" + ns, "--cluster-name=cluster-0", "--identity=bench"});
  if (!sc.ok()) {
    std::fprintf(stderr, "sidecar: %s\n", sc.status().ToString().c_str());
    return 1;
  }
  pid_t pid = (*sc)->process().pid();
  // A second, idle sidecar on the same machine, as on a node running several
  // pods: the library pages it maps too are shared, so the first sidecar's
  // Pss and private memory show what one more sidecar costs.
  auto neighbour =
      Sidecar::Start("neighbour", dir,
                     {"--kubeconfig=" + tb.kubeconfig(0, Identity::kSidecar),
                      "--namespace=" + ns, "--cluster-name=cluster-0",
                      "--identity=neighbour"});
  if (!neighbour.ok()) {
    std::fprintf(stderr, "second sidecar: %s\n",
                 neighbour.status().ToString().c_str());
    return 1;
  }

  // 0. Baseline: no lock, no stream (the watch of the namespace is not even
  // started yet).
  absl::SleepFor(absl::Seconds(3));
  absl::Duration base0 = CpuTime(pid);
  absl::Time b0 = absl::Now();
  absl::SleepFor(idle_window / 2);
  double base_ms_per_s = absl::ToDoubleMilliseconds(CpuTime(pid) - base0) /
                         absl::ToDoubleSeconds(absl::Now() - b0);

  // 1. Idle: 1 lock held, 10 observers.
  mcl::v1::CampaignRequest creq;
  *creq.mutable_lock() = Lock("idle-lock");
  auto camp = StreamReader::Campaign((*sc)->stub(), creq);
  if (!camp->WaitFor(mcl::v1::LEADER, absl::Seconds(60))) {
    std::fprintf(stderr, "never LEADER; controller log:\n%s\n",
                 ctl->Log().c_str());
    return 1;
  }
  std::vector<std::unique_ptr<StreamReader>> idle_obs;
  idle_obs.reserve(10);
  mcl::v1::ObserveRequest oreq;
  *oreq.mutable_lock() = Lock("idle-lock");
  for (int i = 0; i < 10; ++i)
    idle_obs.push_back(StreamReader::Observe((*sc)->stub(), oreq));
  // Settle: the measurement is of a steady state.
  absl::SleepFor(absl::Seconds(5));
  absl::Duration cpu0 = CpuTime(pid);
  std::map<std::string, ThreadCpu> threads0 = CpuByThread(pid);
  bool cleared = ClearReferenced(pid);
  absl::Time t0 = absl::Now();
  int64_t rss_max = 0;
  while (absl::Now() - t0 < idle_window) {
    rss_max = std::max(rss_max, RssKiB(pid));
    absl::SleepFor(absl::Seconds(1));
  }
  absl::Duration cpu = CpuTime(pid) - cpu0;
  std::map<std::string, ThreadCpu> threads1 = CpuByThread(pid);
  int64_t rss_anon = StatusKiB(pid, "RssAnon"),
          rss_file = StatusKiB(pid, "RssFile");
  int64_t threads = StatusKiB(pid, "Threads");
  int64_t referenced =
      cleared ? ProcKiB(pid, "smaps_rollup", "Referenced") : -1;
  int64_t pss = ProcKiB(pid, "smaps_rollup", "Pss");
  int64_t uss = ProcKiB(pid, "smaps_rollup", "Private_Clean") +
                ProcKiB(pid, "smaps_rollup", "Private_Dirty");
  std::string by_mapping = RssByMapping(pid, 10);
  if (std::getenv("BENCH_VERBOSE") != nullptr) {
    std::ifstream st(absl::StrCat("/proc/", pid, "/status"));
    std::string line;
    while (std::getline(st, line)) {
      if (line.rfind("Rss", 0) == 0 || line.rfind("Threads", 0) == 0 ||
          line.rfind("VmRSS", 0) == 0) {
        std::fprintf(stderr, "%s\n", line.c_str());
      }
    }
  }
  absl::Duration wall = absl::Now() - t0;
  double cpu_ms_per_s =
      absl::ToDoubleMilliseconds(cpu) / absl::ToDoubleSeconds(wall);
  bool still_leader = camp->History().back().event.state() == mcl::v1::LEADER;

  // 2. Fan-out: 100 observers of a lock whose status the benchmark changes.
  auto cfg = kube::LoadKubeconfigFile(tb.kubeconfig(0, Identity::kController));
  auto admin_cfg = kube::LoadKubeconfigFile(tb.kubeconfig(0, Identity::kAdmin));
  auto writer = kube::KubeClient::Create(*cfg);
  auto admin = kube::KubeClient::Create(*admin_cfg);
  kube::MultiClusterLeaseClient as_controller(writer->get()),
      as_admin(admin->get());
  kube::MultiClusterLease obj;
  obj.metadata.name = "fanout";
  obj.metadata.namespace_ = fan_ns;
  obj.spec.lease_duration_seconds = 15;
  auto created = as_admin.Create(obj);
  if (!created.ok()) {
    std::fprintf(stderr, "create: %s\n", created.status().ToString().c_str());
    return 1;
  }
  std::vector<std::unique_ptr<StreamReader>> fan;
  mcl::v1::ObserveRequest freq;
  *freq.mutable_lock() = Lock("fanout", fan_ns);
  for (int i = 0; i < 100; ++i) {
    fan.push_back(StreamReader::Observe((*sc)->stub(), freq));
    fan.back()->Next(absl::Seconds(10));  // the first event (NO_LEADER)
  }
  std::vector<absl::Duration> samples, from_ack, writes;
  int64_t rss_fan = 0;
  for (int r = 0; r <= rounds;
       ++r) {  // round 0 warms up the writer's connection
    auto patch = kube::ParseJson(
        absl::StrCat(R"({"status":{"leader":"bench-leader",)",
                     R"("leaderCluster":"cluster-0","fencingToken":)", r, "}}"),
        "patch");
    absl::Time sent = absl::Now();
    auto w = as_controller.MergePatch(fan_ns, "fanout", *patch, "status");
    absl::Time write_done = absl::Now();
    writes.push_back(write_done - sent);
    if (!w.ok()) {
      std::fprintf(stderr, "status write: %s\n", w.status().ToString().c_str());
      return 1;
    }
    absl::Duration round_min = absl::InfiniteDuration(), round_max;
    for (auto& o : fan) {
      for (;;) {
        auto e = o->Next(absl::Seconds(10));
        if (!e) {
          std::fprintf(stderr, "an observer missed round %d\n", r);
          return 1;
        }
        if (e->event.leader().fencing_token() == r) {
          if (r == 0) break;
          samples.push_back(e->at - sent);
          // The change is committed at latest when the write is acknowledged;
          // an observer that hears of it even before that counts as 0.
          from_ack.push_back(
              std::max(absl::ZeroDuration(), e->at - write_done));
          round_min = std::min(round_min, e->at - sent);
          round_max = std::max(round_max, e->at - sent);
          break;
        }
      }
    }
    if (r == 0) {
      writes.clear();
      continue;
    }
    if (std::getenv("BENCH_VERBOSE") != nullptr) {
      std::fprintf(stderr, "round %d: write %s, first observer %s, last %s\n",
                   r, Ms(write_done - sent).c_str(), Ms(round_min).c_str(),
                   Ms(round_max).c_str());
    }
    rss_fan = std::max(rss_fan, RssKiB(pid));
    absl::SleepFor(absl::Milliseconds(100));  // one change at a time
  }

  std::printf("\n| Measure | Goal | Result |\n|---|---|---|\n");
  std::printf(
      "| Idle RSS, 1 lock held + 10 observers (max over %s) | <= 15 MiB | %.1f "
      "MiB |\n",
      absl::FormatDuration(idle_window).c_str(),
      static_cast<double>(rss_max) / 1024.0);
  std::printf("| Idle CPU, same (user+sys over %s) | <= 1 ms/s | %.3f ms/s |\n",
              absl::FormatDuration(wall).c_str(), cpu_ms_per_s);
  std::printf(
      "| of which private (RssAnon) / file-backed, mostly shared libraries "
      "(RssFile) "
      "| | %.1f / %.1f MiB |\n",
      static_cast<double>(rss_anon) / 1024.0,
      static_cast<double>(rss_file) / 1024.0);
  std::printf(
      "| Idle working set: pages touched during the idle window (smaps "
      "Referenced after clear_refs) | | %.1f MiB |\n",
      static_cast<double>(referenced) / 1024.0);
  std::printf(
      "| With a second sidecar on the machine: proportional (Pss) / private "
      "(Private_Clean + Private_Dirty) | | %.1f / %.1f MiB |\n",
      static_cast<double>(pss) / 1024.0, static_cast<double>(uss) / 1024.0);
  std::printf("| Threads | | %lld |\n", static_cast<long long>(threads));
  std::printf("| Idle RSS by mapping | | %s |\n", by_mapping.c_str());
  std::printf("| Idle CPU by thread name, ms/s | | %s |\n",
              CpuByThreadName(threads0, threads1, wall).c_str());
  std::printf(
      "| CPU of a sidecar with no lock and no stream (baseline) | | %.3f ms/s "
      "|\n",
      base_ms_per_s);
  std::printf("| Still LEADER at the end of the idle window | yes | %s |\n",
              still_leader ? "yes" : "no");
  std::printf(
      "| Status write by the controller identity (apiserver), p50 / p99 | | %s "
      "/ %s |\n",
      Ms(Percentile(writes, 0.5)).c_str(),
      Ms(Percentile(writes, 0.99)).c_str());
  std::printf(
      "| Observe fan-out, status write acknowledged -> each of 100 observers, "
      "p50 (%zu samples) "
      "| | %s |\n",
      from_ack.size(), Ms(Percentile(from_ack, 0.5)).c_str());
  std::printf("| Observe fan-out, same, p99 | <= 50 ms | %s |\n",
              Ms(Percentile(from_ack, 0.99)).c_str());
  std::printf("| Observe fan-out, same, max | | %s |\n",
              Ms(Percentile(from_ack, 1.0)).c_str());
  std::printf(
      "| End to end, status write sent -> each observer, p50 / p99 | | %s / %s "
      "|\n",
      Ms(Percentile(samples, 0.5)).c_str(),
      Ms(Percentile(samples, 0.99)).c_str());
  std::printf("| RSS with 100 observers | | %.1f MiB |\n",
              static_cast<double>(rss_fan) / 1024.0);
  (void)(*sc)->process().Stop(absl::Seconds(10));
  (void)(*neighbour)->process().Stop(absl::Seconds(10));
  (void)ctl->Stop(absl::Seconds(10));
  return 0;
}

}  // namespace
}  // namespace mcl::sidecar::testing

int main(int argc, char** argv) {
  if (std::getenv("TEST_SRCDIR") == nullptr) {
    std::string runfiles = std::string(argv[0]) + ".runfiles";
    setenv("TEST_SRCDIR", runfiles.c_str(), 1);
    setenv("TEST_WORKSPACE", "mcl", 1);
  }
  int rounds = argc > 1 ? std::atoi(argv[1]) : 50;
  int idle_seconds = argc > 2 ? std::atoi(argv[2]) : 30;
  return mcl::sidecar::testing::Run(rounds, absl::Seconds(idle_seconds));
}
