// controller_bench: one mcl-controller serving N MultiClusterLeases on the real
// test bed (one cluster + the global etcd), with a bounded load tool renewing
// every candidate every leaseDuration/4. Reports the controller's CPU and RSS,
// etcd requests/s and apiserver writes/s (from its own /metrics), the time to
// grant every lock, and the time to release them on SIGTERM. Not a test: run by
// hand (see docs/benchmarks.md, "Controller").
//
//   bazel build //controller:mcl-controller //controller/bench:controller_bench
//   bazel-bin/controller/bench/controller_bench --locks=1000 --window=60s
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/kube/objects.h"
#include "testbed/cc/subprocess.h"
#include "testbed/cc/testbed.h"

namespace {

using mcl::kube::Json;

struct Args {
  int locks = 1000;
  int lease_seconds = 15;
  absl::Duration window = absl::Seconds(60);
  absl::Duration session_ttl = absl::Seconds(10);
  int workers = 8;
  int load_threads = 4;
  std::string controller = "bazel-bin/controller/mcl-controller";
};

std::map<std::string, double> Scrape(int port) {
  std::map<std::string, double> out;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return out;
  }
  const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
  (void)!write(fd, req, sizeof(req) - 1);
  std::string body;
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0)
    body.append(buf, static_cast<size_t>(n));
  close(fd);
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> kv = absl::StrSplit(line, ' ');
    double v;
    if (kv.size() == 2 && absl::SimpleAtod(kv[1], &v))
      out[std::string(kv[0])] = v;
  }
  return out;
}

