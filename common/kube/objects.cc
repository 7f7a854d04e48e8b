#include "common/kube/objects.h"

#include <cpprest/http_msg.h>
#include <cpprest/uri.h>

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mcl::kube {
namespace {

std::string Escape(absl::string_view segment) {
  return web::uri::encode_data_string(std::string(segment));
}

Json StringMapJson(const std::map<std::string, std::string>& m) {
  Json o = Json::object();
  for (const auto& [k, v] : m) o[k] = Json::string(v);
  return o;
}

std::vector<Condition> ConditionsFromJson(JsonReader& r, const Json& status) {
  std::vector<Condition> out;
  const Json* arr = r.Array(status, "conditions", "status");
  if (arr == nullptr) return out;
  size_t i = 0;
  for (const Json& c : arr->as_array()) {
    std::string path = absl::StrCat("status.conditions[", i++, "]");
    if (!c.is_object()) {
      r.Fail(path, absl::StrCat("expected object, got ", JsonTypeName(c)));
      continue;
    }
    Condition cond;
    cond.type = r.String(c, "type", path).value_or("");
    cond.status = r.String(c, "status", path).value_or("");
    cond.observed_generation = r.Int(c, "observedGeneration", path).value_or(0);
    cond.last_transition_time =
        r.String(c, "lastTransitionTime", path).value_or("");
    cond.reason = r.String(c, "reason", path).value_or("");
    cond.message = r.String(c, "message", path).value_or("");
    out.push_back(std::move(cond));
  }
  return out;
}

Json ConditionToJson(const Condition& c) {
  Json o = Json::object();
  o["type"] = Json::string(c.type);
  o["status"] = Json::string(c.status);
  if (c.observed_generation != 0)
    o["observedGeneration"] = Json::number(c.observed_generation);
  o["lastTransitionTime"] = Json::string(c.last_transition_time);
  o["reason"] = Json::string(c.reason);
  o["message"] = Json::string(c.message);
  return o;
}

std::string Describe(const Json& j, absl::string_view kind) {
  std::string key = ObjectKeyOf(j);
  return key.empty() ? std::string(kind) : absl::StrCat(kind, " ", key);
}

Json Base(const Json& raw, const Resource& r) {
  Json j = raw.is_object() ? raw : Json::object();
  j["apiVersion"] = Json::string(r.ApiVersion());
  j["kind"] = Json::string(r.kind);
  return j;
}

}  // namespace

std::string Resource::ApiVersion() const {
  return group.empty() ? version : absl::StrCat(group, "/", version);
}

std::string Resource::Path(absl::string_view ns, absl::string_view name,
                           absl::string_view subresource) const {
  std::string p = group.empty() ? absl::StrCat("/api/", version)
                                : absl::StrCat("/apis/", group, "/", version);
  if (namespaced && !ns.empty())
    absl::StrAppend(&p, "/namespaces/", Escape(ns));
  absl::StrAppend(&p, "/", plural);
  if (!name.empty()) absl::StrAppend(&p, "/", Escape(name));
  if (!subresource.empty()) absl::StrAppend(&p, "/", subresource);
  return p;
}

const Resource& MultiClusterLeaseResource() {
  static const Resource* r = new Resource{
      "mcl.dev", "v1alpha1", "multiclusterleases", "MultiClusterLease", true};
  return *r;
}
const Resource& LeaseResource() {
  static const Resource* r =
      new Resource{"coordination.k8s.io", "v1", "leases", "Lease", true};
  return *r;
}
const Resource& EventResource() {
  static const Resource* r = new Resource{"", "v1", "events", "Event", true};
  return *r;
}

std::string ObjectKey(absl::string_view ns, absl::string_view name) {
  return ns.empty() ? std::string(name) : absl::StrCat(ns, "/", name);
}

std::string ObjectKeyOf(const Json& obj) {
  JsonReader r("object");
  const Json* md = r.Object(obj, "metadata", "");
  if (md == nullptr) return "";
  std::string name = r.String(*md, "name", "metadata").value_or("");
  if (name.empty()) return "";
  return ObjectKey(r.String(*md, "namespace", "metadata").value_or(""), name);
}

std::string ResourceVersionOf(const Json& obj) {
  JsonReader r("object");
  const Json* md = r.Object(obj, "metadata", "");
  if (md == nullptr) return "";
  return r.String(*md, "resourceVersion", "metadata").value_or("");
}

absl::Status CheckKind(const Json& obj, const Resource& res) {
  if (!obj.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected a ", res.kind, " object, got JSON ", JsonTypeName(obj)));
  }
  JsonReader r(res.kind);
  auto kind = r.String(obj, "kind", "");
  auto api_version = r.String(obj, "apiVersion", "");
  // Objects inside a list and in watch events may omit kind/apiVersion; present
  // ones must match.
  if (kind.has_value() && *kind != res.kind) {
    std::string extra;
    if (*kind == "Status") {
      JsonReader sr("Status");
      extra =
          absl::StrCat(" (reason ", sr.String(obj, "reason", "").value_or("?"),
                       ": ", sr.String(obj, "message", "").value_or(""), ")");
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "expected kind ", res.kind, ", got kind \"", *kind, "\"", extra));
  }
  if (api_version.has_value() && *api_version != res.ApiVersion()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected apiVersion ", res.ApiVersion(), " for kind ",
                     res.kind, ", got \"", *api_version, "\""));
  }
  return r.status();
}

