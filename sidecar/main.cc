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
#include "common/http_server.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/log.h"
#include "common/stop_signals.h"
#include "sidecar/election.h"
#include "sidecar/flags.h"
#include "sidecar/health_service.h"
#include "sidecar/http_endpoints.h"
#include "sidecar/lease_store.h"
#include "sidecar/service.h"
#include "sidecar/validate.h"
#include "sidecar/watches.h"

namespace mcl::sidecar {
namespace {

// Process-wide settings; every one must be made before any thread starts.
void ConfigureProcess() {
  BlockStopSignals();  // the main thread waits for them (ShutDown)
  // Memory budget (15 MiB): cpprestsdk's shared pool would start 40 threads and
  // glibc one malloc arena per busy thread; a sidecar needs neither.
  mallopt(M_ARENA_MAX, 2);
  crossplat::threadpool::initialize_with_threads(2);
  // Debian builds abseil without NDEBUG, so every absl::Mutex (ours and
  // gRPC's) runs deadlock detection, a debug aid: ~2% of an idle sidecar's CPU.
  // Tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

// The Kubernetes client, or null (logged) when the config cannot be loaded
// or used.
std::unique_ptr<kube::KubeClient> MakeClient(const SidecarFlags& flags) {
  auto config = kube::LoadConfig(flags.kubeconfig);
  if (!config.ok()) {
    LogError("cannot load the Kubernetes configuration",
             {{"error", std::string(config.status().message())}});
    return nullptr;
  }
  kube::SkipUnusedDefaultCaFile(*config);
  kube::ClientOptions copts;
  copts.request_timeout = flags.request_timeout;
  copts.user_agent = "mcl-sidecar";
  auto client = kube::KubeClient::Create(*config, copts);
  if (!client.ok()) {
    LogError("cannot create the Kubernetes client",
             {{"error", std::string(client.status().message())}});
    return nullptr;
  }
  return std::move(*client);
}

// Defaults for campaigns that name no namespace or identity: the flags, else
// the pod's (downward API), else the kube config's namespace, else "default".
ElectionOptions ElectionOptionsFrom(const SidecarFlags& flags,
                                    const kube::Config& config) {
  ElectionOptions eopts;
  eopts.default_namespace = flags.namespace_;
  if (eopts.default_namespace.empty()) {
    const char* pod_ns = std::getenv("POD_NAMESPACE");
    eopts.default_namespace =
        pod_ns != nullptr && *pod_ns != '\0' ? pod_ns : config.namespace_;
  }
  if (eopts.default_namespace.empty()) eopts.default_namespace = "default";
  eopts.default_identity =
      flags.identity.empty() ? IdentityFromEnv() : flags.identity;
  eopts.cluster = flags.cluster_name;
  eopts.default_lease_duration = flags.lease_duration;
  return eopts;
}

struct GrpcServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // 0 on a unix socket
};

// Serves Election and Health on --listen, or returns a null server (logged).
GrpcServer ServeGrpc(const SidecarFlags& flags, ElectionService& service,
                     HealthService& health) {
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(flags.listen, grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(service.service());
  builder.RegisterService(health.service());
  std::unique_ptr<grpc::ServerCompletionQueue> cq =
      builder.AddCompletionQueue();
  // A unix socket is born owner-only (whatever the container's umask), then
  // given --socket-mode: no moment in which others may connect.
  const std::string socket_path = UnixSocketPath(flags.listen);
  const mode_t old_umask = umask(0177);
  // After the queue: on a failure below, the server goes before its queue.
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  umask(old_umask);
  if (server == nullptr || (port == 0 && socket_path.empty())) {
    LogError("cannot serve gRPC", {{"listen", flags.listen}});
    return GrpcServer{};
  }
  if (!socket_path.empty() &&
      chmod(socket_path.c_str(), static_cast<mode_t>(flags.socket_mode)) != 0) {
    LogError("cannot set the unix socket's permissions",
             {{"path", socket_path}, {"error", std::strerror(errno)}});
    server->Shutdown();
    return GrpcServer{};
  }
  // Never destroyed: the process ends with _Exit (ShutDown) while calls may
  // still be pending on the queue.
  auto* loop = new CompletionLoop(std::move(cq));
  auto* workers = new Workers(4);
  service.Start(loop, workers);
  health.Start(loop);
  health.SetServing(true);
  return GrpcServer{std::move(server), port};
}

// The metrics and apiserver-status endpoints on --metrics-address; null when
// that flag is empty.
absl::StatusOr<std::unique_ptr<HttpServer>> ServeMetrics(
    const SidecarFlags& flags, Election& election) {
  if (flags.metrics_address.empty()) return nullptr;
  HttpSources sources;
  sources.metrics = [&election] { return election.Metrics(); };
  sources.apiserver = [&election] { return election.ApiserverStatus(); };
  return HttpServer::Start(
      flags.metrics_address, "--metrics-address",
      [sources](absl::string_view path) { return ServeHttp(path, sources); });
}

// Waits for SIGTERM/SIGINT, resigns every campaign within --shutdown-grace,
// and ends the process.
[[noreturn]] void ShutDown(const SidecarFlags& flags, Election& election,
                           HealthService& health, grpc::Server& server,
                           std::unique_ptr<HttpServer> http) {
  const int sig = WaitForStopSignal();
  LogInfo("signal received; resigning every campaign",
          {{"signal", absl::StrCat(sig)}});
  health.SetServing(false);
  election.Shutdown(flags.shutdown_grace);
  server.Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  http.reset();
  LogInfo("exiting");
  // Skip destructors of the informers' and gRPC's threads: everything that
  // matters is written.
  std::fflush(nullptr);
  std::_Exit(0);
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
  ConfigureProcess();
  std::unique_ptr<kube::KubeClient> client = MakeClient(*flags);
  if (client == nullptr) return 1;
  const kube::Config& config = client->config();
  ElectionOptions eopts = ElectionOptionsFrom(*flags, config);
  Election election(eopts, NewKubeLeaseStore(client.get()),
                    NewInformerWatchFactory(client.get()));
  ElectionService service(&election);
  HealthService health({"mcl.v1.Election"});
  GrpcServer grpc_server = ServeGrpc(*flags, service, health);
  if (grpc_server.server == nullptr) return 1;
  auto http = ServeMetrics(*flags, election);
  if (!http.ok()) {
    LogError("cannot serve metrics",
             {{"error", std::string(http.status().message())}});
    return 1;
  }
  LogInfo("serving",
          {{"listen", flags->listen},
           {"port", absl::StrCat(grpc_server.port)},
           {"namespace", eopts.default_namespace},
           {"identity", eopts.default_identity},
           {"apiserver", config.server},
           {"metrics_port", *http ? absl::StrCat((*http)->port()) : ""}});
  ShutDown(*flags, election, health, *grpc_server.server, std::move(*http));
}

}  // namespace
}  // namespace mcl::sidecar

int main(int argc, char** argv) { return mcl::sidecar::Run(argc, argv); }
