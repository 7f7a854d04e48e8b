// errors: every failure of the etcd client is an absl::Status whose code is the
// gRPC code and whose message names the call, the endpoint that failed and
// etcd's own words, e.g.
//   "etcd KV.Txn on 127.0.0.1:2379: UNAVAILABLE: connection refused"
// gRPC and absl share the numeric codes, so callers switch on absl::StatusCode.
#ifndef MCL_COMMON_ETCD_ERRORS_H_
#define MCL_COMMON_ETCD_ERRORS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace mcl::etcd {

// The gRPC status of `method` on `endpoint` as an absl::Status (OK stays OK).
absl::Status FromGrpc(const grpc::Status& status, absl::string_view method,
                      absl::string_view endpoint);

// etcd says the auth token is no longer valid (expired, or auth was
// re-enabled): fetch a new one.
bool IsInvalidAuthToken(const grpc::Status& status);
// etcd says the auth store moved on since the token was issued; a new token
// fixes it.
bool IsAuthOldRevision(const grpc::Status& status);

}  // namespace mcl::etcd

#endif  // MCL_COMMON_ETCD_ERRORS_H_