absl::StatusOr<ObjectMeta> MetaFromJson(const Json& obj,
                                        absl::string_view what) {
  JsonReader r{std::string(what)};
  ObjectMeta m;
  const Json* md = r.Object(obj, "metadata", "");
  if (md == nullptr) {
    if (!r.ok()) return r.status();
    return absl::InvalidArgumentError(absl::StrCat(what, ": no metadata"));
  }
  m.name = r.String(*md, "name", "metadata").value_or("");
  m.namespace_ = r.String(*md, "namespace", "metadata").value_or("");
  m.uid = r.String(*md, "uid", "metadata").value_or("");
  m.resource_version =
      r.String(*md, "resourceVersion", "metadata").value_or("");
  m.generation = r.Int(*md, "generation", "metadata").value_or(0);
  m.creation_timestamp =
      r.String(*md, "creationTimestamp", "metadata").value_or("");
  m.deletion_timestamp = r.String(*md, "deletionTimestamp", "metadata");
  m.finalizers = r.StringList(*md, "finalizers", "metadata");
  m.labels = r.StringMap(*md, "labels", "metadata");
  m.annotations = r.StringMap(*md, "annotations", "metadata");
  if (!r.ok()) return r.status();
  return m;
}

void MetaToJson(const ObjectMeta& m, Json& obj) {
  Json& md = ChildObject(obj, "metadata");
  SetOrEraseNonEmpty(md, "name", m.name);
  SetOrEraseNonEmpty(md, "namespace", m.namespace_);
  SetOrEraseNonEmpty(md, "uid", m.uid);
  SetOrEraseNonEmpty(md, "resourceVersion", m.resource_version);
  SetOrEraseNonZero(md, "generation", m.generation);
  SetOrEraseNonEmpty(md, "creationTimestamp", m.creation_timestamp);
  SetOrErase(md, "deletionTimestamp", m.deletion_timestamp);
  if (m.finalizers.empty()) {
    Erase(md, "finalizers");
  } else {
    std::vector<Json> f;
    for (const auto& s : m.finalizers) f.push_back(Json::string(s));
    md["finalizers"] = Json::array(f);
  }
  if (m.labels.empty()) {
    Erase(md, "labels");
  } else {
    md["labels"] = StringMapJson(m.labels);
  }
  if (m.annotations.empty()) {
    Erase(md, "annotations");
  } else {
    md["annotations"] = StringMapJson(m.annotations);
  }
}

bool Condition::operator==(const Condition& o) const {
  return type == o.type && status == o.status &&
         observed_generation == o.observed_generation &&
         last_transition_time == o.last_transition_time && reason == o.reason &&
         message == o.message;
}

absl::StatusOr<MultiClusterLease> MultiClusterLease::FromJson(const Json& j) {
  const Resource& res = resource();
  std::string what = Describe(j, res.kind);
  if (absl::Status s = CheckKind(j, res); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", s.message()));
  }
  MultiClusterLease out;
  auto meta = MetaFromJson(j, what);
  if (!meta.ok()) return meta.status();
  out.metadata = std::move(*meta);
  JsonReader r(what);
  if (const Json* spec = r.Object(j, "spec", "")) {
    out.spec.holder_identity = r.String(*spec, "holderIdentity", "spec");
    out.spec.lease_duration_seconds =
        r.Int32(*spec, "leaseDurationSeconds", "spec").value_or(0);
    out.spec.renew_time = r.String(*spec, "renewTime", "spec").value_or("");
    out.spec.holder_instance = r.String(*spec, "holderInstance", "spec");
  }
  if (const Json* st = r.Object(j, "status", "")) {
    auto& s = out.status;
    s.leader = r.String(*st, "leader", "status").value_or("");
    s.leader_cluster = r.String(*st, "leaderCluster", "status").value_or("");
    s.leader_instance = r.String(*st, "leaderInstance", "status").value_or("");
    s.acquire_time = r.String(*st, "acquireTime", "status").value_or("");
    s.fencing_token = r.Int(*st, "fencingToken", "status").value_or(0);
    s.observed_generation =
        r.Int(*st, "observedGeneration", "status").value_or(0);
    s.transitions = r.Int(*st, "transitions", "status").value_or(0);
    s.session = r.String(*st, "session", "status").value_or("");
    s.heartbeat = r.String(*st, "heartbeat", "status").value_or("");
    s.session_ttl_milliseconds =
        r.Int(*st, "sessionTTLMilliseconds", "status").value_or(0);
    s.confirmed_resource_version =
        r.String(*st, "confirmedResourceVersion", "status").value_or("");
    s.last_confirmed_renew_time =
        r.String(*st, "lastConfirmedRenewTime", "status").value_or("");
    s.conditions = ConditionsFromJson(r, *st);
  }
  if (!r.ok()) return r.status();
  out.raw = j;
  return out;
}

