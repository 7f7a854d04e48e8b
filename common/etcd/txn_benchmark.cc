// etcd Txn latency on loopback through mcl::etcd (docs/benchmarks.md, "etcd
// client").
//
//   bazel run //common/etcd:txn_benchmark -- [--count=2000] [--threads=1]
//   [--endpoint=HOST:PORT]
//
// Without --endpoint it starts its own etcd (Debian's /usr/bin/etcd, data in
// /tmp). Measures the two lock-key transactions the controller issues:
// CreateIfAbsent on a free key (compare holds, a write: etcd commits and
// fsyncs) and CreateIfAbsent on a held key (compare fails, the Else branch
// reads the holder: no write). Prints p50/p90/p99/max and throughput for each.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/etcd/client.h"
#include "common/etcd/kv.h"
#include "common/etcd/testing/etcd_process.h"
#include "common/etcd/txn.h"
#include "testbed/cc/subprocess.h"

namespace mcl::etcd {
namespace {

struct Args {
  int count = 2000;
  int threads = 1;
  std::string endpoint;
};

bool Parse(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto value = [&](const char* name) -> const char* {
      size_t n = strlen(name);
      return s.compare(0, n, name) == 0 ? s.c_str() + n : nullptr;
    };
    if (const char* v = value("--count=")) {
      if (!absl::SimpleAtoi(v, &a->count) || a->count <= 0) return false;
    } else if (const char* v = value("--threads=")) {
      if (!absl::SimpleAtoi(v, &a->threads) || a->threads <= 0) return false;
    } else if (const char* v = value("--endpoint=")) {
      a->endpoint = v;
    } else {
      return false;
    }
  }
  return true;
}

void Report(const char* name, std::vector<absl::Duration> lat,
            absl::Duration wall) {
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    size_t i =
        static_cast<size_t>(p * static_cast<double>(lat.size() - 1) + 0.5);
    return absl::ToDoubleMilliseconds(lat[i]);
  };
  printf(
      "%-34s n=%zu  p50=%.3f ms  p90=%.3f ms  p99=%.3f ms  max=%.3f ms  %.0f "
      "txn/s\n",
      name, lat.size(), pct(0.50), pct(0.90), pct(0.99),
      absl::ToDoubleMilliseconds(lat.back()),
      static_cast<double>(lat.size()) / absl::ToDoubleSeconds(wall));
}

// Runs `count` txns split over `threads`, each built by make(i); returns
// per-txn latencies.
template <typename Make>
bool Run(KV* kv, const Args& a, const char* name, Make make) {
  std::vector<std::vector<absl::Duration>> per(static_cast<size_t>(a.threads));
  std::vector<std::string> errors(static_cast<size_t>(a.threads));
  Clock* clock = Clock::Real();
  absl::Duration t0 = clock->Monotonic();
  std::vector<std::thread> ts;
  for (int t = 0; t < a.threads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = t; i < a.count; i += a.threads) {
        Txn txn = make(i);
        absl::Duration s = clock->Monotonic();
        auto r = kv->Commit(txn);
        per[static_cast<size_t>(t)].push_back(clock->Monotonic() - s);
        if (!r.ok()) {
          errors[static_cast<size_t>(t)] = r.status().ToString();
          return;
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  absl::Duration wall = clock->Monotonic() - t0;
  for (const auto& e : errors) {
    if (!e.empty()) {
      fprintf(stderr, "%s: %s\n", name, e.c_str());
      return false;
    }
  }
  std::vector<absl::Duration> all;
  for (auto& p : per) all.insert(all.end(), p.begin(), p.end());
  Report(name, std::move(all), wall);
  return true;
}

int Main(int argc, char** argv) {
  Args a;
  if (!Parse(argc, argv, &a)) {
    fprintf(stderr,
            "usage: txn_benchmark [--count=N] [--threads=T] "
            "[--endpoint=HOST:PORT]\n");
    return 2;
  }
  std::unique_ptr<testing::EtcdProcess> etcd;
  if (a.endpoint.empty()) {
    auto e = testing::EtcdProcess::Start();
    if (!e.ok()) {
      fprintf(stderr, "starting etcd: %s\n", e.status().ToString().c_str());
      return 1;
    }
    etcd = std::move(*e);
    a.endpoint = etcd->address();
  }
  ClientConfig config;
  config.endpoints = {a.endpoint};
  auto client = Client::Create(config);
  if (!client.ok()) {
    fprintf(stderr, "%s\n", client.status().ToString().c_str());
    return 1;
  }
  KV kv(client->get());
  const std::string run =
      absl::StrCat("/bench/", absl::ToUnixNanos(absl::Now()), "/");
  printf("etcd %s, %d txns per kind, %d thread(s)\n", a.endpoint.c_str(),
         a.count, a.threads);
  // Warm up the connection and etcd.
  for (int i = 0; i < 100; ++i) {
    if (!kv.Commit(CreateIfAbsent(absl::StrCat(run, "warm/", i), "x", 0)).ok())
      return 1;
  }
  bool ok = Run(&kv, a, "create-if-absent (wins, write)", [&](int i) {
    return CreateIfAbsent(absl::StrCat(run, "lock/", i), "cluster-a/pod-1", 0);
  });
  ok = ok && Run(&kv, a, "create-if-absent (held, read)", [&](int i) {
         return CreateIfAbsent(absl::StrCat(run, "lock/", i), "cluster-b/pod-2",
                               0);
       });
  if (etcd != nullptr) {
    const std::string dir = etcd->dir();
    etcd.reset();
    (void)mcl::testbed::RunCommand({"rm", "-rf", dir}, absl::Seconds(30));
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace mcl::etcd

int main(int argc, char** argv) { return mcl::etcd::Main(argc, argv); }
