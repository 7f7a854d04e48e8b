// Lease: etcd leases (like clientv3.Lease): Grant, Revoke, TimeToLive, and
// KeepAlive of any number of leases over ONE bidirectional LeaseKeepAlive
// stream per Lease object.
//
// KeepAlive sends a keepalive for each lease every TTL/3 (the first one at
// once), reconnecting the stream with the one Backoff (failing over to the next
// endpoint). For every answer it reports the remaining TTL together with
// `sent_at`, the local monotonic time (ClientConfig::clock) taken just *before*
// the answered keepalive was written. etcd renews a lease when it receives the
// keepalive, which is after `sent_at`, so the lease lives at least until
// sent_at + ttl by this host's clock (less the clock-rate drift between this
// host and etcd's, which the caller subtracts as a margin). Answers are matched
// to sends per lease in order: etcd answers one stream's keepalives in the
// order it receives them.
//
// A lease is reported lost (on_lost, once; its keepalive then stops) when
//   - etcd answers with TTL <= 0: the lease is gone (expired or revoked):
//     NOT_FOUND; or
//   - no keepalive was answered for a whole TTL since the last answered one
//     was sent (etcd unreachable): it may have expired, nobody can tell it has
//     not: DEADLINE_EXCEEDED.
// A stream whose keepalives go unanswered for max(1 s, TTL/2) (a member that
// holds bytes, a half-open connection) is dropped and re-established on the
// next endpoint, at once, so one stuck member does not cost the session.
//
// Callbacks run on the Lease's own thread, one at a time; they may call Lease
// methods.
#ifndef MCL_COMMON_ETCD_LEASE_H_
#define MCL_COMMON_ETCD_LEASE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/etcd/client.h"

namespace mcl::etcd {

struct LeaseGrant {
  int64_t id = 0;
  int64_t ttl_seconds = 0;  // as granted by etcd (it may raise a too-small TTL)
  // Local monotonic time just before the Grant was sent.
  absl::Duration sent_at;
  int64_t revision = 0;
};

struct LeaseInfo {
  int64_t id = 0;
  int64_t ttl_seconds = 0;          // remaining
  int64_t granted_ttl_seconds = 0;  // as granted
  std::vector<std::string> keys;    // attached keys, when asked for
};

struct KeepAliveResponse {
  int64_t id = 0;
  int64_t ttl_seconds = 0;  // the lease's TTL after this renewal
  // Monotonic time just before the answered keepalive was sent.
  absl::Duration sent_at;
  absl::Duration received_at;  // monotonic time the answer was read
  int64_t revision = 0;        // header revision of the answer
  std::string endpoint;        // who answered
};

struct KeepAliveCallbacks {
  std::function<void(const KeepAliveResponse&)> on_renewed;  // optional
  std::function<void(const absl::Status&)> on_lost;  // optional; at most once
};

class Lease {
 public:
  explicit Lease(Client* client);
  // Ends the keepalive stream and waits for its thread. Leases are not revoked:
  // they expire after their TTL. Must not run on a callback of this Lease.
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  // A new lease of `ttl_seconds` (> 0); `id` 0 lets etcd choose.
  absl::StatusOr<LeaseGrant> Grant(
      int64_t ttl_seconds, int64_t id = 0,
      absl::Duration timeout = absl::ZeroDuration());
  // Revokes the lease (deleting every key attached to it) and stops its
  // keepalive. NOT_FOUND when it no longer exists.
  absl::Status Revoke(int64_t id,
                      absl::Duration timeout = absl::ZeroDuration());
  // Remaining TTL (and attached keys with `keys`); NOT_FOUND when the lease
  // does not exist.
  absl::StatusOr<LeaseInfo> TimeToLive(
      int64_t id, bool keys = false,
      absl::Duration timeout = absl::ZeroDuration());

