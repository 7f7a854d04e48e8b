// Client: the connection to an etcd cluster, shared by KV, Lease, Session and
// Watch (like clientv3's Client). It owns one gRPC channel per endpoint and
// runs every unary call with:
//   - a deadline (the call's own timeout or ClientConfig::call_timeout); no
//     call can hang;
//   - failover: calls go to the current endpoint; one that cannot be reached
//     (UNAVAILABLE) is left for the next. A read is retried on the next
//     endpoint at once. A mutation (Put, Delete, Txn, lease Grant/Revoke) is
//     retried on the next endpoint only when it was never sent (the endpoint
//     did not connect); if the connection broke after sending, the outcome is
//     unknown and the UNAVAILABLE error says so, because applying a Txn twice
//     is not the same as applying it once;
//   - auth: with a username, a token from Auth.Authenticate in the "token"
//     metadata, fetched on the first call and again (once per call) when etcd
//     answers "invalid auth token";
//   - errors as absl::Status with the gRPC code, naming the method and
//     endpoint (errors.h).
// Thread-safe. KV, Lease, Session and Watch objects keep a pointer: they must
// not outlive it.
//
//   mcl::etcd::ClientConfig config;
//   config.endpoints = {"127.0.0.1:2379", "127.0.0.1:22379"};
//   auto client = mcl::etcd::Client::Create(config);
//   if (!client.ok()) return client.status();
//   mcl::etcd::KV kv(client->get());
#ifndef MCL_COMMON_ETCD_CLIENT_H_
#define MCL_COMMON_ETCD_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/etcd/config.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace mcl::etcd {

class Client {
 public:
  // Validates `config` and reads the TLS files; connects lazily (the first
  // call), so etcd need not be up yet. Errors: INVALID_ARGUMENT (no endpoint,
  // bad endpoint, half a key pair, username without password), NOT_FOUND (a TLS
  // file cannot be read).
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientConfig config);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientConfig& config() const { return config_; }
  Clock* clock() const { return config_.clock; }
  // The endpoint calls go to now, "host:port".
  std::string current_endpoint() const;
  // Fetches an auth token now instead of on the first call; OK at once without
  // a username. A wrong password: INVALID_ARGUMENT "... authentication failed,
  // invalid user ID or password".
  absl::Status Authenticate(absl::Duration timeout = absl::ZeroDuration());
  // How many tokens were fetched so far (the first and every refresh).
  int64_t token_fetches() const { return token_fetches_.load(); }

  // ---- The machinery below is for this library's KV, Lease and Watch. ----

  // One endpoint: its channel and the service stubs on it. Lives as long as the
  // Client.
  struct Connection {
    size_t index = 0;
    std::string address;  // "host:port"
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
    std::unique_ptr<etcdserverpb::Lease::Stub> lease;
    std::unique_ptr<etcdserverpb::Watch::Stub> watch;
    std::unique_ptr<etcdserverpb::Auth::Stub> auth;
    std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
  };
  enum class CallKind {
    kRead,      // safe to send twice: retried on the next endpoint after any
                // UNAVAILABLE
    kMutation,  // retried elsewhere only if it was never sent
  };
  // Runs `rpc` (which issues one unary call on the given connection with the
  // given context) under the rules above. `timeout` zero =
  // config().call_timeout; negative = INVALID_ARGUMENT.
  using Rpc = std::function<grpc::Status(Connection&, grpc::ClientContext*)>;
  absl::Status Call(absl::string_view method, CallKind kind,
                    absl::Duration timeout, const Rpc& rpc);

  // For a long-lived stream: a connected endpoint, trying each once from the
  // current one, and a context with the auth token. The caller owns the context
  // and cancels it to end the stream.
  struct Stream {
    Connection* connection = nullptr;
    std::string token;
  };
  absl::StatusOr<Stream> ConnectStream(absl::string_view method,
                                       absl::Time deadline);
  static void PrepareContext(const Stream& stream, grpc::ClientContext* ctx);
  // A stream on `stream.connection` ended with `status`: leave an unreachable
  // endpoint, drop an invalid token, so the next ConnectStream does better.
  void OnStreamError(const Stream& stream, const grpc::Status& status);

 private:
  explicit Client(ClientConfig config) : config_(std::move(config)) {}
  absl::Status CallImpl(absl::string_view method, CallKind kind,
                        absl::Time deadline, const Rpc& rpc, bool with_token);
  // Waits until `c` is connected (READY) or `deadline`; the error says why not.
  absl::Status WaitConnected(Connection& c, absl::Time deadline);
  absl::StatusOr<std::string> Token(absl::Time deadline);
  void InvalidateToken(const std::string& token);
  void MarkFailed(size_t index);

  ClientConfig config_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::atomic<size_t> current_{0};

  absl::Mutex auth_mu_;  // serialises token fetches
  mutable absl::Mutex token_mu_;
  std::string token_ ABSL_GUARDED_BY(token_mu_);
  std::atomic<int64_t> token_fetches_{0};
};

}  // namespace mcl::etcd

#endif  // MCL_COMMON_ETCD_CLIENT_H_
