// The gRPC channel to the sidecar, shared by the library and the `mcl`
// command (not part of the library's stable API).
#ifndef MCL_CLIENT_STUBS_CPP_SIDECAR_CHANNEL_H_
#define MCL_CLIENT_STUBS_CPP_SIDECAR_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace mcl::client {

// A plaintext channel (the sidecar listens on loopback or a unix socket only)
// whose own reconnect backoff is capped at `max_backoff`: gRPC's default cap
// is 120 s, so after a long sidecar outage the channel could otherwise wait
// two minutes before noticing that the sidecar is back.
std::shared_ptr<grpc::Channel> NewSidecarChannel(const std::string& address,
                                                 absl::Duration max_backoff);

// gRPC's status as an absl::Status with the same code and message.
absl::Status FromGrpc(const grpc::Status& s);

}  // namespace mcl::client

#endif  // MCL_CLIENT_STUBS_CPP_SIDECAR_CHANNEL_H_
