// The AdmissionReview (admission.k8s.io/v1) exchange around Mutate: decodes
// the apiserver's request, encodes the response (a base64 JSON Patch, or a
// refusal with its message). Pure; thread-safe.
#ifndef MCL_CONTROLLER_INJECTOR_ADMISSION_H_
#define MCL_CONTROLLER_INJECTOR_ADMISSION_H_

#include <string>

#include "absl/strings/string_view.h"
#include "controller/injector/mutate.h"

namespace mcl::injector {

// What happened to one request, for the log and the metrics.
enum class Outcome { kInjected, kUnchanged, kDenied, kBadRequest };
const char* OutcomeName(Outcome o);

struct AdmissionResult {
  int http_status = 200;
  std::string body;  // the AdmissionReview response, or a plain-text error
  Outcome outcome = Outcome::kUnchanged;
  std::string pod;     // "namespace/name" (or generateName...) for the log
  std::string reason;  // the refusal or the decoding error
};

// Handles one POST body. A body that is not an AdmissionReview v1 with a
// request gets HTTP 400 and a message; a request for anything but creating a
// Pod is allowed unchanged (the webhook's rules should not send those).
AdmissionResult Review(absl::string_view body, const InjectorConfig& config);

}  // namespace mcl::injector

#endif  // MCL_CONTROLLER_INJECTOR_ADMISSION_H_
