#include "controller/injector/mutate.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "common/kube/json.h"

namespace mcl::injector {
namespace {

using kube::JsonReader;

std::string Pointer(absl::string_view token) {  // RFC 6901 escaping
  return absl::StrReplaceAll(token, {{"~", "~0"}, {"/", "~1"}});
}

void Add(Json& patch, const std::string& path, Json value) {
  Json op = Json::object();
  op["op"] = Json::string("add");
  op["path"] = Json::string(path);
  op["value"] = std::move(value);
  patch[patch.size()] = std::move(op);
}

bool HasField(const Json& obj, const char* key) {
  return obj.is_object() && obj.has_field(key) && !obj.at(key).is_null();
}

const Json* Field(const Json& obj, const char* key) {
  return HasField(obj, key) ? &obj.at(key) : nullptr;
}

std::string StringField(const Json& obj, const char* key) {
  const Json* v = Field(obj, key);
  return v != nullptr && v->is_string() ? v->as_string() : "";
}

// The array at obj[key], or an empty array when absent (a field of another
// type is refused by the apiserver's own validation; here it reads as empty).
const web::json::array* ArrayField(const Json& obj, const char* key) {
  static const Json kEmpty = Json::array();
  const Json* v = Field(obj, key);
  return &(v != nullptr && v->is_array() ? *v : kEmpty).as_array();
}

bool AnyNamed(const web::json::array& items, absl::string_view name) {
  for (const Json& c : items) {
    if (StringField(c, "name") == name) return true;
  }
  return false;
}

std::string Annotation(const Json& pod, const char* key) {
  const Json* meta = Field(pod, "metadata");
  const Json* ann = meta != nullptr ? Field(*meta, "annotations") : nullptr;
  return ann != nullptr ? StringField(*ann, key) : "";
}

// Rewrites or removes the sidecar's metrics address, its port and its probes.
void SetMetricsPort(Json& sidecar, std::optional<int> port) {
  Json args = Json::array();
  std::string host = "0.0.0.0";  // the chart's default, when it gave none
  for (const Json& a : *ArrayField(sidecar, "args")) {
    constexpr absl::string_view kFlag = "--metrics-address=";
    if (a.is_string() && absl::StartsWith(a.as_string(), kFlag)) {
      const std::string addr = a.as_string().substr(kFlag.size());
      host = addr.substr(0, addr.rfind(':'));
    } else {
      args[args.size()] = a;
    }
  }
  if (port) {
    args[args.size()] =
        Json::string(absl::StrCat("--metrics-address=", host, ":", *port));
  }
  sidecar["args"] = args;
  if (!port) {
    for (const char* f : {"ports", "startupProbe", "livenessProbe"}) {
      if (sidecar.has_field(f)) sidecar.erase(f);
    }
    return;
  }
  Json p = Json::object();
  p["name"] = Json::string("mcl-metrics");
  p["containerPort"] = *port;
  p["protocol"] = Json::string("TCP");
  sidecar["ports"] = Json::array({p});
  for (const char* probe : {"startupProbe", "livenessProbe"}) {
    const Json* pr = Field(sidecar, probe);
    if (pr != nullptr && HasField(*pr, "httpGet") &&
        pr->at("httpGet").is_object()) {
      sidecar[probe]["httpGet"]["port"] = *port;
    }
  }
}

// Step 3 for container `i`: the sidecar's address and, in socket mode, its
// directory.
void PatchAppContainer(const Json& c, size_t i, const InjectorConfig& config,
                       Json& patch) {
  const std::string base = absl::StrCat("/spec/containers/", i);
  const web::json::array& env = *ArrayField(c, "env");
  bool has_addr = false;
  for (const Json& e : env) has_addr |= StringField(e, "name") == kAddressEnv;
  if (!has_addr) {
    Json var = Json::object();
    var["name"] = Json::string(kAddressEnv);
    var["value"] = Json::string(config.address);
    if (env.size() == 0 && !HasField(c, "env")) {
      Add(patch, base + "/env", Json::array({var}));
    } else {
      Add(patch, base + "/env/-", var);
    }
  }
  if (config.app_mount.is_null()) return;
  const web::json::array& mounts = *ArrayField(c, "volumeMounts");
  const std::string path = StringField(config.app_mount, "mountPath");
  for (const Json& m : mounts) {
    if (StringField(m, "mountPath") == path) return;  // theirs wins
  }
  if (mounts.size() == 0 && !HasField(c, "volumeMounts")) {
    Add(patch, base + "/volumeMounts", Json::array({config.app_mount}));
  } else {
    Add(patch, base + "/volumeMounts/-", config.app_mount);
  }
}

}  // namespace

absl::StatusOr<std::string> ValidLeaseDuration(absl::string_view value) {
  absl::Duration d;
  int64_t secs = 0;
  if (absl::SimpleAtoi(value, &secs)) {
    d = absl::Seconds(secs);
  } else if (value.empty() || !absl::ParseDuration(value, &d)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "annotation ", kLeaseAnnotation, "=", value,
        " is not a lease duration: give whole seconds (15) or a duration with "
        "a unit (15s, 1m30s), from 2s to 3600s"));
  }
  if (d < absl::Seconds(2) || d > absl::Seconds(3600)) {
    return absl::InvalidArgumentError(
        absl::StrCat("annotation ", kLeaseAnnotation, "=", value,
                     " is outside the lease durations the sidecar accepts, "
                     "2s to 3600s"));
  }
  return std::string(value);
}