// utime+stime of pid in seconds, and VmRSS in MiB.
std::pair<double, double> CpuAndRss(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string s((std::istreambuf_iterator<char>(stat)),
                std::istreambuf_iterator<char>());
  double cpu = 0;
  size_t close_paren = s.rfind(')');
  if (close_paren != std::string::npos) {
    std::vector<std::string> f = absl::StrSplit(s.substr(close_paren + 2), ' ');
    // Fields after "(comm) ": state is f[0]; utime is field 14 overall = f[11],
    // stime f[12].
    double ut = 0, st = 0;
    if (f.size() > 12 && absl::SimpleAtod(f[11], &ut) &&
        absl::SimpleAtod(f[12], &st)) {
      cpu = (ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  double rss = 0;
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      double kb = 0;
      if (f.size() >= 2 && absl::SimpleAtod(f[1], &kb)) rss = kb / 1024;
    }
  }
  return {cpu, rss};
}

std::string Name(int i) { return absl::StrCat("lock-", i); }

using mcl::kube::KubeClient;

// 1. N locks with a candidate each.
void CreateLocks(const Args& args, KubeClient* sidecar) {
  const auto& res = mcl::kube::MultiClusterLeaseResource();
  const absl::Time t = absl::Now();
  std::vector<std::thread> th;
  std::atomic<int> next{0}, failed{0};
  for (int w = 0; w < 8; ++w) {
    th.emplace_back([&] {
      for (int i = next++; i < args.locks; i = next++) {
        Json obj = Json::object();
        obj["apiVersion"] = Json::string("mcl.dev/v1alpha1");
        obj["kind"] = Json::string("MultiClusterLease");
        mcl::kube::ChildObject(obj, "metadata")["name"] = Json::string(Name(i));
        Json& spec = mcl::kube::ChildObject(obj, "spec");
        spec["holderIdentity"] = Json::string(absl::StrCat("cand-", i));
        spec["leaseDurationSeconds"] = Json::number(args.lease_seconds);
        spec["renewTime"] =
            Json::string(mcl::kube::FormatMicroTime(absl::Now()));
        if (!sidecar->Create(res, "bench", obj).ok()) failed++;
      }
    });
  }
  for (auto& x : th) x.join();
  fprintf(stderr, "created %d locks in %s (%d failed)\n", args.locks,
          absl::FormatDuration(absl::Now() - t).c_str(), failed.load());
}

// 2. The load tool: every lock renewed every leaseDuration/4, paced evenly,
// bounded.
class Load {
 public:
  Load(const Args& args, KubeClient* sidecar) {
    const absl::Duration period = absl::Seconds(args.lease_seconds) / 4;
    for (int w = 0; w < args.load_threads; ++w) {
      std::vector<int> mine;
      for (int i = w; i < args.locks; i += args.load_threads) mine.push_back(i);
      threads_.emplace_back([this, sidecar, period, mine] {
        Renew(sidecar, mine, period / std::max<size_t>(1, mine.size()));
      });
    }
  }
  ~Load() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& x : threads_) {
      if (x.joinable()) x.join();
    }
  }
  int64_t renewals() const { return renewals_.load(); }
  int64_t errors() const { return errors_.load(); }

 private:
  void Renew(KubeClient* sidecar, const std::vector<int>& mine,
             absl::Duration gap) {
    const auto& res = mcl::kube::MultiClusterLeaseResource();
    absl::Time next = absl::Now();
    while (!stop_.load()) {
      for (int i : mine) {
        if (stop_.load()) break;
        next += gap;
        absl::Duration wait = next - absl::Now();
        if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
        Json patch = Json::object();
        mcl::kube::ChildObject(patch, "spec")["renewTime"] =
            Json::string(mcl::kube::FormatMicroTime(absl::Now()));
        if (sidecar->MergePatch(res, "bench", Name(i), patch).ok()) {
          renewals_++;
        } else {
          errors_++;
        }
      }
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<int64_t> renewals_{0}, errors_{0};
  std::vector<std::thread> threads_;
};

// 3. The controller; its metrics port, 0 when it did not come up.
int StartController(const Args& args, mcl::testbed::Testbed& tb,
                    const std::string& log,
                    std::optional<mcl::testbed::Subprocess>* proc) {
  auto p = mcl::testbed::Subprocess::Start(
      {args.controller, "--kubeconfig",
       tb.kubeconfig(0, mcl::testbed::Identity::kController), "--cluster-name",
       tb.cluster(0).name, "--etcd-endpoints", tb.global_etcd_address(),
       "--session-ttl", absl::FormatDuration(args.session_ttl), "--namespace",
       "mcl-system", "--watch-namespaces", "bench", "--workers",
       absl::StrCat(args.workers), "--metrics-address", "127.0.0.1:0"},
      log);
  if (!p.ok()) return 0;
  proc->emplace(std::move(*p));
  if (!(*proc)->WaitForLog("metrics listening", absl::Seconds(10))) return 0;
  const std::string l = (*proc)->Log();
  const std::string key = "\"port\":\"";
  size_t at = l.find(key);
  if (at == std::string::npos) return 0;
  at += key.size();
  int port = 0;
  absl::SimpleAtoi(l.substr(at, l.find('"', at) - at), &port);
  return port;
}

// What the steady-state window and SIGTERM measured.
struct Result {
  double renewals_per_s = 0;
  absl::Duration grant_all, release;
  double cpu_cores = 0, rss = 0, rss_max = 0, held = 0;
  double etcd_req = 0, keepalives = 0, apiserver_writes = 0, status_writes = 0;
  double reconciles = 0;
  double event_writes = 0, heap_mib = 0;
  int exit_code = -1;
};

void Print(const Args& args, const Result& r) {
  printf(
      "| locks | lease s | renewals/s | grant all | CPU (cores) | RSS MiB "
      "(max) | etcd req/s (txn+range) | keepalives/s | apiserver writes/s | "
      "status writes/s | reconciles/s | SIGTERM release | held |\n");
  printf(
      "| %d | %d | %.0f | %s | %.3f | %.0f (%.0f) | %.2f | %.2f | %.2f | %.2f "
      "| %.0f | %s (exit %d) | %.0f |\n",
      args.locks, args.lease_seconds, r.renewals_per_s,
      absl::FormatDuration(absl::Trunc(r.grant_all, absl::Milliseconds(100)))
          .c_str(),
      r.cpu_cores, r.rss, r.rss_max, r.etcd_req, r.keepalives,
      r.apiserver_writes, r.status_writes, r.reconciles,
      absl::FormatDuration(absl::Trunc(r.release, absl::Milliseconds(100)))
          .c_str(),
      r.exit_code, r.held);
  fprintf(stderr,
          "Event writes in the window (not in the apiserver writes column): "
          "%.2f/s\n",
          r.event_writes);
  fprintf(stderr, "heap in use at the end of the window: %.0f MiB\n",
          r.heap_mib);
}

// 4. Steady state over the window, then 5. SIGTERM: release everything.
Result Measure(const Args& args, mcl::testbed::Subprocess& proc, int port,
               const Load& load) {
  Result r;
  auto m0 = Scrape(port);
  auto [cpu0, rss0] = CpuAndRss(proc.pid());
  const int64_t renew0 = load.renewals();
  const absl::Time w0 = absl::Now();
  r.rss_max = rss0;
  while (absl::Now() - w0 < args.window) {
    absl::SleepFor(absl::Seconds(1));
    r.rss_max = std::max(r.rss_max, CpuAndRss(proc.pid()).second);
  }
  auto m1 = Scrape(port);
  auto [cpu1, rss1] = CpuAndRss(proc.pid());
  const double secs = absl::ToDoubleSeconds(absl::Now() - w0);
  auto rate = [&](const char* name) { return (m1[name] - m0[name]) / secs; };
  r.renewals_per_s = (load.renewals() - renew0) / secs;
  r.cpu_cores = (cpu1 - cpu0) / secs;
  r.rss = rss1;
  r.held = m1["mcl_controller_locks_held"];
  r.etcd_req = rate("mcl_controller_etcd_requests_total");
  r.keepalives = rate("mcl_controller_keepalives_total");
  r.apiserver_writes = rate("mcl_controller_apiserver_writes_total");
  r.status_writes = rate("mcl_controller_status_writes_total");
  r.reconciles = rate("mcl_controller_reconciles_total");
  r.event_writes = rate("mcl_controller_event_writes_total");
  r.heap_mib = m1["mcl_controller_heap_inuse_bytes"] / (1 << 20);

  const absl::Time term = absl::Now();
  (void)proc.Signal(SIGTERM);
  auto code = proc.Wait(absl::Minutes(2));
  r.release = absl::Now() - term;
  r.exit_code = code.ok() ? *code : -1;
  return r;
}

int Main(const Args& args) {
  auto tb = mcl::testbed::Testbed::Start(1);
  if (!tb.ok()) {
    fprintf(stderr, "test bed: %s\n",
            std::string(tb.status().message()).c_str());
    return 1;
  }
  (void)(*tb)->Kubectl(0, {"create", "namespace", "bench"});
  (void)(*tb)->Kubectl(0, {"create", "namespace", "mcl-system"});
  auto side_cfg = mcl::kube::LoadKubeconfigFile(
      (*tb)->kubeconfig(0, mcl::testbed::Identity::kSidecar));
  if (!side_cfg.ok()) return 1;
  auto sidecar = KubeClient::Create(*side_cfg);
  if (!sidecar.ok()) return 1;

  CreateLocks(args, sidecar->get());
  Load load(args, sidecar->get());
  const std::string log = absl::StrCat((*tb)->dir(), "/controller.log");
  std::optional<mcl::testbed::Subprocess> proc;
  const absl::Time started = absl::Now();
  const int port = StartController(args, **tb, log, &proc);
  if (port == 0) return 1;
  bool all = mcl::testbed::WaitUntil(
      [&] { return Scrape(port)["mcl_controller_locks_held"] >= args.locks; },
      absl::Minutes(15));
  const absl::Duration grant_all = absl::Now() - started;
  // Let the Events of the initial grants drain, so the window measures the
  // steady state.
  mcl::testbed::WaitUntil(
      [&] { return Scrape(port)["mcl_controller_events_pending"] == 0; },
      absl::Minutes(5));
  auto [cpu_startup, rss_startup] = CpuAndRss(proc->pid());
  fprintf(stderr,
          "all %d granted: %s after start (%s); cpu %.1fs rss %.0fMiB\n",
          args.locks, absl::FormatDuration(grant_all).c_str(),
          all ? "ok" : "TIMEOUT", cpu_startup, rss_startup);

  Result r = Measure(args, *proc, port, load);
  r.grant_all = grant_all;
  load.Stop();
  Print(args, r);
  fprintf(stderr, "renew errors: %lld; controller log: %s\n",
          static_cast<long long>(load.errors()), log.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto val = [&](const char* f) -> const char* {
      std::string p = absl::StrCat("--", f, "=");
      return s.rfind(p, 0) == 0 ? argv[i] + p.size() : nullptr;
    };
    if (const char* v = val("locks"))
      a.locks = atoi(v);
    else if (const char* v = val("lease-seconds"))
      a.lease_seconds = atoi(v);
    else if (const char* v = val("window"))
      absl::ParseDuration(v, &a.window);
    else if (const char* v = val("session-ttl"))
      absl::ParseDuration(v, &a.session_ttl);
    else if (const char* v = val("workers"))
      a.workers = atoi(v);
    else if (const char* v = val("load-threads"))
      a.load_threads = atoi(v);
    else if (const char* v = val("controller"))
      a.controller = v;
    else {
      fprintf(stderr,
              "usage: controller_bench [--locks=N] [--lease-seconds=S] "
              "[--window=60s] "
              "[--session-ttl=10s] [--workers=4] [--load-threads=4] "
              "[--controller=PATH]\n");
      return 2;
    }
  }
  return Main(a);
}