Json MultiClusterLease::ToJson() const {
  Json j = Base(raw, resource());
  MetaToJson(metadata, j);
  Json& spec = ChildObject(j, "spec");
  SetOrErase(spec, "holderIdentity", this->spec.holder_identity);
  SetOrEraseNonZero(spec, "leaseDurationSeconds",
                    this->spec.lease_duration_seconds);
  SetOrEraseNonEmpty(spec, "renewTime", this->spec.renew_time);
  SetOrErase(spec, "holderInstance", this->spec.holder_instance);
  Json& st = ChildObject(j, "status");
  const auto& s = status;
  SetOrEraseNonEmpty(st, "leader", s.leader);
  SetOrEraseNonEmpty(st, "leaderCluster", s.leader_cluster);
  SetOrEraseNonEmpty(st, "leaderInstance", s.leader_instance);
  SetOrEraseNonEmpty(st, "acquireTime", s.acquire_time);
  SetOrEraseNonZero(st, "fencingToken", s.fencing_token);
  SetOrEraseNonZero(st, "observedGeneration", s.observed_generation);
  SetOrEraseNonZero(st, "transitions", s.transitions);
  SetOrEraseNonEmpty(st, "session", s.session);
  SetOrEraseNonEmpty(st, "heartbeat", s.heartbeat);
  SetOrEraseNonZero(st, "sessionTTLMilliseconds", s.session_ttl_milliseconds);
  SetOrEraseNonEmpty(st, "confirmedResourceVersion",
                     s.confirmed_resource_version);
  SetOrEraseNonEmpty(st, "lastConfirmedRenewTime", s.last_confirmed_renew_time);
  if (s.conditions.empty()) {
    Erase(st, "conditions");
  } else {
    std::vector<Json> cs;
    for (const auto& c : s.conditions) cs.push_back(ConditionToJson(c));
    st["conditions"] = Json::array(cs);
  }
  if (st.as_object().empty()) Erase(j, "status");
  return j;
}

absl::StatusOr<Lease> Lease::FromJson(const Json& j) {
  const Resource& res = resource();
  std::string what = Describe(j, res.kind);
  if (absl::Status s = CheckKind(j, res); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", s.message()));
  }
  Lease out;
  auto meta = MetaFromJson(j, what);
  if (!meta.ok()) return meta.status();
  out.metadata = std::move(*meta);
  JsonReader r(what);
  if (const Json* spec = r.Object(j, "spec", "")) {
    auto& s = out.spec;
    s.holder_identity = r.String(*spec, "holderIdentity", "spec");
    s.lease_duration_seconds =
        r.Int32(*spec, "leaseDurationSeconds", "spec").value_or(0);
    s.acquire_time = r.String(*spec, "acquireTime", "spec").value_or("");
    s.renew_time = r.String(*spec, "renewTime", "spec").value_or("");
    s.lease_transitions =
        r.Int32(*spec, "leaseTransitions", "spec").value_or(0);
    s.strategy = r.String(*spec, "strategy", "spec").value_or("");
    s.preferred_holder =
        r.String(*spec, "preferredHolder", "spec").value_or("");
  }
  if (!r.ok()) return r.status();
  out.raw = j;
  return out;
}

Json Lease::ToJson() const {
  Json j = Base(raw, resource());
  MetaToJson(metadata, j);
  Json& spec = ChildObject(j, "spec");
  const auto& s = this->spec;
  SetOrErase(spec, "holderIdentity", s.holder_identity);
  SetOrEraseNonZero(spec, "leaseDurationSeconds", s.lease_duration_seconds);
  SetOrEraseNonEmpty(spec, "acquireTime", s.acquire_time);
  SetOrEraseNonEmpty(spec, "renewTime", s.renew_time);
  SetOrEraseNonZero(spec, "leaseTransitions", s.lease_transitions);
  SetOrEraseNonEmpty(spec, "strategy", s.strategy);
  SetOrEraseNonEmpty(spec, "preferredHolder", s.preferred_holder);
  return j;
}

absl::StatusOr<int64_t> ParseResourceVersion(absl::string_view rv) {
  int64_t v = 0;
  // Digits only, as etcd revisions are written: SimpleAtoi alone would take
  // " 12", "+12" and "012" for 12 (found by objects_fuzzer).
  const bool digits = !rv.empty() && (rv.size() == 1 || rv[0] != '0') &&
                      std::all_of(rv.begin(), rv.end(),
                                  [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || !absl::SimpleAtoi(rv, &v) || v < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "resourceVersion \"", rv,
        "\" is not a non-negative decimal integer; mcl compares resource "
        "versions as "
        "integers and needs an etcd3-backed apiserver"));
  }
  return v;
}

}  // namespace mcl::kube
