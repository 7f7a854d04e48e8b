// KeyCache: what the controller knows of the lock keys in etcd
// (<prefix>/<namespace>/<name>), kept by one list + watch of the prefix and by
// the answers of our own Txns. Reconciles read it (View); the executor writes
// what a Txn taught it (Apply). An entry is replaced only by newer news (a
// higher revision), so a late watch event never undoes a Txn answer.
//
// `known` is false until the first list, and again from a watch disconnect
// until the watch is back: the reconciler then neither contends nor releases
// (design.md §"Controller reconcile" rule 6 needs the watch).
//
// Threads: its own thread lists and (re)starts the watch, with backoff, each
// time the watch ends (compaction, cancellation); the etcd watch thread
// delivers events; any thread reads. Callbacks (on_key, on_resync) run on
// those threads without the cache's lock held.
#ifndef MCL_CONTROLLER_KEY_CACHE_H_
#define MCL_CONTROLLER_KEY_CACHE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/etcd/client.h"
#include "common/etcd/kv.h"
#include "common/etcd/watch.h"
#include "controller/lock_reconciler.h"
#include "controller/metrics.h"

namespace mcl::controller {

// One key as last known.
struct KeyEntry {
  bool present = false;
  int64_t mod_revision = 0;
  int64_t lease = 0;
  std::string raw;
  // The revision this is from (a put's mod_revision, a delete's revision).
  int64_t rev = 0;
};

class KeyCache {
 public:
  struct Callbacks {
    // A lock's key changed (watch event).
    std::function<void(const std::string& lock_key)> on_key;
    // The whole state was (re)learned: every lock needs a look.
    std::function<void()> on_resync;
    // Any change that may alter KeysHeldBy() (for waiters).
    std::function<void()> on_change;
    // A replica-epoch key (contract.h) was written or deleted at `revision`.
    std::function<void(const std::string& cluster, int64_t revision)> on_epoch;
  };
  // `watch_silence`: a watch that receives nothing for this long (not even an
  // answer to its progress requests) is re-established (etcd/watch.h).
  KeyCache(etcd::Client* etcd, Clock* clock, std::string prefix,
           absl::Duration watch_silence, Metrics* metrics, Callbacks callbacks);
  ~KeyCache();  // Stop()

  // Starts the list + watch thread.
  void Start();
  void Stop();

  KeyView View(const std::string& lock_key) const;
  // Newer news about one key (a Txn's answer).
  void Apply(const std::string& lock_key, const KeyEntry& entry);
  // Drops a key's entry if it says "absent" (nothing left to remember).
  void ForgetTombstone(const std::string& lock_key);
  bool known() const;
  // Keys present and attached to `lease`: how many, and which (lock key and
  // mod_revision).
  int64_t KeysHeldBy(int64_t lease) const;
  std::vector<std::pair<std::string, int64_t>> HeldBy(int64_t lease) const;
  // Lock keys present in etcd.
  std::vector<std::string> PresentKeys() const;

  // "ns/name" of an etcd key under the prefix; "" if it is not a lock key.
  std::string LockKeyOf(const std::string& etcd_key) const;
  std::string EtcdKey(const std::string& lock_key) const;

 private:
  // Replica-epoch keys seen (cluster, mod_revision), announced outside mu_.
  using EpochNews = std::vector<std::pair<std::string, int64_t>>;

  void Run();
  // Lists the prefix into the cache, then watches from the list's revision.
  absl::Status ListAndWatch();
  // The list step: the cache's revision.
  absl::StatusOr<int64_t> List();
  // The watch's events (etcd's watch thread).
  void OnWatchEvents(const std::vector<etcd::Event>& events);
  // The lock key of an etcd key, or "" for a replica-epoch key (added to
  // `epochs`) or a stray one (warned about once).
  std::string Classify(const std::string& etcd_key, int64_t mod_revision,
                       EpochNews* epochs) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The callbacks for news applied (outside mu_).
  void Announce(const EpochNews& epochs,
                const std::vector<std::string>& touched);
  // Logs a key under the prefix that names no lock, once per key.
  void WarnStray(const std::string& etcd_key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyLocked(const std::string& lock_key, const KeyEntry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  etcd::Client* const etcd_;
  Clock* const clock_;
  const std::string prefix_;
  const absl::Duration watch_silence_;
  Metrics* const metrics_;
  const Callbacks callbacks_;
  etcd::KV kv_;

  mutable absl::Mutex mu_;
  std::map<std::string, KeyEntry> keys_ ABSL_GUARDED_BY(mu_);
  bool known_ ABSL_GUARDED_BY(mu_) = false;
  bool needs_restart_ ABSL_GUARDED_BY(mu_) = true;
  std::set<std::string> warned_ ABSL_GUARDED_BY(mu_);

  // Only the cache's thread starts and stops the watch (never from its own
  // callback).
  std::unique_ptr<etcd::Watch> watch_;
  std::atomic<bool> stopping_{false};
  Wakeup wake_;  // the watch ended, or Stop()
  std::thread thread_;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_KEY_CACHE_H_
