// mcl-controller: the election controller of one cluster (docs/design.md).
// Flags are absl flags; on the command line they are spelled with dashes
// (--session-ttl), as documented in controller/README.md and --help.
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/contract.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/stop_flag.h"
#include "common/stop_signals.h"
#include "controller/controller.h"

namespace {

std::string DefaultNamespace() {
  const char* ns = getenv("POD_NAMESPACE");
  return ns != nullptr && *ns ? ns : "mcl-system";
}

std::string DefaultIdentity() {
  char host[256] = "controller";
  gethostname(host, sizeof(host) - 1);
  return absl::StrCat(host, "_", getpid());
}

}  // namespace

ABSL_FLAG(std::string, kubeconfig, "",
          "Path of a kubeconfig file. Empty: in-cluster config (service "
          "account).");
ABSL_FLAG(std::string, cluster_name, "",
          "Name of this cluster, written into etcd values and CR status. "
          "Required.");
ABSL_FLAG(std::string, etcd_endpoints, "",
          "Comma-separated etcd endpoints (host:port or http(s)://host:port). "
          "Required.");
ABSL_FLAG(std::string, etcd_ca, "",
          "PEM file of the CA that signs etcd's server certificate (enables "
          "TLS).");
ABSL_FLAG(std::string, etcd_cert, "",
          "PEM client certificate for etcd mTLS (with --etcd-key).");
ABSL_FLAG(std::string, etcd_key, "", "PEM private key of --etcd-cert.");
ABSL_FLAG(std::string, etcd_username, "",
          "etcd user (with --etcd-password-file).");
ABSL_FLAG(std::string, etcd_password_file, "",
          "File whose content (trimmed) is the etcd user's password.");
ABSL_FLAG(std::string, key_prefix, mcl::contract::kDefaultKeyPrefix,
          "etcd key prefix; a lock's key is <prefix>/<namespace>/<name>.");
ABSL_FLAG(absl::Duration, session_ttl, absl::Seconds(10),
          "TTL of the controller's etcd session lease (1s to 1h). Kept alive "
          "every TTL/3; a crashed controller's locks are free after it.");
ABSL_FLAG(std::string, namespace, DefaultNamespace(),
          "Namespace of this controller's heartbeat Lease and "
          "replica-election Lease. Default: $POD_NAMESPACE, else mcl-system.");
ABSL_FLAG(std::string, watch_namespaces, "",
          "Comma-separated namespaces whose MultiClusterLeases are served. "
          "Empty: all.");
ABSL_FLAG(std::string, identity, DefaultIdentity(),
          "This replica's identity in the election Lease. Default: "
          "<hostname>_<pid>.");
ABSL_FLAG(std::string, metrics_address, "127.0.0.1:0",
          "HOST:PORT (comma-separated for several) for /metrics, /healthz, "
          "/readyz: an IPv4 address, [an IPv6 address], or localhost for "
          "both loopbacks. Port 0: any (the bound port is logged).");
ABSL_FLAG(absl::Duration, election_lease_duration, absl::ZeroDuration(),
          "Duration of the replica-election Lease; a standby takes over "
          "within it. 0: 3 x session TTL, clamped to [3s, 15s].");
ABSL_FLAG(absl::Duration, default_lease_duration, absl::Seconds(15),
          "Candidate staleness when spec.leaseDurationSeconds is absent.");
ABSL_FLAG(absl::Duration, shutdown_timeout, absl::ZeroDuration(),
          "On SIGTERM, how long to wait for candidates' acks before revoking "
          "the session (which releases the rest). At least TTL*(1+1%) + "
          "150ms, the time after which no local candidate can still count "
          "itself leader (heartbeats stop at SIGTERM).");
ABSL_FLAG(int, workers, 8, "Locks reconciled in parallel.");

namespace {

// The flags in --help order (absl names; spelled with dashes).
mcl::flags::FlagSet Flags() {
  mcl::flags::FlagSet set;
  set.names = {
      "kubeconfig",
      "cluster_name",
      "etcd_endpoints",
      "etcd_ca",
      "etcd_cert",
      "etcd_key",
      "etcd_username",
      "etcd_password_file",
      "key_prefix",
      "session_ttl",
      "namespace",
      "watch_namespaces",
      "identity",
      "metrics_address",
      "election_lease_duration",
      "default_lease_duration",
      "shutdown_timeout",
      "workers",
  };
  return set;
}

constexpr char kAbout[] =
    "mcl-controller: multi-cluster leader election controller for one "
    "cluster.\n"
    "Watches MultiClusterLeases, contends for one etcd key per lock on "
    "behalf of the live\n"
    "local candidate, and writes the outcome into each lease's status.";

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
  // Exit 0 after --help, 2 for bad input (with what to fix).
  if (const int code = mcl::flags::ParseMain(Flags(), argc, argv, kAbout,
                                             /*help_code=*/0,
                                             /*error_code=*/2);
      code >= 0) {
    return code;
  }

  mcl::controller::ControllerOptions o;
  o.kubeconfig = absl::GetFlag(FLAGS_kubeconfig);
  o.cluster = absl::GetFlag(FLAGS_cluster_name);
  o.etcd_endpoints = SplitList(absl::GetFlag(FLAGS_etcd_endpoints));
  o.etcd_ca = absl::GetFlag(FLAGS_etcd_ca);
  o.etcd_cert = absl::GetFlag(FLAGS_etcd_cert);
  o.etcd_key = absl::GetFlag(FLAGS_etcd_key);
  o.etcd_username = absl::GetFlag(FLAGS_etcd_username);
  const std::string password_file = absl::GetFlag(FLAGS_etcd_password_file);
  if (!password_file.empty()) {
    std::ifstream in(password_file);
    if (!in) {
      fprintf(stderr, "--etcd-password-file: cannot read %s\n",
              password_file.c_str());
      return 2;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    o.etcd_password = std::string(absl::StripAsciiWhitespace(ss.str()));
  }
  o.key_prefix = absl::GetFlag(FLAGS_key_prefix);
  o.namespace_ = absl::GetFlag(FLAGS_namespace);
  o.watch_namespaces = SplitList(absl::GetFlag(FLAGS_watch_namespaces));
  o.identity = absl::GetFlag(FLAGS_identity);
  o.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  o.session_ttl = absl::GetFlag(FLAGS_session_ttl);
  o.election_lease_duration = absl::GetFlag(FLAGS_election_lease_duration);
  o.default_lease_duration = absl::GetFlag(FLAGS_default_lease_duration);
  o.shutdown_timeout = absl::GetFlag(FLAGS_shutdown_timeout);
  o.workers = absl::GetFlag(FLAGS_workers);
  if (o.workers < 1) {
    fprintf(stderr, "--workers: want a positive integer\n");
    return 2;
  }
  if (o.key_prefix.empty() || o.key_prefix[0] != '/') {
    fprintf(stderr, "--key-prefix must start with /\n");
    return 2;
  }

  mcl::BlockStopSignals();  // before any thread starts

  mcl::Clock* clock = mcl::Clock::Real();
  auto controller = mcl::controller::Controller::Create(o, clock);
  if (!controller.ok()) {
    mcl::LogError("cannot start",
                  {{"error", std::string(controller.status().message())}});
    return 2;
  }
  // Never freed: the signal thread may still be in sigwait when main returns.
  static auto* stop = new mcl::StopFlag(clock);
  std::thread([] {
    const int sig = mcl::WaitForStopSignal();
    mcl::LogInfo("signal received; releasing every lock",
                 {{"signal", absl::StrCat(sig)}});
    stop->Set();
  }).detach();
  return (*controller)->Run(stop);
}
