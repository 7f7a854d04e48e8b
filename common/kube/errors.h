// Errors from the Kubernetes API as absl::Status. A non-2xx response becomes a
// Status whose code follows the HTTP status (409 Conflict -> Aborted, 404 ->
// NotFound, 403 -> PermissionDenied, ...), whose message names the method, URL,
// HTTP code, the Kubernetes reason and the server's message, and which carries
// the reason and HTTP code as payloads so callers can branch on them:
//
//   auto s = client.Update(...);
//   if (kube::IsConflict(s.status())) { re-read and retry }
//
// Transport failures (connection refused, TLS handshake, timeout) carry no HTTP
// code; bodies that are not Kubernetes `Status` objects (an HTML page from a
// proxy, garbage) are described, not parsed.
#ifndef MCL_COMMON_KUBE_ERRORS_H_
#define MCL_COMMON_KUBE_ERRORS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/kube/json.h"

namespace mcl::kube {

// The error for an HTTP response with a non-2xx `http_code`. `body` is parsed
// as a Kubernetes metav1.Status when it is one; otherwise the content type and
// a snippet of the body are reported.
absl::Status StatusFromResponse(int http_code, absl::string_view content_type,
                                absl::string_view body,
                                absl::string_view method,
                                absl::string_view url);

// The error a watch ERROR event carries: `status` is the event's object, a
// metav1.Status; read like a response body of that code (a missing code reads
// as 500). `where` names the watch.
absl::Status StatusFromWatchError(const Json& status, absl::string_view where);

// The Kubernetes reason ("Conflict", "NotFound", "AlreadyExists", "Expired",
// "Forbidden", ...) of an error built by this library; "" for other statuses.
std::string KubeReason(const absl::Status& s);
// The HTTP status code of an error built from a response; 0 for transport
// errors and others.
int HttpCode(const absl::Status& s);
// Attaches a reason / HTTP code to `s` (used by this library; exposed for tests
// of callers).
absl::Status WithKubeDetails(absl::Status s, absl::string_view reason,
                             int http_code);

// 404 and 409 AlreadyExists map to absl's NotFound and AlreadyExists codes: use
// absl::IsNotFound() and absl::IsAlreadyExists() for them. 409 with reason
// Conflict: the resourceVersion (or a precondition) was stale. Re-read, then
// retry.
bool IsConflict(const absl::Status& s);
// 410 Gone, or reason Expired/Gone: a watch or list resourceVersion is too old;
// relist.
bool IsGone(const absl::Status& s);
// "Too large resource version": the server has not reached the version asked
// for — it is catching up (its watch cache lags etcd), or its etcd was
// restored from a backup and that version is in a future it may never reach
// with the same meaning. A Timeout (504) whose details name the cause
// ResourceVersionTooLarge, or (servers before 1.18.6) whose message says it.
// Relist from a quorum read, as for IsGone.
bool IsTooLargeResourceVersion(const absl::Status& s);
bool IsForbidden(const absl::Status& s);
bool IsUnauthorized(const absl::Status& s);
// 422 / reason Invalid: the object failed validation.
bool IsInvalid(const absl::Status& s);

}  // namespace mcl::kube

#endif  // MCL_COMMON_KUBE_ERRORS_H_
