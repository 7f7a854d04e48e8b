// ElectionApi: what the gRPC service (service.h) asks of the sidecar's core,
// and the values that cross between them. Election (election.h) implements it
// over the Kubernetes API; service_test implements it with a script, so the
// service is tested over real gRPC without an apiserver.
#ifndef MCL_SIDECAR_ELECTION_API_H_
#define MCL_SIDECAR_ELECTION_API_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/leadership.h"

namespace mcl::sidecar {

struct LockKey {
  std::string ns, name;
  std::string str() const { return ns + "/" + name; }
  bool operator<(const LockKey& o) const {
    return ns != o.ns ? ns < o.ns : name < o.name;
  }
  bool operator==(const LockKey& o) const {
    return ns == o.ns && name == o.name;
  }
};

// One event for a stream (Campaign or Observe).
struct StreamEvent {
  LockKey lock;
  LeadershipEvent event;
  absl::Time time;  // wall clock, informational
};

// A stream's outlet. Thread-safe. Send and Finish must not block and must not
// call into the core (they are called with its mutex held, so that every sink
// of a lock receives events in one order).
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void Send(const StreamEvent& e) = 0;
  // Ends the stream after the events already sent.
  virtual void Finish(const absl::Status& s) = 0;
};

// Counters for /metrics, per lock.
struct LockMetrics {
  bool is_leader = false;
  int64_t transitions = 0;  // LEADER events of a new grant (not renewals)
  int64_t renew_errors = 0;
  // Campaigns on this sidecar for the lock that have not ended (computed
  // when read; 0 for a lock only observed, or whose campaigns all ended).
  int64_t campaigns = 0;
};

class ElectionApi {
 public:
  virtual ~ElectionApi() = default;

  // The request's lock with the default namespace filled in.
  virtual LockKey Key(const std::string& ns, const std::string& name) const = 0;
  // The request's identity, or the sidecar's default when empty.
  virtual std::string Identity(const std::string& requested) const = 0;
  virtual absl::Duration DefaultLeaseDuration() const = 0;

  // Registers a candidate and sends its first event to `sink` before
  // returning. Errors: ALREADY_EXISTS (same lock and identity), UNAVAILABLE
  // (not synced / watch failing / shutting down). Later errors end the stream
  // through `sink`.
  virtual absl::StatusOr<uint64_t> StartCampaign(
      const LockKey& key, const std::string& identity,
      absl::Duration lease_duration, std::shared_ptr<EventSink> sink) = 0;
  // The stream ended (cancelled, disconnected): resign at once. Never blocks;
  // may be called from inside a sink's Send or Finish.
  virtual void EndCampaign(uint64_t id, const std::string& reason) = 0;
  // Resigns the campaigns of `key` (all identities when `identity` is empty);
  // `done` gets whether one of them was leading, or FAILED_PRECONDITION /
  // UNAVAILABLE. `done` runs on some thread of the core or on the caller's,
  // never under the core's mutex.
  virtual void Resign(const LockKey& key, const std::string& identity,
                      std::function<void(absl::StatusOr<bool>)> done) = 0;

  virtual absl::StatusOr<uint64_t> StartObserve(
      const LockKey& key, std::shared_ptr<EventSink> sink) = 0;
  // Never blocks; may be called from inside a sink's Send or Finish.
  virtual void EndObserve(uint64_t id) = 0;

  // Current grant; NOT_FOUND when nobody leads; UNAVAILABLE when not synced /
  // watch failing.
  virtual absl::StatusOr<Grant> Leader(const LockKey& key) = 0;
};

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_ELECTION_API_H_
