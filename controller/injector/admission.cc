#include "controller/injector/admission.h"

#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/kube/json.h"

namespace mcl::injector {
namespace {

std::string Str(const Json& obj, const char* key) {
  return obj.is_object() && obj.has_field(key) && obj.at(key).is_string()
             ? obj.at(key).as_string()
             : "";
}

}  // namespace

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kInjected:
      return "injected";
    case Outcome::kUnchanged:
      return "unchanged";
    case Outcome::kDenied:
      return "denied";
    case Outcome::kBadRequest:
      return "bad_request";
  }
  return "unknown";
}

AdmissionResult Review(absl::string_view body, const InjectorConfig& config) {
  AdmissionResult r;
  auto bad = [&r](const std::string& why) {
    r.http_status = 400;
    r.outcome = Outcome::kBadRequest;
    r.reason = why;
    r.body = why + "\n";
    return r;
  };
  auto doc = kube::ParseJson(body, "AdmissionReview");
  if (!doc.ok()) return bad(std::string(doc.status().message()));
  if (Str(*doc, "kind") != "AdmissionReview" ||
      Str(*doc, "apiVersion") != "admission.k8s.io/v1") {
    return bad("expected an admission.k8s.io/v1 AdmissionReview");
  }
  if (!doc->has_field("request") || !doc->at("request").is_object()) {
    return bad("the AdmissionReview has no request");
  }
  const Json& req = doc->at("request");
  const std::string uid = Str(req, "uid");
  if (uid.empty()) return bad("the AdmissionReview request has no uid");

  Json response = Json::object();
  response["uid"] = Json::string(uid);
  response["allowed"] = Json::boolean(true);
  const Json* kind = req.has_field("kind") ? &req.at("kind") : nullptr;
  const bool pod_create = kind != nullptr && Str(*kind, "kind") == "Pod" &&
                          Str(*kind, "group").empty() &&
                          Str(req, "operation") == "CREATE" &&
                          req.has_field("object");
  if (pod_create) {
    const Json& pod = req.at("object");
    const Json meta = pod.is_object() && pod.has_field("metadata")
                          ? pod.at("metadata")
                          : Json::object();
    std::string name = Str(meta, "name");
    if (name.empty()) name = Str(meta, "generateName") + "*";
    r.pod = absl::StrCat(Str(req, "namespace"), "/", name);
    Mutation m = Mutate(pod, config);
    if (m.denied) {
      r.outcome = Outcome::kDenied;
      r.reason = *m.denied;
      response["allowed"] = Json::boolean(false);
      Json status = Json::object();
      status["code"] = 400;
      status["reason"] = Json::string("BadRequest");
      status["message"] = Json::string(*m.denied);
      response["status"] = status;
    } else if (m.patch.size() > 0) {
      r.outcome = Outcome::kInjected;
      response["patchType"] = Json::string("JSONPatch");
      response["patch"] = Json::string(absl::Base64Escape(m.patch.serialize()));
    }
  }
  Json out = Json::object();
  out["apiVersion"] = Json::string("admission.k8s.io/v1");
  out["kind"] = Json::string("AdmissionReview");
  out["response"] = response;
  r.body = out.serialize();
  return r;
}

}  // namespace mcl::injector
