// Watch throughput from a real kube-apiserver into the Informer's cache.
//
//   bazel build //common/kube:watch_bench
//   bazel-bin/common/kube/watch_bench --objects=2000 --writers=4     # starts
//   its own test bed bazel-bin/common/kube/watch_bench
//   --kubeconfig=/path/admin.kubeconfig   # an existing cluster
//
// Phases (each bounded by --timeout): N creates, N updates and N deletes by
// `writers` threads, while one Informer watches; the clock stops when the cache
// has applied the last change. Reports events/s into the cache and the latency
// from issuing each write to its handler call (p50/p99). Then a replay: a raw
// watch from the resourceVersion before the creates, which the apiserver serves
// from its watch cache as fast as the client reads (decode + cache insert, no
// writer bound). Run it from the repository root (the test bed script is found
// relative to it).
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/kube/informer.h"
#include "common/kube/typed_client.h"
#include "testbed/cc/testbed.h"

ABSL_FLAG(std::string, kubeconfig, "",
          "kubeconfig of an existing cluster (default: start a test bed)");
ABSL_FLAG(int, objects, 1000, "objects to create, update and delete");
ABSL_FLAG(int, writers, 4, "concurrent writer threads");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(180), "bound of each phase");

namespace mcl::kube {
namespace {

struct Phase {
  std::string name;
  int events = 0;
  absl::Duration elapsed;
  absl::Duration write_elapsed;
  absl::Duration
      client_cpu;  // user+system CPU of this process during the phase
  std::vector<absl::Duration> latencies;
};

absl::Duration ProcessCpu() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return absl::DurationFromTimeval(u.ru_utime) +
         absl::DurationFromTimeval(u.ru_stime);
}

absl::Duration Percentile(std::vector<absl::Duration> v, double p) {
  if (v.empty()) return absl::ZeroDuration();
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1,
                      static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

std::string Ms(absl::Duration d) {
  return absl::StrFormat("%.2f ms", absl::ToDoubleMilliseconds(d));
}

class Bench {
 public:
  explicit Bench(KubeClient* client) : client_(client), leases_(client) {}

  int Run() {
    int n = absl::GetFlag(FLAGS_objects);
    run_ = absl::StrCat("bench-", absl::ToUnixMillis(absl::Now()));
    InformerOptions o;
    o.namespace_ = "default";
    o.label_selector = "bench=" + run_;
    TypedInformer<MultiClusterLease> inf(
        client_, o,
        {[this](const MultiClusterLease& l) { Seen(l.metadata.name, 0); },
         [this](const MultiClusterLease&, const MultiClusterLease& l) {
           Seen(l.metadata.name, 1);
         },
         [this](const MultiClusterLease& l) { Seen(l.metadata.name, 2); }});
    inf.Start();
    if (!inf.WaitForSync(absl::Seconds(30))) {
      fprintf(stderr, "informer did not sync: %s\n",
              inf.untyped().LastError().ToString().c_str());
      return 1;
    }
    std::string rv_before = inf.LastSyncResourceVersion();
    std::vector<Phase> phases;
    for (int kind = 0; kind < 3; ++kind) {
      Phase p = Write(kind, n, inf);
      phases.push_back(p);
      if (p.events < n) {
        fprintf(stderr,
                "phase %s: cache saw %d of %d changes within the timeout\n",
                p.name.c_str(), p.events, n);
        break;
      }
    }
    inf.Stop();
    Phase replay = Replay(rv_before, 3 * n);
    phases.push_back(replay);

    printf(
        "\nwatch into the informer cache: %d objects, %d writers, apiserver "
        "%s\n",
        n, absl::GetFlag(FLAGS_writers), client_->config().server.c_str());
    printf(
        "| phase | changes | writes done | cache complete | events/s into "
        "cache | write→handler p50 | p99 | client CPU per event |\n");
    printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (const Phase& p : phases) {
      double rate = p.events / absl::ToDoubleSeconds(p.elapsed);
      std::string p50 =
          p.latencies.empty() ? "-" : Ms(Percentile(p.latencies, 0.5));
      std::string p99 =
          p.latencies.empty() ? "-" : Ms(Percentile(p.latencies, 0.99));
      std::string writes =
          p.write_elapsed == absl::ZeroDuration() ? "-" : Ms(p.write_elapsed);
      std::string cpu =
          absl::StrFormat("%.0f µs", absl::ToDoubleMicroseconds(p.client_cpu) /
                                         std::max(1, p.events));
      printf("| %s | %d | %s | %s | %.0f | %s | %s | %s |\n", p.name.c_str(),
             p.events, writes.c_str(), Ms(p.elapsed).c_str(), rate, p50.c_str(),
             p99.c_str(), cpu.c_str());
    }
    return ConnectionCost();
  }

  // CPU of this process per new TLS connection (a new client, one GET): as
  // cpprestsdk does it by default, then with SkipUnusedDefaultCaFile.
  int ConnectionCost() {
    constexpr int kConnections = 20;
    const char* preset = std::getenv("SSL_CERT_FILE");
    printf(
        "\nnew TLS connection to the apiserver (new client + one GET), "
        "SSL_CERT_FILE=%s\n",
        preset != nullptr ? preset : "(unset: the system bundle)");
    printf("| OpenSSL default CA file | client CPU per connection |\n");
    printf("| --- | ---: |\n");
    for (bool skip : {false, true}) {
      if (skip) SkipUnusedDefaultCaFile(client_->config());
      absl::Duration cpu0 = ProcessCpu();
      for (int i = 0; i < kConnections; ++i) {
        auto c = KubeClient::Create(client_->config());
        if (!c.ok()) {
          fprintf(stderr, "client: %s\n", c.status().ToString().c_str());
          return 1;
        }
        auto got = TypedClient<MultiClusterLease>(c->get()).Get(
            "default", "no-such-lease");
        if (!got.ok() && !absl::IsNotFound(got.status())) {
          fprintf(stderr, "GET: %s\n", got.status().ToString().c_str());
          return 1;
        }
      }
      printf("| %s | %.2f ms |\n",
             skip ? "skipped (SSL_CERT_FILE=/dev/null)" : "loaded (default)",
             absl::ToDoubleMilliseconds(ProcessCpu() - cpu0) / kConnections);
    }
    return 0;
  }

 private:
  // kind 0 create, 1 update, 2 delete.
  Phase Write(int kind, int n, TypedInformer<MultiClusterLease>& inf) {
    static const char* kNames[] = {"create", "update", "delete"};
    {
      absl::MutexLock l(&mu_);
      kind_ = kind;
      issued_.clear();
      latencies_.clear();
      seen_ = 0;
    }
    int writers = std::max(1, absl::GetFlag(FLAGS_writers));
    std::atomic<int> next{0}, failed{0};
    absl::Time t0 = absl::Now();
    absl::Duration cpu0 = ProcessCpu();
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
      threads.emplace_back([&] {
        for (int i = next++; i < n; i = next++) {
          std::string name = absl::StrCat(run_, "-", i);
          {
            absl::MutexLock l(&mu_);
            issued_[name] = absl::Now();
          }
          absl::Status s;
          if (kind == 0) {
            MultiClusterLease m;
            m.metadata.name = name;
            m.metadata.namespace_ = "default";
            m.metadata.labels["bench"] = run_;
            m.spec.holder_identity = "writer";
            m.spec.lease_duration_seconds = 15;
            s = leases_.Create(m).status();
          } else if (kind == 1) {
            s = leases_
                    .MergePatch(
                        "default", name,
                        Json::parse(
                            R"({"spec":{"renewTime":"2026-11-23T01:00:00.000001Z"}})"))
                    .status();
          } else {
            s = leases_.Delete("default", name);
          }
          if (!s.ok()) {
            if (failed++ < 3)
              fprintf(stderr, "%s: %s\n", kNames[kind], s.ToString().c_str());
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    absl::Duration write_elapsed = absl::Now() - t0;
    int want = n - failed;
    inf.WaitUntil(
        [&] {
          absl::MutexLock l(&mu_);
          return seen_ >= want;
        },
        absl::GetFlag(FLAGS_timeout));
    Phase p;
    p.client_cpu = ProcessCpu() - cpu0;
    absl::MutexLock l(&mu_);
    p.name = kNames[kind];
    p.events = seen_;
    p.elapsed = last_seen_ - t0;
    p.write_elapsed = write_elapsed;
    p.latencies = latencies_;
    return p;
  }

  void Seen(const std::string& name, int kind) {
    absl::Time now = absl::Now();
    absl::MutexLock l(&mu_);
    if (kind != kind_) return;
    ++seen_;
    last_seen_ = now;
    auto it = issued_.find(name);
    if (it != issued_.end()) latencies_.push_back(now - it->second);
  }

  // A raw watch from before the creates: the apiserver replays every change
  // from its watch cache.
  Phase Replay(const std::string& rv, int want) {
    Phase p;
    p.name = "replay (watch from the RV before the creates)";
    std::map<std::string, ObjectPtr> cache;
    WatchOptions wo;
    wo.resource_version = rv;
    wo.label_selector = "bench=" + run_;
    absl::Time t0 = absl::Now();
    absl::Duration cpu0 = ProcessCpu();
    absl::Status s = client_->Watch(
        MultiClusterLeaseResource(), "default", wo, [&](WatchEvent ev) {
          if (ev.type == WatchEvent::Type::kBookmark) return true;
          auto lease = MultiClusterLease::FromJson(
              ev.object);  // the typed handlers' decode cost
          if (!lease.ok()) return false;
          std::string key = ObjectKeyOf(ev.object);
          if (ev.type == WatchEvent::Type::kDeleted) {
            cache.erase(key);
          } else {
            cache[key] = std::make_shared<const Json>(std::move(ev.object));
          }
          return ++p.events < want;
        });
    p.elapsed = absl::Now() - t0;
    p.client_cpu = ProcessCpu() - cpu0;
    if (!s.ok()) fprintf(stderr, "replay: %s\n", s.ToString().c_str());
    return p;
  }

  KubeClient* client_;
  MultiClusterLeaseClient leases_;
  std::string run_;
  absl::Mutex mu_;
  int kind_ = -1;
  int seen_ = 0;
  absl::Time last_seen_;
  std::map<std::string, absl::Time> issued_;
  std::vector<absl::Duration> latencies_;
};

}  // namespace
}  // namespace mcl::kube

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::unique_ptr<mcl::testbed::Testbed> tb;
  std::string kubeconfig = absl::GetFlag(FLAGS_kubeconfig);
  if (kubeconfig.empty()) {
    auto started = mcl::testbed::Testbed::Start(1);
    if (!started.ok()) {
      fprintf(stderr, "test bed: %s\n", started.status().ToString().c_str());
      return 1;
    }
    tb = std::move(*started);
    kubeconfig = tb->kubeconfig(0, mcl::testbed::Identity::kAdmin);
  }
  auto cfg = mcl::kube::LoadKubeconfigFile(kubeconfig);
  if (!cfg.ok()) {
    fprintf(stderr, "%s\n", cfg.status().ToString().c_str());
    return 1;
  }
  auto client = mcl::kube::KubeClient::Create(*cfg);
  if (!client.ok()) {
    fprintf(stderr, "%s\n", client.status().ToString().c_str());
    return 1;
  }
  return mcl::kube::Bench(client->get()).Run();
}
