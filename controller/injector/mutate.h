// The sidecar injection rule: given a Pod being created, the JSON Patch that
// adds the mcl sidecar, or a refusal that says what to fix. Pure (no I/O, no
// clock); thread-safe; the webhook server (tls_server.h) calls it per request.
//
// What the chart asked for comes in an InjectorConfig, read from a file the
// chart renders from the same named template (_sidecar.tpl) that users of
// their own charts include, so both ways of adding the sidecar produce the
// same container.
//
// For a Pod that opted in (the webhook's objectSelector, by default the label
// mcl.dev/inject=true) the patch:
//   1. puts the sidecar first among the initContainers, as a native sidecar
//      (restartPolicy: Always; it starts before the app containers and stops
//      after them), with --lease-duration from the annotation
//      mcl.dev/lease-duration when the Pod sets one (whole seconds or a
//      duration with units, 2s..3600s, what the sidecar accepts; anything else
//      is refused with a message);
//   2. adds the sidecar's volumes: its own projected service-account token
//      (the ServiceAccount admission plugin ran before webhooks, so it did not
//      mount one into the injected container) and, when the sidecar listens on
//      a unix socket, the emptyDir that holds the socket;
//   3. gives every app container MCL_SIDECAR_ADDR (unless it sets it) and, in
//      socket mode, the socket directory (unless something is mounted there);
//   4. marks the Pod with the annotation mcl.dev/injected=true.
// A Pod with hostNetwork gets the sidecar without its metrics port and probes
// (a fixed port would collide between pods of one node), unless the
// annotation mcl.dev/sidecar-metrics-port names one.
//
// Idempotent, for reinvocation (reinvocationPolicy: IfNeeded): a Pod already
// marked injected only gets steps 3 for containers added since. A Pod that
// has its own container named mcl-sidecar (the named template) and no mark is
// left alone.
#ifndef MCL_CONTROLLER_INJECTOR_MUTATE_H_
#define MCL_CONTROLLER_INJECTOR_MUTATE_H_

#include <cpprest/json.h>

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mcl::injector {

using Json = web::json::value;

inline constexpr char kLeaseAnnotation[] = "mcl.dev/lease-duration";
inline constexpr char kMetricsPortAnnotation[] = "mcl.dev/sidecar-metrics-port";
inline constexpr char kInjectedAnnotation[] = "mcl.dev/injected";
inline constexpr char kSidecarName[] = "mcl-sidecar";
inline constexpr char kAddressEnv[] = "MCL_SIDECAR_ADDR";

struct InjectorConfig {
  // The sidecar container (a Kubernetes Container object), as the chart
  // rendered it; `args` without any --lease-duration of a Pod's own.
  Json sidecar;
  // Volumes the sidecar needs in the Pod (Volume objects).
  Json volumes = Json::array();
  // The sidecar's address for the app containers ("unix:///var/run/mcl/
  // sidecar.sock" or "127.0.0.1:7400").
  std::string address;
  // In socket mode, the volume mount the app containers get (a VolumeMount
  // object); null in loopback mode.
  Json app_mount;
};

// Reads the config file the chart renders (a JSON object with "sidecar",
// "volumes", "address" and optionally "appVolumeMount"); the error names the
// file and what is wrong.
absl::StatusOr<InjectorConfig> ParseConfig(absl::string_view text,
                                           absl::string_view what);

struct Mutation {
  // Set when the Pod is refused: the message for the user (HTTP 400 in the
  // AdmissionReview response).
  std::optional<std::string> denied;
  // The JSON Patch (an array; empty: nothing to change).
  Json patch = Json::array();
};

// The decision for one Pod object (the AdmissionReview's request.object).
Mutation Mutate(const Json& pod, const InjectorConfig& config);

// The lease duration the sidecar would accept for `value` (whole seconds, or
// a duration with units), within [2s, 3600s]; an error that says so otherwise.
absl::StatusOr<std::string> ValidLeaseDuration(absl::string_view value);

}  // namespace mcl::injector

#endif  // MCL_CONTROLLER_INJECTOR_MUTATE_H_
