#include "controller/cr_codec.h"

#include <algorithm>

#include "common/kube/objects.h"

namespace mcl::controller {

using kube::Json;

int64_t RvNumber(const std::string& rv) {
  return kube::ParseResourceVersion(rv).value_or(-1);
}

absl::StatusOr<CrView> CrViewFromJson(const Json& obj) {
  kube::JsonReader r("MultiClusterLease");
  CrView v;
  if (!obj.is_object())
    return absl::InvalidArgumentError("MultiClusterLease: not an object");
  const Json* meta = r.Object(obj, "metadata", "metadata");
  if (meta == nullptr)
    return absl::InvalidArgumentError("MultiClusterLease: no metadata");
  v.name = r.String(*meta, "name", "metadata.name").value_or("");
  v.namespace_ =
      r.String(*meta, "namespace", "metadata.namespace").value_or("");
  v.uid = r.String(*meta, "uid", "metadata.uid").value_or("");
  v.resource_version =
      r.String(*meta, "resourceVersion", "metadata.resourceVersion")
          .value_or("");
  v.generation = r.Int(*meta, "generation", "metadata.generation").value_or(0);
  v.deleting =
      r.String(*meta, "deletionTimestamp", "metadata.deletionTimestamp")
          .has_value();
  for (const auto& f :
       r.StringList(*meta, "finalizers", "metadata.finalizers")) {
    if (f == kFinalizer) v.has_finalizer = true;
  }
  if (const Json* spec = r.Object(obj, "spec", "spec")) {
    v.holder = r.String(*spec, "holderIdentity", "spec.holderIdentity");
    if (v.holder && v.holder->empty()) v.holder.reset();
    v.lease_duration_seconds =
        r.Int(*spec, "leaseDurationSeconds", "spec.leaseDurationSeconds")
            .value_or(0);
    v.renew_time = r.String(*spec, "renewTime", "spec.renewTime").value_or("");
  }
  if (const Json* st = r.Object(obj, "status", "status")) {
    LockStatus& s = v.status;
    s.leader = r.String(*st, "leader", "status.leader").value_or("");
    s.leader_cluster =
        r.String(*st, "leaderCluster", "status.leaderCluster").value_or("");
    s.acquire_time =
        r.String(*st, "acquireTime", "status.acquireTime").value_or("");
    s.fencing_token =
        r.Int(*st, "fencingToken", "status.fencingToken").value_or(0);
    s.observed_generation =
        r.Int(*st, "observedGeneration", "status.observedGeneration")
            .value_or(0);
    s.transitions = r.Int(*st, "transitions", "status.transitions").value_or(0);
    s.session = r.String(*st, "session", "status.session").value_or("");
    s.heartbeat = r.String(*st, "heartbeat", "status.heartbeat").value_or("");
    s.session_ttl_ms =
        r.Int(*st, "sessionTTLMilliseconds", "status.sessionTTLMilliseconds")
            .value_or(0);
    s.confirmed_resource_version = r.String(*st, "confirmedResourceVersion",
                                            "status.confirmedResourceVersion")
                                       .value_or("");
    s.last_confirmed_renew_time =
        r.String(*st, "lastConfirmedRenewTime", "status.lastConfirmedRenewTime")
            .value_or("");
    if (const Json* conds = r.Array(*st, "conditions", "status.conditions")) {
      for (const Json& c : conds->as_array()) {
        if (!c.is_object()) continue;
        Condition cond;
        cond.type =
            r.String(c, "type", "status.conditions[].type").value_or("");
        cond.status =
            r.String(c, "status", "status.conditions[].status").value_or("");
        cond.reason =
            r.String(c, "reason", "status.conditions[].reason").value_or("");
        cond.message =
            r.String(c, "message", "status.conditions[].message").value_or("");
        cond.last_transition_time =
            r.String(c, "lastTransitionTime",
                     "status.conditions[].lastTransitionTime")
                .value_or("");
        if (!cond.type.empty()) s.conditions.push_back(std::move(cond));
      }
    }
  }
  if (!r.ok()) return r.status();
  if (v.name.empty())
    return absl::InvalidArgumentError("MultiClusterLease without a name");
  return v;
}

Json StatusToJson(const LockStatus& s) {
  Json o = Json::object();
  kube::SetOrEraseNonEmpty(o, "leader", s.leader);
  kube::SetOrEraseNonEmpty(o, "leaderCluster", s.leader_cluster);
  kube::SetOrEraseNonEmpty(o, "acquireTime", s.acquire_time);
  kube::SetOrEraseNonZero(o, "fencingToken", s.fencing_token);
  kube::SetOrEraseNonZero(o, "observedGeneration", s.observed_generation);
  kube::SetOrEraseNonZero(o, "transitions", s.transitions);
  kube::SetOrEraseNonEmpty(o, "session", s.session);
  kube::SetOrEraseNonEmpty(o, "heartbeat", s.heartbeat);
  kube::SetOrEraseNonZero(o, "sessionTTLMilliseconds", s.session_ttl_ms);
  kube::SetOrEraseNonEmpty(o, "confirmedResourceVersion",
                           s.confirmed_resource_version);
  kube::SetOrEraseNonEmpty(o, "lastConfirmedRenewTime",
                           s.last_confirmed_renew_time);
  if (!s.conditions.empty()) {
    Json arr = Json::array(s.conditions.size());
    for (size_t i = 0; i < s.conditions.size(); ++i) {
      const Condition& c = s.conditions[i];
      Json j = Json::object();
      j["type"] = Json::string(c.type);
      j["status"] = Json::string(c.status);
      j["reason"] = Json::string(c.reason);
      j["message"] = Json::string(c.message);
      j["lastTransitionTime"] = Json::string(c.last_transition_time);
      arr[i] = j;
    }
    o["conditions"] = arr;
  }
  return o;
}

Json WithStatus(const Json& obj, const LockStatus& s, const std::string& rv) {
  Json out = obj;
  out["status"] = StatusToJson(s);
  kube::ChildObject(out, "metadata")["resourceVersion"] = Json::string(rv);
  return out;
}

Json WithFinalizer(const Json& obj, const std::string& finalizer,
                   bool present) {
  Json out = obj;
  Json& meta = kube::ChildObject(out, "metadata");
  std::vector<Json> kept;
  bool found = false;
  if (meta.has_field("finalizers") && meta.at("finalizers").is_array()) {
    for (const Json& f : meta.at("finalizers").as_array()) {
      if (f.is_string() && f.as_string() == finalizer) {
        found = true;
        if (!present) continue;
      }
      kept.push_back(f);
    }
  }
  if (present && !found) kept.push_back(Json::string(finalizer));
  if (kept.empty()) {
    meta.erase("finalizers");
  } else {
    meta["finalizers"] = Json::array(kept);
  }
  return out;
}

}  // namespace mcl::controller
