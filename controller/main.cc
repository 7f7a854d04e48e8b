// mcl-controller: the election controller of one cluster (docs/design.md).
// Flags below; --help.
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/stop_flag.h"
#include "common/stop_signals.h"
#include "controller/controller.h"

namespace {

struct Flag {
  const char* name;
  const char* help;
  std::string value;
};

std::vector<Flag> Flags() {
  const char* ns = getenv("POD_NAMESPACE");
  char host[256] = "controller";
  gethostname(host, sizeof(host) - 1);
  return {
      {"kubeconfig",
       "Path of a kubeconfig file. Empty: in-cluster config (service account).",
       ""},
      {"cluster-name",
       "Name of this cluster, written into etcd values and CR status. "
       "Required.",
       ""},
      {"etcd-endpoints",
       "Comma-separated etcd endpoints (host:port or http(s)://host:port). "
       "Required.",
       ""},
      {"etcd-ca",
       "PEM file of the CA that signs etcd's server certificate (enables TLS).",
       ""},
      {"etcd-cert", "PEM client certificate for etcd mTLS (with --etcd-key).",
       ""},
      {"etcd-key", "PEM private key of --etcd-cert.", ""},
      {"etcd-username", "etcd user (with --etcd-password-file).", ""},
      {"etcd-password-file",
       "File whose content (trimmed) is the etcd user's password.", ""},
      {"key-prefix",
       "etcd key prefix; a lock's key is <prefix>/<namespace>/<name>.",
       "/mcl/locks"},
      {"session-ttl",
       "TTL of the controller's etcd session lease (>= 1s). Kept alive every "
       "TTL/3; "
       "a crashed controller's locks are free after it.",
       "10s"},
      {"namespace",
       "Namespace of this controller's heartbeat Lease and replica-election "
       "Lease. "
       "Default: $POD_NAMESPACE, else mcl-system.",
       ns != nullptr && *ns ? ns : "mcl-system"},
      {"watch-namespaces",
       "Comma-separated namespaces whose MultiClusterLeases are served. Empty: "
       "all.",
       ""},
      {"identity",
       "This replica's identity in the election Lease. Default: "
       "<hostname>_<pid>.",
       absl::StrCat(host, "_", getpid())},
      {"metrics-address",
       "host:port for /metrics, /healthz, /readyz (port 0: any; the bound port "
       "is logged).",
       "127.0.0.1:0"},
      {"election-lease-duration",
       "Duration of the replica-election Lease; a standby takes over "
       "within it. 0: 3 x session TTL, clamped to [3s, 15s].",
       "0s"},
      {"default-lease-duration",
       "Candidate staleness when spec.leaseDurationSeconds is absent.", "15s"},
      {"shutdown-timeout",
       "On SIGTERM, how long to wait for candidates' acks before revoking the "
       "session (which releases the rest). At least TTL*(1+1%) + 150ms, the "
       "time after which no local candidate can still count itself leader "
       "(heartbeats stop at SIGTERM).",
       "0s"},
      {"workers", "Locks reconciled in parallel.", "8"},
  };
}

void Usage(const std::vector<Flag>& flags) {
  fprintf(stdout,
          "mcl-controller: multi-cluster leader election controller for one "
          "cluster.\n"
          "Watches MultiClusterLeases, contends for one etcd key per lock on "
          "behalf of the live\n"
          "local candidate, and writes the outcome into each lease's "
          "status.\n\nFlags:\n");
  for (const auto& f : flags) {
    fprintf(stdout, "  --%s (default \"%s\")\n      %s\n", f.name,
            f.value.c_str(), f.help);
  }
}

bool ParseDuration(const std::string& flag, const std::string& v,
                   absl::Duration* d) {
  if (absl::ParseDuration(v, d)) return true;
  fprintf(stderr, "--%s: not a duration: \"%s\" (e.g. 2s, 500ms)\n",
          flag.c_str(), v.c_str());
  return false;
}

std::vector<std::string> SplitList(const std::string& v) {
  std::vector<std::string> out;
  for (absl::string_view p : absl::StrSplit(v, ',', absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(p));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // glibc gives each busy thread its own malloc arena; with the HTTP client's
  // thread pool that fragments the informer's many small JSON nodes across
  // arenas. Two arenas keep RSS close to the live heap (docs/benchmarks.md,
  // "Controller").
  mallopt(M_ARENA_MAX, 2);
  // Debian builds abseil without NDEBUG, so every absl::Mutex (ours and
  // gRPC's) runs deadlock detection, a debug aid. Tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<Flag> flags = Flags();
  std::map<std::string, Flag*> by_name;
  for (auto& f : flags) by_name[f.name] = &f;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      Usage(flags);
      return 0;
    }
    if (arg.rfind("--", 0) != 0) {
      fprintf(stderr, "unexpected argument \"%s\" (see --help)\n", arg.c_str());
      return 2;
    }
    std::string name = arg.substr(2), value;
    size_t eq = name.find('=');
    bool has_value = eq != std::string::npos;
    if (has_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      fprintf(stderr, "unknown flag --%s (see --help)\n", name.c_str());
      return 2;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        fprintf(stderr, "--%s needs a value\n", name.c_str());
        return 2;
      }
      value = argv[++i];
    }
    it->second->value = value;
  }
  auto get = [&](const char* n) { return by_name[n]->value; };

  mcl::controller::ControllerOptions o;
  o.kubeconfig = get("kubeconfig");
  o.cluster = get("cluster-name");
  o.etcd_endpoints = SplitList(get("etcd-endpoints"));
  o.etcd_ca = get("etcd-ca");
  o.etcd_cert = get("etcd-cert");
  o.etcd_key = get("etcd-key");
  o.etcd_username = get("etcd-username");
  if (!get("etcd-password-file").empty()) {
    std::ifstream in(get("etcd-password-file"));
    if (!in) {
      fprintf(stderr, "--etcd-password-file: cannot read %s\n",
              get("etcd-password-file").c_str());
      return 2;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    o.etcd_password = std::string(absl::StripAsciiWhitespace(ss.str()));
  }
  o.key_prefix = get("key-prefix");
  o.namespace_ = get("namespace");
  o.watch_namespaces = SplitList(get("watch-namespaces"));
  o.identity = get("identity");
  o.metrics_address = get("metrics-address");
  if (!ParseDuration("session-ttl", get("session-ttl"), &o.session_ttl) ||
      !ParseDuration("election-lease-duration", get("election-lease-duration"),
                     &o.election_lease_duration) ||
      !ParseDuration("default-lease-duration", get("default-lease-duration"),
                     &o.default_lease_duration) ||
      !ParseDuration("shutdown-timeout", get("shutdown-timeout"),
                     &o.shutdown_timeout)) {
    return 2;
  }
  if (!absl::SimpleAtoi(get("workers"), &o.workers) || o.workers < 1) {
    fprintf(stderr, "--workers: want a positive integer\n");
    return 2;
  }
  if (o.key_prefix.empty() || o.key_prefix[0] != '/') {
    fprintf(stderr, "--key-prefix must start with /\n");
    return 2;
  }

  mcl::BlockStopSignals();  // before any thread starts

  auto controller = mcl::controller::Controller::Create(o);
  if (!controller.ok()) {
    mcl::LogError("cannot start",
                  {{"error", std::string(controller.status().message())}});
    return 2;
  }
  // Never freed: the signal thread may still be in sigwait when main returns.
  static auto* stop = new mcl::StopFlag;
  std::thread([] {
    const int sig = mcl::WaitForStopSignal();
    mcl::LogInfo("signal received; releasing every lock",
                 {{"signal", absl::StrCat(sig)}});
    stop->Set();
  }).detach();
  return (*controller)->Run(stop);
}
