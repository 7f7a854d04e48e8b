// mcl-sidecar: serves mcl.v1.Election on loopback and keeps this pod's
// candidacies in the local MultiClusterLease objects. See sidecar/election.h
// for the structure and sidecar/leadership.h for the safety argument
// (docs/design.md).
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <malloc.h>
#include <pplx/threadpool.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/log.h"
#include "common/stop_signals.h"
#include "sidecar/election.h"
#include "sidecar/flags.h"
#include "sidecar/health_service.h"
#include "sidecar/http_server.h"
#include "sidecar/lease_store.h"
#include "sidecar/service.h"
#include "sidecar/validate.h"
#include "sidecar/watches.h"

namespace mcl::sidecar {
namespace {

std::string EscapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out.append("\\n");
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string MetricsText(Election& e) {
  auto m = e.Metrics();
  std::string out;
  absl::StrAppend(&out,
                  "# HELP mcl_sidecar_is_leader 1 while a campaign on this "
                  "sidecar is told LEADER "
                  "for the lock.\n# TYPE mcl_sidecar_is_leader gauge\n");
  for (auto& [lock, v] : m) {
    absl::StrAppend(&out, "mcl_sidecar_is_leader{lock=\"", EscapeLabel(lock),
                    "\"} ", v.is_leader ? 1 : 0, "\n");
  }
  absl::StrAppend(&out,
                  "# HELP mcl_sidecar_leader_transitions_total LEADER events "
                  "sent to campaigns.\n"
                  "# TYPE mcl_sidecar_leader_transitions_total counter\n");
  for (auto& [lock, v] : m) {
    absl::StrAppend(&out, "mcl_sidecar_leader_transitions_total{lock=\"",
                    EscapeLabel(lock), "\"} ", v.transitions, "\n");
  }
  absl::StrAppend(
      &out,
      "# HELP mcl_sidecar_renew_errors_total Spec writes the apiserver did not "
      "accept "
      "(conflicts excluded).\n# TYPE mcl_sidecar_renew_errors_total counter\n");
  for (auto& [lock, v] : m) {
    absl::StrAppend(&out, "mcl_sidecar_renew_errors_total{lock=\"",
                    EscapeLabel(lock), "\"} ", v.renew_errors, "\n");
  }
  return out;
}

int Run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto flags = ParseFlags(args);
  if (!flags.ok()) {
    std::fprintf(stderr, "mcl-sidecar: %s\n",
                 std::string(flags.status().message()).c_str());
    return 2;
  }
  if (flags->help) {
    std::cout << Usage();
    return 0;
  }
  BlockStopSignals();  // before any thread starts; this thread waits for them
  // Memory budget (15 MiB): cpprestsdk's shared pool would start 40 threads and
  // glibc one malloc arena per busy thread; a sidecar needs neither. Both must
  // be set before any thread starts.
  mallopt(M_ARENA_MAX, 2);
  crossplat::threadpool::initialize_with_threads(2);
  // Debian builds abseil without NDEBUG, so every absl::Mutex (ours and
  // gRPC's) runs deadlock detection, a debug aid: ~2% of an idle sidecar's CPU.
  // Tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  auto config = kube::LoadConfig(flags->kubeconfig);
  if (!config.ok()) {
    LogError("cannot load the Kubernetes configuration",
             {{"error", std::string(config.status().message())}});
    return 1;
  }
  kube::SkipUnusedDefaultCaFile(*config);
  kube::ClientOptions copts;
  copts.request_timeout = flags->request_timeout;
  copts.user_agent = "mcl-sidecar";
  auto client = kube::KubeClient::Create(*config, copts);
  if (!client.ok()) {
    LogError("cannot create the Kubernetes client",
             {{"error", std::string(client.status().message())}});
    return 1;
  }

  ElectionOptions eopts;
  eopts.default_namespace = flags->namespace_;
  if (eopts.default_namespace.empty()) {
    const char* pod_ns = std::getenv("POD_NAMESPACE");
    eopts.default_namespace =
        pod_ns != nullptr && *pod_ns != '\0' ? pod_ns : config->namespace_;
  }
  if (eopts.default_namespace.empty()) eopts.default_namespace = "default";
  eopts.default_identity =
      flags->identity.empty() ? IdentityFromEnv() : flags->identity;
  eopts.cluster = flags->cluster_name;
  eopts.default_lease_duration = flags->lease_duration;
  Election election(eopts, NewKubeLeaseStore(client->get()),
                    NewInformerWatchFactory(client->get()));
  ElectionService service(&election);
  HealthService health({"mcl.v1.Election"});

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(flags->listen, grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(service.service());
  builder.RegisterService(health.service());
  std::unique_ptr<grpc::ServerCompletionQueue> cq =
      builder.AddCompletionQueue();
  // A unix socket is born owner-only (whatever the container's umask), then
  // given --socket-mode: no moment in which others may connect.
  const std::string socket_path = UnixSocketPath(flags->listen);
  const mode_t old_umask = umask(0177);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  umask(old_umask);
  if (server == nullptr || (port == 0 && socket_path.empty())) {
    LogError("cannot serve gRPC", {{"listen", flags->listen}});
    return 1;
  }
  if (!socket_path.empty() &&
      chmod(socket_path.c_str(), static_cast<mode_t>(flags->socket_mode)) !=
          0) {
    LogError("cannot set the unix socket's permissions",
             {{"path", socket_path}, {"error", std::strerror(errno)}});
    server->Shutdown();
    return 1;
  }
  // Never destroyed: the process ends with _Exit (below) while calls may
  // still be pending on the queue.
  auto* loop = new CompletionLoop(std::move(cq));
  auto* workers = new Workers(4);
  service.Start(loop, workers);
  health.Start(loop);
  health.SetServing(true);

  std::unique_ptr<HttpServer> http;
  if (!flags->metrics_address.empty()) {
    auto h = HttpServer::Start(
        flags->metrics_address, [&election](const std::string& path) {
          if (path == "/metrics") {
            return HttpReply{200, "text/plain; version=0.0.4; charset=utf-8",
                             MetricsText(election)};
          }
          if (path == "/healthz") {
            if (election.Healthy()) return HttpReply{200, "text/plain", "ok\n"};
            return HttpReply{503, "text/plain",
                             "the kube-apiserver watch is failing\n"};
          }
          return HttpReply{404, "text/plain",
                           "not found; try /metrics or /healthz\n"};
        });
    if (!h.ok()) {
      LogError("cannot serve metrics",
               {{"error", std::string(h.status().message())}});
      return 1;
    }
    http = std::move(*h);
  }
  LogInfo("serving",
          {{"listen", flags->listen},
           {"port", absl::StrCat(port)},
           {"namespace", eopts.default_namespace},
           {"identity", eopts.default_identity},
           {"apiserver", config->server},
           {"metrics_port", http ? absl::StrCat(http->port()) : ""}});

  const int sig = WaitForStopSignal();
  LogInfo("signal received; resigning every campaign",
          {{"signal", absl::StrCat(sig)}});
  health.SetServing(false);
  election.Shutdown(flags->shutdown_grace);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  http.reset();
  LogInfo("exiting");
  // Skip destructors of the informers' and gRPC's threads: everything that
  // matters is written.
  std::fflush(nullptr);
  std::_Exit(0);
}

}  // namespace
}  // namespace mcl::sidecar

int main(int argc, char** argv) { return mcl::sidecar::Run(argc, argv); }