  // Keeps `grant` alive on this Lease's stream until StopKeepAlive, Revoke,
  // loss or destruction. The grant's sent_at + ttl bounds how long it may go
  // unconfirmed. ALREADY_EXISTS when it is already kept alive here.
  absl::Status KeepAlive(const LeaseGrant& grant, KeepAliveCallbacks callbacks);
  // Stops keeping `id` alive. After it returns no callback for `id` runs
  // (unless it is called from such a callback).
  void StopKeepAlive(int64_t id);
  // Sends the next keepalive of `id` now rather than at its period (the
  // controller does so after a grant, so the confirmation that follows covers
  // the new holder's latest renewal). No-op if `id` is not kept alive here.
  void KeepAliveNow(int64_t id);
  // Leases kept alive now.
  std::vector<int64_t> KeptAlive() const;

 private:
  struct Kept {
    int64_t ttl_seconds = 0;
    absl::Duration alive_until;  // last answered sent_at + ttl (monotonic)
    absl::Duration next_send;
    // Send times of unanswered keepalives, oldest first.
    std::deque<absl::Duration> pending;
    KeepAliveCallbacks callbacks;
  };
  struct Inbox {
    etcdserverpb::LeaseKeepAliveResponse response;
    absl::Duration received_at;
  };
  using Batch = std::vector<std::function<void()>>;

  using KeepAliveStream =
      grpc::ClientReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                               etcdserverpb::LeaseKeepAliveResponse>;
  // The keepalive thread: one stream at a time, reconnecting with backoff.
  // Its steps follow.
  void Run();
  // Waits until a lease is kept or Stop(); false on Stop().
  bool WaitForWork();
  // How long connecting may take: the dial timeout, bounded by the first
  // lease's expiry.
  absl::Duration ConnectBudget();
  // Makes `ctx` the current stream's; resets the inbox and every lease's
  // pending sends. False when stopping.
  bool BeginStream(std::shared_ptr<grpc::ClientContext> ctx);
  // The reader thread: queues answers in inbox_ until the stream ends.
  void ReadAnswers(KeepAliveStream* rw);
  // Sends keepalives when due and handles answers and losses until the stream
  // ends, a write fails, answers are overdue (*silent) or Stop().
  void ServeStream(KeepAliveStream* rw, const std::string& endpoint,
                   bool* answered, bool* silent);
  // False when a write failed.
  bool SendKeepAlives(KeepAliveStream* rw, const std::vector<int64_t>& due);
  // After the stream: handles the answers read before it ended; sets
  // *status to why it ended. False when stopping.
  bool EndStream(const std::string& endpoint, bool silent,
                 grpc::Status* status);
  // Under mu_: handles answers and losses, and (stream up) picks the leases due
  // a keepalive. Returns when to look again.
  absl::Duration Step(bool stream_up, const std::string& endpoint,
                      std::vector<int64_t>* due, Batch* batch,
                      bool* silent = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs callbacks with callback_mu_ held (taken before mu_ is released, so
  // StopKeepAlive can wait for a batch that may still name its lease).
  void RunBatch(Batch* batch) ABSL_UNLOCK_FUNCTION(mu_);
  // Sleeps for `d` (stop-aware) while still reporting losses.
  void WaitOffline(absl::Duration d);

  Client* client_;
  Clock* clock_;
  // Wakes the keepalive thread (an answer, a kick, a stop); its timed waits
  // run on the monotonic clock.
  Wakeup wake_;
  mutable absl::Mutex mu_;
  std::map<int64_t, Kept> kept_ ABSL_GUARDED_BY(mu_);
  std::deque<Inbox> inbox_ ABSL_GUARDED_BY(mu_);
  bool reader_done_ ABSL_GUARDED_BY(mu_) = false;
  bool kick_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<grpc::ClientContext> ctx_ ABSL_GUARDED_BY(mu_);
  absl::Mutex callback_mu_;
  std::thread thread_;
  std::thread::id thread_id_;
};

}  // namespace mcl::etcd

#endif  // MCL_COMMON_ETCD_LEASE_H_
