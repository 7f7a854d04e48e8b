#include "common/kube/errors.h"

#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/kube/json.h"

namespace mcl::kube {
namespace {

constexpr char kReasonPayload[] = "type.mcl.dev/kube-reason";
constexpr char kCodePayload[] = "type.mcl.dev/kube-http-code";
// The types of details.causes, comma-separated ("ResourceVersionTooLarge").
constexpr char kCausesPayload[] = "type.mcl.dev/kube-causes";
constexpr char kTooLargeCause[] = "ResourceVersionTooLarge";

absl::StatusCode CodeFor(int http_code, absl::string_view reason) {
  switch (http_code) {
    case 400:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 405:
      return absl::StatusCode::kUnimplemented;
    case 409:
      return reason == "AlreadyExists" ? absl::StatusCode::kAlreadyExists
                                       : absl::StatusCode::kAborted;
    case 410:
      return absl::StatusCode::kFailedPrecondition;
    case 412:
      return absl::StatusCode::kFailedPrecondition;
    case 413:
    case 415:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 500:
      return absl::StatusCode::kInternal;
    case 504:
      return absl::StatusCode::kDeadlineExceeded;
    default:
      break;
  }
  if (http_code >= 500) return absl::StatusCode::kUnavailable;
  if (http_code >= 400) return absl::StatusCode::kFailedPrecondition;
  return absl::StatusCode::kUnknown;  // 1xx/3xx: not expected from the
                                      // apiserver
}

// The reason Kubernetes would use for a bare HTTP code (when the body is not a
// Status).
std::string DefaultReason(int http_code) {
  switch (http_code) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 500:
      return "InternalError";
    case 503:
      return "ServiceUnavailable";
    case 504:
      return "Timeout";
    default:
      return "";
  }
}

// The <title> of an HTML page, if any, for a one-line description of a proxy's
// error page.
std::string HtmlTitle(absl::string_view body) {
  std::string lower = absl::AsciiStrToLower(body.substr(0, 4096));
  size_t open = lower.find("<title>");
  if (open == std::string::npos) return "";
  size_t close = lower.find("</title>", open);
  if (close == std::string::npos) return "";
  return std::string(
      absl::StripAsciiWhitespace(body.substr(open + 7, close - open - 7)));
}

// The cause types in a metav1.Status's details ("" when none). A
// metav1.StatusCause spells its type "reason" in JSON.
std::string CauseTypes(const Json& status) {
  JsonReader r("Status");
  const Json* details = r.Object(status, "details", "");
  if (details == nullptr) return "";
  const Json* causes = r.Array(*details, "causes", "details");
  if (causes == nullptr) return "";
  std::string out;
  for (const Json& c : causes->as_array()) {
    auto type = r.String(c, "reason", "details.causes");
    if (type.has_value() && !type->empty()) {
      absl::StrAppend(&out, out.empty() ? "" : ",", *type);
    }
  }
  return out;
}

// The Status for a metav1.Status object `obj` that came with `http_code`.
absl::Status FromStatusObject(const Json& obj, int http_code,
                              absl::string_view where) {
  JsonReader r("Status");
  std::string reason = r.String(obj, "reason", "").value_or("");
  std::string message = r.String(obj, "message", "").value_or("");
  int64_t code = r.Int(obj, "code", "").value_or(http_code);
  if (reason.empty()) reason = DefaultReason(static_cast<int>(code));
  std::string text = absl::StrCat(where, " ", reason.empty() ? "" : reason,
                                  message.empty() ? "" : ": ", message);
  absl::Status s = WithKubeDetails(
      absl::Status(CodeFor(http_code, reason), text), reason, http_code);
  std::string causes = CauseTypes(obj);
  if (!causes.empty()) s.SetPayload(kCausesPayload, absl::Cord(causes));
  return s;
}

}  // namespace

absl::Status WithKubeDetails(absl::Status s, absl::string_view reason,
                             int http_code) {
  if (!reason.empty()) s.SetPayload(kReasonPayload, absl::Cord(reason));
  if (http_code != 0)
    s.SetPayload(kCodePayload, absl::Cord(absl::StrCat(http_code)));
  return s;
}

