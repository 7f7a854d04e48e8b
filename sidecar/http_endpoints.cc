#include "sidecar/http_endpoints.h"

#include "absl/strings/str_cat.h"

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

// One metric family: HELP, TYPE and a sample per lock.
template <typename F>
void Family(std::string* out, const std::map<std::string, LockMetrics>& m,
            const char* name, const char* type, const char* help, F value) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type,
                  "\n");
  for (const auto& [lock, v] : m) {
    absl::StrAppend(out, name, "{lock=\"", EscapeLabel(lock), "\"} ", value(v),
                    "\n");
  }
}

std::string MetricsText(const std::map<std::string, LockMetrics>& m,
                        bool reachable) {
  std::string out;
  Family(&out, m, "mcl_sidecar_is_leader", "gauge",
         "1 while a campaign on this sidecar is told LEADER for the lock.",
         [](const LockMetrics& v) { return v.is_leader ? 1 : 0; });
  Family(&out, m, "mcl_sidecar_campaigns", "gauge",
         "Campaigns on this sidecar for the lock that have not ended (what "
         "`mcl status` lists).",
         [](const LockMetrics& v) { return v.campaigns; });
  Family(&out, m, "mcl_sidecar_leader_transitions_total", "counter",
         "LEADER events of a new leadership sent to campaigns (renewals of "
         "the bound not counted).",
         [](const LockMetrics& v) { return v.transitions; });
  Family(&out, m, "mcl_sidecar_renew_errors_total", "counter",
         "Spec writes the apiserver did not accept (conflicts excluded).",
         [](const LockMetrics& v) { return v.renew_errors; });
  absl::StrAppend(&out,
                  "# HELP mcl_sidecar_apiserver_reachable 1 while the "
                  "sidecar's kube-apiserver watches work.\n"
                  "# TYPE mcl_sidecar_apiserver_reachable gauge\n"
                  "mcl_sidecar_apiserver_reachable ",
                  reachable ? 1 : 0, "\n");
  return out;
}

}  // namespace

HttpReply ServeHttp(absl::string_view path, const HttpSources& sources) {
  if (path == "/metrics") {
    return HttpReply{200, "text/plain; version=0.0.4; charset=utf-8",
                     MetricsText(sources.metrics(), sources.apiserver().ok())};
  }
  if (path == "/healthz") {
    sources.metrics();  // returns only if the core's mutex is not stuck
    return HttpReply{200, "text/plain", "ok\n"};
  }
  if (path == "/readyz") {
    absl::Status s = sources.apiserver();
    if (s.ok()) return HttpReply{200, "text/plain", "ok\n"};
    return HttpReply{503, "text/plain",
                     absl::StrCat("the kube-apiserver watch is failing: ",
                                  s.message(), "\n")};
  }
  return HttpReply{404, "text/plain",
                   "not found; try /metrics, /healthz or /readyz\n"};
}

}  // namespace mcl::sidecar
