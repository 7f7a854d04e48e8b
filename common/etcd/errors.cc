#include "common/etcd/errors.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace mcl::etcd {

absl::Status FromGrpc(const grpc::Status& status, absl::string_view method,
                      absl::string_view endpoint) {
  if (status.ok()) return absl::OkStatus();
  auto code = static_cast<absl::StatusCode>(status.error_code());
  std::string message = status.error_message();
  if (message.empty()) message = "(no message)";
  return absl::Status(
      code, absl::StrCat("etcd ", method, " on ", endpoint, ": ",
                         absl::StatusCodeToString(code), ": ", message));
}

bool IsInvalidAuthToken(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAUTHENTICATED &&
         absl::StrContains(status.error_message(), "invalid auth token");
}

bool IsAuthOldRevision(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::INVALID_ARGUMENT &&
         absl::StrContains(status.error_message(),
                           "revision of auth store is old");
}

}  // namespace mcl::etcd
