// Session: one lease kept alive for as long as the program holds it (like
// clientv3/concurrency's Session). The controller creates one, attaches every
// lock key it holds to lease_id(), and so pays one keepalive per TTL/3 whatever
// the number of locks.
//
//   SessionOptions o;
//   o.ttl_seconds = 10;
//   o.on_lost = [](const absl::Status& why) {
//     // Stop leading everything: the keys may be gone.
//   };
//   auto session = Session::Create(client, o);
//   kv.Commit(CreateIfAbsent(key, value, (*session)->lease_id()));
//   ...
//   (*session)->Close();  // revokes: every attached key is deleted at once
//
// Adopt() keeps alive a lease that someone else granted (a controller replica
// that takes over from another keeps its session, and with it every key and
// every grant announced under it), after checking with etcd that it still
// lives and how much of its TTL is left.
//
// The session is lost (Done(), on_lost) when etcd says the lease is gone or
// when no keepalive was answered for a whole TTL (lease.h). A lost session
// stays lost; make a new one. known_alive_until() is the local monotonic
// instant until which the lease cannot have expired (last answered keepalive's
// send time + TTL), before any clock-drift margin.
#ifndef MCL_COMMON_ETCD_SESSION_H_
#define MCL_COMMON_ETCD_SESSION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/etcd/client.h"
#include "common/etcd/lease.h"

namespace mcl::etcd {

// What is known about the lease when the session starts: it cannot expire
// before valid_from + remaining on this host's monotonic clock (less the
// clock-rate drift between this host and etcd's leader).
struct SessionStart {
  int64_t id = 0;
  absl::Duration ttl;         // as granted
  absl::Duration valid_from;  // before etcd granted it / answered TimeToLive
  absl::Duration remaining;   // of the TTL at valid_from: the TTL for a grant
  bool adopted = false;
};

struct SessionOptions {
  // TTL of a new lease (Create); an adopted lease keeps the TTL it was granted.
  int64_t ttl_seconds = 10;
  // Of the Grant or TimeToLive; zero = the client's call_timeout.
  absl::Duration timeout = absl::ZeroDuration();
  // Called on the caller's thread once the lease is granted or found alive,
  // before its keepalive starts (so before any on_renewed / on_lost).
  std::function<void(const SessionStart&)> on_start;
  // Called on the session's keepalive thread; must not destroy the Session.
  std::function<void(const KeepAliveResponse&)> on_renewed;
  std::function<void(const absl::Status&)> on_lost;
};

class Session {
 public:
  // Grants the lease and starts keeping it alive on the session's own keepalive
  // stream.
  static absl::StatusOr<std::unique_ptr<Session>> Create(
      Client* client, SessionOptions options);
  // Keeps the existing lease `id` alive. NOT_FOUND when etcd says it no longer
  // exists (expired or revoked), or when less than a second of it is left.
  // The remaining TTL etcd reports (whole seconds, rounded down) counts from
  // before the question was sent.
  static absl::StatusOr<std::unique_ptr<Session>> Adopt(Client* client,
                                                        int64_t id,
                                                        SessionOptions options);
  // Stops the keepalive without revoking: the lease then expires after its TTL
  // (unless someone else keeps it alive). Close() first to release at once.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  int64_t lease_id() const { return start_.id; }
  int64_t ttl_seconds() const { return absl::ToInt64Seconds(start_.ttl); }
  const SessionStart& start() const { return start_; }

  // Sends the next keepalive now rather than at its period (Lease).
  void KeepAliveNow();

  // Lost or closed. When lost, on_lost has already returned.
  bool Done() const;
  // OK while alive; why it ended otherwise (NOT_FOUND / DEADLINE_EXCEEDED when
  // lost, CANCELLED when closed).
  absl::Status status() const;
  // Waits until Done() or `timeout`; returns Done().
  bool WaitDone(absl::Duration timeout) const;
  // The last answered keepalive, if any.
  std::optional<KeepAliveResponse> last_renewal() const;
  absl::Duration known_alive_until() const;

  // Stops keeping the lease alive, without revoking it. Idempotent; Done()
  // after it. For a lease another process may keep alive too (adopted).
  void StopKeepAlive();
  // Stops the keepalive and revokes the lease (deleting its keys). Idempotent.
  absl::Status Close(absl::Duration timeout = absl::ZeroDuration());

 private:
  Session(Client* client, SessionOptions options);
  absl::Status Start(const LeaseGrant& grant);
  void OnRenewed(const KeepAliveResponse& r);
  void OnLost(const absl::Status& why);
  void MarkDone(absl::Status why);

  SessionOptions options_;
  std::unique_ptr<Lease> lease_;
  SessionStart start_;
  mutable absl::Mutex mu_;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool revoked_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<KeepAliveResponse> last_ ABSL_GUARDED_BY(mu_);
  absl::Duration alive_until_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mcl::etcd

#endif  // MCL_COMMON_ETCD_SESSION_H_
