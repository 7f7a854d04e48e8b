// EventRecorder: core/v1 Events on an object ("kubectl describe" shows them),
// written in the background, rate-limited and aggregated so a flapping lock
// cannot flood the apiserver:
//
//   kube::EventRecorder events(client, {.component = "mcl-controller",
//   .instance = pod_name}); events.Record(kube::RefTo(lease),
//   kube::EventType::kNormal, "Granted", "fencing token 42");
//
//  * Rate limit: a token bucket per (object, reason): `burst` events at once,
//  then one per
//    `refill`. Events over the limit are dropped (counted in stats()).
//  * Aggregation: the same (object, type, reason, message) again within
//  `aggregate_window` updates
//    the existing Event (count+1, lastTimestamp) with a merge patch instead of
//    creating another.
//  * Record() never blocks on the network: a bounded queue feeds one writer
//  thread. A failed write
//    is counted and dropped (events are best-effort by design).
//
// Thread-safe.
#ifndef MCL_COMMON_KUBE_EVENTS_H_
#define MCL_COMMON_KUBE_EVENTS_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/kube/client.h"
#include "common/kube/objects.h"
#include "common/kube/waiters.h"

namespace mcl::kube {

struct ObjectReference {
  std::string api_version;
  std::string kind;
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string resource_version;
};

// The reference to a typed object (MultiClusterLease, Lease).
template <typename T>
ObjectReference RefTo(const T& obj) {
  const Resource& r = T::resource();
  return {r.ApiVersion(),    r.kind,           obj.metadata.namespace_,
          obj.metadata.name, obj.metadata.uid, obj.metadata.resource_version};
}

enum class EventType { kNormal, kWarning };

struct EventRecorderOptions {
  std::string component = "mcl";  // source.component and reportingComponent
  // source.host and reportingInstance (e.g. the pod name).
  std::string instance;
  int burst = 10;
  absl::Duration refill = absl::Seconds(30);
  absl::Duration aggregate_window = absl::Minutes(10);
  size_t queue_limit = 1000;
  // On destruction, how long queued events may still be written; the rest are
  // dropped (counted), so a process with a long queue still exits promptly.
  absl::Duration shutdown_flush = absl::Seconds(2);
  Clock* clock = Clock::Real();
};

class EventRecorder {
 public:
  struct Stats {
    int64_t created = 0;
    int64_t aggregated = 0;    // repeats written as a count update
    int64_t rate_limited = 0;  // dropped by the token bucket
    int64_t dropped =
        0;  // dropped because the queue was full or the recorder stopping
    int64_t failed =
        0;  // writes the apiserver refused or that did not reach it
    int64_t pending = 0;  // queued or being written now
  };

  EventRecorder(KubeClient* client, EventRecorderOptions options);
  // Writes what is queued for at most `shutdown_flush` (plus one request in
  // flight), drops the rest, then stops.
  ~EventRecorder();
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  // Queues an event; false when it was rate-limited or the queue is full.
  bool Record(const ObjectReference& object, EventType type,
              const std::string& reason, const std::string& message);
  // Waits until everything queued so far has been written or has failed, for
  // at most `timeout` of real monotonic time.
  bool Flush(absl::Duration timeout);
  Stats stats() const;
  absl::Status LastError() const;

 private:
  struct Pending {
    ObjectReference object;
    EventType type;
    std::string reason, message;
    absl::Time at;
  };
  struct Bucket {
    double tokens;
    absl::Duration updated;
  };
  struct Written {
    std::string namespace_, name;
    int64_t count = 0;
    std::string first_timestamp;
    absl::Duration last;  // monotonic
  };
  void Run();
  void Write(const Pending& p);

  KubeClient* const client_;
  const EventRecorderOptions options_;
  mutable absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration flush_until_ ABSL_GUARDED_BY(mu_);  // monotonic, once stopping
  std::map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Written> written_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
  Waiters idle_;  // Flush() callers; notified after each write
  std::thread thread_;
};

}  // namespace mcl::kube

#endif  // MCL_COMMON_KUBE_EVENTS_H_
