// Watch: a stream of changes to a key or a prefix (like clientv3.Watcher, one
// watch per stream).
//
//   WatchOptions o;
//   o.key = "/mcl/locks/";
//   o.prefix = true;
//   o.start_revision = rev + 1;
//   o.prev_kv = true;
//   WatchCallbacks cb;
//   cb.on_events = [](const std::vector<Event>& events, int64_t revision) {
//     ...
//   };
//   cb.on_compacted = [](int64_t compact_revision) {
//     // Relist, then watch again.
//   };
//   auto w = Watch::Start(client, o, cb);
//   ...
//   (*w)->Stop();
//
// Guarantees:
//   - Events arrive in revision order, each exactly once, on the watch's own
//     thread, in batches that never split a revision (etcd sends all of one
//     revision's events together).
//   - When the stream breaks (etcd restarted, endpoint failed over, token
//     expired), the watch comes back by itself after the one Backoff and
//     resumes from the revision after the last event it delivered (or the
//     last progress revision), so nothing is lost; events at or below the
//     last delivered revision are dropped, so nothing is duplicated.
//   - If the revision to resume from (or start_revision) was compacted, etcd
//     cannot deliver what was lost: on_compacted(compact_revision) and then
//     on_done(OUT_OF_RANGE) end the watch. The caller re-reads the state and
//     watches again from the read's revision + 1.
//   - A stream cannot go silently stale. Every silence_timeout/3 the watch
//     asks etcd for a progress notification on the stream (etcd >= 3.4
//     answers at once); if nothing at all arrives for silence_timeout (a
//     member that holds bytes, a half-open connection), the stream is
//     cancelled and re-established on the next endpoint, resuming as above.
//     With require_leader, a member that has lost its leader (partitioned
//     from the majority) ends the stream at once ("no leader") instead of
//     serving it from a stale copy.
//   - Stop() returns promptly (it cancels the stream) and no callback runs
//     after it returns.
#ifndef MCL_COMMON_ETCD_WATCH_H_
#define MCL_COMMON_ETCD_WATCH_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/etcd/client.h"
#include "common/etcd/types.h"

namespace mcl::etcd {

struct WatchOptions : KeyRange {
  std::string key;
  // First revision to deliver; 0 = changes after the watch starts.
  int64_t start_revision = 0;
  bool prev_kv = false;  // deliver the previous value with each event
  // Ask etcd for periodic progress notifications (on_progress), so a quiet
  // watch still learns how far it is, and resumes from there (the interval is
  // etcd's --experimental-watch-progress-notify-interval).
  bool progress_notify = false;
  bool no_put = false;     // do not deliver PUT events
  bool no_delete = false;  // do not deliver DELETE events
  // Nothing received for this long re-establishes the stream (see the file
  // comment); progress is asked for every third of it. At least 300 ms.
  absl::Duration silence_timeout = absl::Seconds(10);
  // etcd's "hasleader" metadata (clientv3.WithRequireLeader).
  bool require_leader = true;
};

struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for a DELETE: the key and the delete's mod_revision
  std::optional<KeyValue> prev_kv;
};

struct WatchCallbacks {
  // Each (re)start of the stream, with the header revision etcd answered with.
  std::function<void(int64_t revision)> on_created;
  // A batch of events in revision order; `revision` is the response's header
  // revision.
  std::function<void(const std::vector<Event>& events, int64_t revision)>
      on_events;
  // All changes up to `revision` have been delivered.
  std::function<void(int64_t revision)> on_progress;
  // The stream broke and will be re-established (for logs and metrics).
  std::function<void(const absl::Status& why)> on_disconnected;
  // The revision to start from is compacted; the watch then ends (on_done
  // OUT_OF_RANGE follows).
  std::function<void(int64_t compact_revision)> on_compacted;
  // The watch ended by itself (compaction, cancelled by etcd e.g. for
  // permissions, bad options); not called after Stop().
  std::function<void(const absl::Status& why)> on_done;
};

class Watch {
 public:
  // Starts watching on a thread of its own. INVALID_ARGUMENT for bad options;
  // everything else (etcd down, ...) is retried inside.
  static absl::StatusOr<std::unique_ptr<Watch>> Start(Client* client,
                                                      WatchOptions options,
                                                      WatchCallbacks callbacks);
  // Stop()s. Must not run on one of this watch's callbacks.
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // Cancels the stream and waits for the thread (unless called from a callback,
  // where it only tells the thread to end after the callback).
  void Stop();
  // Ended by itself (see on_done) or stopped.
  bool Done() const;
  // Why it ended; OK while running or after Stop().
  absl::Status status() const;
  // The revision the watch would resume from now.
  int64_t next_revision() const;

 private:
  Watch(Client* client, WatchOptions options, WatchCallbacks callbacks,
        std::string range_end);
  using WatchStream = grpc::ClientReaderWriter<etcdserverpb::WatchRequest,
                                               etcdserverpb::WatchResponse>;
  void Run();
  bool Stopping() const;
  // One stream's life; returns a terminal status to end the watch, or nullopt
  // to reconnect. Its steps follow.
  std::optional<absl::Status> RunStream(bool* made_progress);
  etcdserverpb::WatchRequest CreateRequest(int64_t start) const;
  // A compaction or a cancel by etcd: the terminal status that ends the watch.
  std::optional<absl::Status> EndedByEtcd(
      const etcdserverpb::WatchResponse& resp, const std::string& endpoint,
      int64_t start);
  // Any other response: created, progress, or events (deduplicated, then
  // delivered); moves the resume point.
  void OnResponse(const etcdserverpb::WatchResponse& resp, bool* made_progress);
  void DeliverEvents(const etcdserverpb::WatchResponse& resp,
                     bool* made_progress);
  // After the read loop: stops the guard, finishes the call, and reports a
  // disconnect (unless terminal or stopping). Returns `terminal`.
  std::optional<absl::Status> EndStream(const Client::Stream& stream,
                                        WatchStream* rw, std::thread* guard,
                                        std::optional<absl::Status> terminal);
  // While a stream is up: asks for progress and cancels the stream when it is
  // silent for silence_timeout. Returns when the stream ends.
  void GuardSilence(grpc::ClientContext* ctx, WatchStream* rw);
  void Finish(absl::Status why);

  Client* client_;
  const WatchOptions options_;
  const WatchCallbacks callbacks_;
  const std::string range_end_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<grpc::ClientContext> ctx_ ABSL_GUARDED_BY(mu_);
  // Resume point and dedup mark; only the watch thread writes them.
  int64_t next_rev_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_delivered_ = 0;
  // The stream being guarded: when it last received anything; whether it
  // ended; whether the guard cancelled it for silence.
  absl::Duration last_heard_ ABSL_GUARDED_BY(mu_);
  bool stream_done_ ABSL_GUARDED_BY(mu_) = false;
  bool silent_ ABSL_GUARDED_BY(mu_) = false;
  Wakeup guard_wake_;  // the stream ended, or Stop()
  std::thread thread_;
};

}  // namespace mcl::etcd

#endif  // MCL_COMMON_ETCD_WATCH_H_