absl::Status StatusFromResponse(int http_code, absl::string_view content_type,
                                absl::string_view body,
                                absl::string_view method,
                                absl::string_view url) {
  std::string where = absl::StrCat(method, " ", url, ": HTTP ", http_code);
  // A Kubernetes Status object:
  // {"kind":"Status","status":"Failure","reason":..,"message":..,"code":..}
  std::optional<Json> status_obj;
  if (!body.empty() &&
      (body.front() == '{' || absl::StrContains(content_type, "json"))) {
    auto parsed = ParseJson(body, url);
    if (parsed.ok() && parsed->is_object()) {
      JsonReader r("Status");
      auto kind = r.String(*parsed, "kind", "");
      if (kind.has_value() && *kind == "Status")
        status_obj = std::move(*parsed);
    }
  }
  if (status_obj.has_value()) {
    return FromStatusObject(*status_obj, http_code, where);
  }
  std::string reason = DefaultReason(http_code);
  std::string description;
  if (body.empty()) {
    description = "empty body";
  } else if (absl::StrContains(absl::AsciiStrToLower(content_type), "html") ||
             absl::StrContains(absl::AsciiStrToLower(body.substr(0, 256)),
                               "<html") ||
             absl::StrContains(absl::AsciiStrToLower(body.substr(0, 256)),
                               "<!doctype")) {
    std::string title = HtmlTitle(body);
    description = absl::StrCat(
        "an HTML page, not a Kubernetes Status (a proxy or load balancer "
        "answered?)",
        title.empty() ? "" : absl::StrCat(": \"", title, "\""));
  } else {
    description =
        absl::StrCat("a body that is not a Kubernetes Status (content type \"",
                     content_type, "\"): ", Snippet(body));
  }
  std::string text = absl::StrCat(where, " ", reason, reason.empty() ? "" : " ",
                                  "with ", description);
  return WithKubeDetails(absl::Status(CodeFor(http_code, reason), text), reason,
                         http_code);
}

absl::Status StatusFromWatchError(const Json& status, absl::string_view where) {
  JsonReader r("Status");
  int64_t code = r.Int(status, "code", "").value_or(500);
  if (code < 100 || code > 599) code = 500;
  return FromStatusObject(
      status, static_cast<int>(code),
      absl::StrCat(where, ": ERROR event with HTTP code ", code));
}

std::string KubeReason(const absl::Status& s) {
  auto p = s.GetPayload(kReasonPayload);
  return p.has_value() ? std::string(*p) : "";
}

int HttpCode(const absl::Status& s) {
  auto p = s.GetPayload(kCodePayload);
  int code = 0;
  if (p.has_value() && absl::SimpleAtoi(std::string(*p), &code)) return code;
  return 0;
}

bool IsConflict(const absl::Status& s) {
  return HttpCode(s) == 409 && KubeReason(s) == "Conflict";
}
bool IsAlreadyExists(const absl::Status& s) {
  return KubeReason(s) == "AlreadyExists";
}
bool IsNotFound(const absl::Status& s) {
  return HttpCode(s) == 404 || KubeReason(s) == "NotFound";
}
bool IsGone(const absl::Status& s) {
  std::string r = KubeReason(s);
  return HttpCode(s) == 410 || r == "Expired" || r == "Gone";
}
bool IsTooLargeResourceVersion(const absl::Status& s) {
  auto causes = s.GetPayload(kCausesPayload);
  if (causes.has_value()) {
    for (absl::string_view c : absl::StrSplit(std::string(*causes), ',')) {
      if (c == kTooLargeCause) return true;
    }
  }
  return (HttpCode(s) == 504 || KubeReason(s) == "Timeout") &&
         absl::StrContains(s.message(), "Too large resource version");
}
bool IsForbidden(const absl::Status& s) { return HttpCode(s) == 403; }
bool IsUnauthorized(const absl::Status& s) { return HttpCode(s) == 401; }
bool IsInvalid(const absl::Status& s) {
  return HttpCode(s) == 422 || KubeReason(s) == "Invalid";
}

}  // namespace mcl::kube