absl::StatusOr<InjectorConfig> ParseConfig(absl::string_view text,
                                           absl::string_view what) {
  auto doc = kube::ParseJson(text, what);
  if (!doc.ok()) return doc.status();
  JsonReader r{std::string(what)};
  InjectorConfig c;
  const Json* sidecar = r.Object(*doc, "sidecar", "sidecar");
  const Json* volumes = r.Array(*doc, "volumes", "volumes");
  std::optional<std::string> address = r.String(*doc, "address", "address");
  const Json* mount = r.Object(*doc, "appVolumeMount", "appVolumeMount");
  if (!r.ok()) return r.status();
  if (sidecar == nullptr || StringField(*sidecar, "name") != kSidecarName ||
      StringField(*sidecar, "image").empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": sidecar must be a container named ", kSidecarName,
                     " with an image"));
  }
  if (!address || address->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": address (the sidecar's, for apps) is required"));
  }
  c.sidecar = *sidecar;
  if (volumes != nullptr) c.volumes = *volumes;
  c.address = *address;
  c.app_mount = mount != nullptr ? *mount : Json::null();
  if (mount != nullptr && StringField(*mount, "mountPath").empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": appVolumeMount needs a mountPath"));
  }
  return c;
}

Mutation Mutate(const Json& pod, const InjectorConfig& config) {
  Mutation m;
  const Json* spec = Field(pod, "spec");
  if (spec == nullptr || !spec->is_object()) {
    m.denied = "the object is not a Pod (no spec)";
    return m;
  }
  const web::json::array& containers = *ArrayField(*spec, "containers");
  const web::json::array& inits = *ArrayField(*spec, "initContainers");
  const bool injected = Annotation(pod, kInjectedAnnotation) == "true";
  if (!injected &&
      (AnyNamed(inits, kSidecarName) || AnyNamed(containers, kSidecarName))) {
    return m;  // the Pod brings its own sidecar (the named template)
  }
  if (!injected) {
    Json sidecar = config.sidecar;
    const std::string lease = Annotation(pod, kLeaseAnnotation);
    if (!lease.empty()) {
      auto ok = ValidLeaseDuration(lease);
      if (!ok.ok()) {
        m.denied = std::string(ok.status().message());
        return m;
      }
      Json args = Json::array();
      for (const Json& a : *ArrayField(sidecar, "args")) {
        if (!(a.is_string() &&
              a.as_string().rfind("--lease-duration=", 0) == 0))
          args[args.size()] = a;
      }
      args[args.size()] =
          Json::string(absl::StrCat("--lease-duration=", lease));
      sidecar["args"] = args;
    }
    const std::string port_text = Annotation(pod, kMetricsPortAnnotation);
    int port = 0;
    if (!port_text.empty()) {
      if (!absl::SimpleAtoi(port_text, &port) || port < 1 || port > 65535) {
        m.denied = absl::StrCat("annotation ", kMetricsPortAnnotation, "=",
                                port_text, " is not a port (1 to 65535)");
        return m;
      }
      SetMetricsPort(sidecar, port);
    } else if (HasField(*spec, "hostNetwork") &&
               spec->at("hostNetwork").is_boolean() &&
               spec->at("hostNetwork").as_bool() &&
               HasField(sidecar, "ports")) {
      SetMetricsPort(sidecar, std::nullopt);
    }
    for (const Json& v : config.volumes.as_array()) {
      const std::string name = StringField(v, "name");
      if (AnyNamed(*ArrayField(*spec, "volumes"), name)) {
        m.denied = absl::StrCat("the Pod already has a volume named ", name,
                                ", which the mcl sidecar needs; rename yours");
        return m;
      }
    }
    if (!HasField(*spec, "initContainers")) {
      Add(m.patch, "/spec/initContainers", Json::array({sidecar}));
    } else {
      Add(m.patch, "/spec/initContainers/0", sidecar);
    }
    bool first = !HasField(*spec, "volumes");
    for (const Json& v : config.volumes.as_array()) {
      if (first) {
        Add(m.patch, "/spec/volumes", Json::array({v}));
        first = false;
      } else {
        Add(m.patch, "/spec/volumes/-", v);
      }
    }
    const Json* meta = Field(pod, "metadata");
    if (meta == nullptr || !HasField(*meta, "annotations")) {
      Json ann = Json::object();
      ann[kInjectedAnnotation] = Json::string("true");
      if (meta == nullptr) {
        Json md = Json::object();
        md["annotations"] = ann;
        Add(m.patch, "/metadata", md);
      } else {
        Add(m.patch, "/metadata/annotations", ann);
      }
    } else {
      Add(m.patch,
          absl::StrCat("/metadata/annotations/", Pointer(kInjectedAnnotation)),
          Json::string("true"));
    }
  }
  for (size_t i = 0; i < containers.size(); ++i) {
    PatchAppContainer(containers.at(i), i, config, m.patch);
  }
  return m;
}

}  // namespace mcl::injector
