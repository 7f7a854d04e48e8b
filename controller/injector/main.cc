// mcl-injector: the mutating admission webhook that adds the mcl sidecar to
// Pods that opt in (helm/mcl, injection.mode=webhook). It holds no
// credentials: it never calls the apiserver and never sees etcd; the chart
// runs it as its own Deployment, from the controller's image.
//
// Threads: main (flags, then waits for SIGTERM/SIGINT), the server's acceptor
// and one per connection (tls_server.h).
#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/stop_signals.h"
#include "controller/injector/admission.h"
#include "controller/injector/mutate.h"
#include "controller/injector/tls_server.h"

ABSL_FLAG(std::string, listen, "[::]:9443",
          "HOST:PORT of the HTTPS server ([::] serves IPv6 and IPv4)");
ABSL_FLAG(
    std::string, tls_cert, "/etc/mcl-injector/tls/tls.crt",
    "serving certificate (PEM, with its chain); reloaded when it changes");
ABSL_FLAG(std::string, tls_key, "/etc/mcl-injector/tls/tls.key",
          "private key of --tls-cert (PEM)");
ABSL_FLAG(std::string, config, "/etc/mcl-injector/config/config.json",
          "what to inject: the sidecar container, its volumes, the address "
          "apps use (rendered by the chart)");
ABSL_FLAG(absl::Duration, shutdown_delay, absl::Seconds(5),
          "on SIGTERM, keep serving this long while the apiserver stops "
          "sending here (the Pod leaves the Service's endpoints)");

namespace {

using mcl::injector::Outcome;

struct Counters {
  std::atomic<int64_t> by_outcome[4] = {};
};

std::string ReadFile(const std::string& path, bool* ok) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  *ok = in.good() || in.eof();
  return ss.str();
}

std::string MetricsText(const Counters& counters,
                        const mcl::injector::TlsServer* server) {
  std::string out =
      "# HELP mcl_injector_requests_total Admission requests by "
      "outcome.\n# TYPE mcl_injector_requests_total counter\n";
  for (Outcome o : {Outcome::kInjected, Outcome::kUnchanged, Outcome::kDenied,
                    Outcome::kBadRequest}) {
    absl::StrAppend(&out, "mcl_injector_requests_total{outcome=\"",
                    OutcomeName(o), "\"} ",
                    counters.by_outcome[static_cast<int>(o)].load(), "\n");
  }
  absl::StrAppend(&out,
                  "# HELP mcl_injector_certificate_reloads_total Serving "
                  "certificates loaded after start.\n"
                  "# TYPE mcl_injector_certificate_reloads_total counter\n"
                  "mcl_injector_certificate_reloads_total ",
                  server != nullptr ? server->reloads() : 0, "\n");
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  mcl::flags::FlagSet flags;
  flags.names = {"listen", "tls_cert", "tls_key", "config", "shutdown_delay"};
  // Exit 0 after --help, 2 for bad input (with what to fix), as mcl-controller.
  if (const int code = mcl::flags::ParseMain(
          flags, argc, argv,
          "mcl-injector: mutating admission webhook that injects the mcl "
          "sidecar",
          /*help_code=*/0, /*error_code=*/2);
      code >= 0) {
    return code;
  }
  mcl::BlockStopSignals();

  bool ok = false;
  const std::string path = absl::GetFlag(FLAGS_config);
  std::string text = ReadFile(path, &ok);
  if (!ok || text.empty()) {
    mcl::LogError("cannot read the injection config", {{"config", path}});
    return 2;
  }
  auto config = mcl::injector::ParseConfig(text, path);
  if (!config.ok()) {
    mcl::LogError("bad injection config",
                  {{"error", std::string(config.status().message())}});
    return 2;
  }

  Counters counters;
  mcl::injector::TlsServerOptions opt;
  opt.address = absl::GetFlag(FLAGS_listen);
  opt.cert_file = absl::GetFlag(FLAGS_tls_cert);
  opt.key_file = absl::GetFlag(FLAGS_tls_key);
  std::atomic<mcl::injector::TlsServer*> server_ptr{nullptr};
  auto handler = [&](const mcl::injector::HttpRequest& req)
      -> mcl::injector::HttpResponse {
    if (req.path == "/mutate") {
      if (req.method != "POST") return {405, "text/plain", "POST only\n"};
      auto r = mcl::injector::Review(req.body, *config);
      counters.by_outcome[static_cast<int>(r.outcome)].fetch_add(1);
      if (r.outcome != Outcome::kUnchanged) {
        mcl::LogInfo("admission", {{"pod", r.pod},
                                   {"outcome", OutcomeName(r.outcome)},
                                   {"reason", r.reason}});
      }
      return {r.http_status,
              r.http_status == 200 ? "application/json" : "text/plain", r.body};
    }
    if (req.path == "/healthz" || req.path == "/readyz") {
      return {200, "text/plain", "ok\n"};
    }
    if (req.path == "/metrics") {
      return {200, "text/plain; version=0.0.4",
              MetricsText(counters, server_ptr.load())};
    }
    return {404, "text/plain", "not found; try /mutate, /healthz, /metrics\n"};
  };
  auto server = mcl::injector::TlsServer::Start(opt, handler);
  if (!server.ok()) {
    mcl::LogError("cannot start the webhook server",
                  {{"error", std::string(server.status().message())}});
    return 1;
  }
  server_ptr = server->get();
  mcl::LogInfo("serving", {{"listen", opt.address},
                           {"port", absl::StrCat((*server)->port())},
                           {"address_for_apps", config->address}});
  const int sig = mcl::WaitForStopSignal();
  mcl::LogInfo(
      "stopping",
      {{"signal", absl::StrCat(sig)},
       {"delay", absl::FormatDuration(absl::GetFlag(FLAGS_shutdown_delay))}});
  absl::SleepFor(absl::GetFlag(FLAGS_shutdown_delay));
  (*server)->Stop();
  return 0;
}
