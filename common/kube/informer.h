// Informer: the one list+watch loop of mcl (the sidecar and the controller both
// use it). It keeps an in-memory cache of one resource's objects, keyed by
// "namespace/name", and calls handlers for every add, update and delete:
//
//   kube::Informer inf(client, kube::MultiClusterLeaseResource(),
//                      {.namespace_ = "default"},
//                      {.on_add = ..., .on_update = ..., .on_delete = ...});
//   inf.Start();
//   inf.WaitForSync(absl::Seconds(10));
//   ...
//   inf.Stop();  // prompt: cancels the open request
//
// How it stays exact:
//  * An initial LIST (paged) fills the cache; then a WATCH from the list's
//    resourceVersion with allowWatchBookmarks=true. Events move the cache;
//    bookmarks only advance the resourceVersion.
//  * A dropped or ended watch resumes from the last resourceVersion seen
//    (event or bookmark), so no event is lost or repeated. Failures wait a
//    full-jitter exponential backoff (common/backoff.h).
//  * 410 Gone (an HTTP 410, or an ERROR event with code 410 / reason Expired)
//    means the version is too old, and "too large resource version" that the
//    server has not reached it: either way the informer relists from a quorum
//    read and diffs the new list against the cache, emitting adds for new
//    keys, updates for changed resourceVersions, and deletes for keys that
//    vanished — each change exactly once; unchanged objects emit nothing.
//  * A MODIFIED event that carries the cached resourceVersion again is
//    ignored (no duplicate).
//
// How it stays live (README.md, "Silent watches"):
//  * A watch that goes `watch_idle_timeout` (75 s by default) without a byte
//    is closed and opened again. A quiet watch is normal — the apiserver
//    sends bookmarks only when its cache of the resource moves, so a
//    resource nobody writes gets none — but a path that holds bytes without
//    a reset looks the same from here, and this bound is what stops it from
//    leaving the cache stale unnoticed.
//  * Before resuming a watch that broke, went idle or ended without progress,
//    the informer reads the collection's current resourceVersion (a quorum
//    LIST of one item). On a held path that read fails at the client's
//    request timeout, and the informer keeps retrying with backoff. If the
//    version read is below what the informer has already seen, the
//    apiserver's history went back — its etcd was restored from a backup —
//    and a watch from the old version would wait, silently, for a future
//    that may never have the same meaning: the informer relists instead,
//    comparing objects by content (versions are reused after a restore).
//
// Threads: one background thread runs the loop and calls the handlers,
// serially and in the server's order. The cache is updated before the handler
// for a change runs. Handlers must not block for long and must not call
// Stop(); they may call the read methods below. All public methods are
// thread-safe. Every timed wait (backoff, WaitUntil, WaitForSync) runs on the
// monotonic clock, never on abseil's wall-clock-based timed waits.
#ifndef MCL_COMMON_KUBE_INFORMER_H_
#define MCL_COMMON_KUBE_INFORMER_H_

#include <pplx/pplxtasks.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/backoff.h"
#include "common/kube/client.h"
#include "common/kube/objects.h"
#include "common/kube/waiters.h"
#include "common/stop_flag.h"

namespace mcl::kube {

struct InformerOptions {
  std::string namespace_;  // "" = all namespaces
  std::string label_selector;
  std::string field_selector;
  int64_t list_page_size = 500;
  // Server-side watch duration before a clean re-watch: each watch asks for a
  // random duration in [watch_timeout, 2 * watch_timeout) (see
  // JitteredWatchTimeout).
  absl::Duration watch_timeout = absl::Minutes(5);
  // A watch without a byte from the server (an event, a bookmark) for this
  // long is closed and opened again after a version check: the bound on how
  // long a silent path leaves the cache stale unnoticed (the file comment).
  // Each quiet informer costs the apiserver one version check and one watch
  // request per bound. 0: kDefaultWatchIdleTimeout.
  absl::Duration watch_idle_timeout = absl::ZeroDuration();
  Backoff::Options backoff = {absl::Milliseconds(100), absl::Seconds(10), 2.0};
  // Keep metadata.managedFields in cached objects. Off by default: nothing in
  // mcl reads them, and they are about half of a MultiClusterLease's memory in
  // the cache (docs/benchmarks.md, Controller).
  bool keep_managed_fields = false;
  // Keep each cached object as its JSON text instead of a parsed tree, and
  // parse on every read (Get, GetByKey, List, the old object of an update).
  // A cpprestsdk tree of a MultiClusterLease is about 4x its text, so this is
  // for callers with many objects and few reads per change: the controller
  // with thousands of locks (docs/benchmarks.md, Controller). Costs one
  // serialization per change and one parse per read.
  bool compact_cache = false;
  // Called (on the informer thread) for each failed list/watch and each object
  // it cannot use.
  std::function<void(const absl::Status&)> on_error;
};

using ObjectPtr = std::shared_ptr<const Json>;

// The server-side duration of one watch: `min` stretched by `u` (in [0, 1)) to
// [min, 2 * min), as client-go's reflector does, so that the many clients an
// apiserver restart or a rollout started together do not all re-watch (and
// open new connections) together every `min` afterwards.
absl::Duration JitteredWatchTimeout(absl::Duration min, double u);

// The default idle bound: above the apiserver's bookmark period (about a
// minute, k8s.io/apiserver's cacher), so a watch that does get bookmarks —
// its resource changes elsewhere, outside its selector — is not reopened.
inline constexpr absl::Duration kDefaultWatchIdleTimeout = absl::Seconds(75);
inline constexpr absl::Duration kMinWatchIdleTimeout = absl::Seconds(1);
// options.watch_idle_timeout, defaulted and clamped.
absl::Duration WatchIdleTimeout(const InformerOptions& options);

class Informer {
 public:
  struct Handlers {
    std::function<void(const Json& obj)> on_add;
    std::function<void(const Json& old_obj, const Json& new_obj)> on_update;
    // The object's last state (from the DELETED event, or the cache when found
    // gone on relist).
    std::function<void(const Json& obj)> on_delete;
    // Called after the handlers of every change up to resourceVersion `rv`
    // have run (a list, a watch event, a bookmark): what a caller observed in
    // them is everything written up to `rv`. Lets a caller time-stamp that
    // moment without polling LastSyncResourceVersion(). It runs before `rv`
    // is published: once LastSyncResourceVersion() reaches `rv` (or
    // HasSynced() turns true for the first list), on_synced(rv) has returned.
    std::function<void(const std::string& rv)> on_synced;
  };
  struct Stats {
    int64_t lists = 0;      // full lists (the first one and every relist)
    int64_t gone = 0;       // 410s that forced a relist
    int64_t too_large = 0;  // "too large resource version" that forced one
    int64_t idle = 0;       // watches closed by the idle bound (not errors)
    int64_t rewinds = 0;    // relists because the server's history went back
    int64_t probes = 0;     // resourceVersion checks before a resumed watch
    int64_t watches = 0;    // watch requests opened
    int64_t events = 0;     // ADDED/MODIFIED/DELETED applied
    int64_t bookmarks = 0;
    int64_t errors = 0;  // failed lists/watches
  };

  Informer(KubeClient* client, Resource resource, InformerOptions options,
           Handlers handlers);
  ~Informer();  // Stop()
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void Start();
  // Cancels the open request and joins the thread. Idempotent. Do not call from
  // a handler.
  void Stop();

  // True once the first list has been applied and its adds delivered.
  bool HasSynced() const;
  bool WaitForSync(absl::Duration timeout) const;
  // The resourceVersion the informer has processed: the list's, then each
  // event's (set only after its handler returned) and each bookmark's. Every
  // change the server committed at or below it has been applied to the cache
  // and handed to the handlers (docs/design.md, Confirmation). It goes back
  // only when the server's history did (an etcd restored from a backup; see
  // the file comment and stats().rewinds).
  std::string LastSyncResourceVersion() const;
  // Waits until LastSyncResourceVersion() >= rv, compared as integers (see
  // ParseResourceVersion); false on timeout.
  bool WaitForResourceVersion(const std::string& rv,
                              absl::Duration timeout) const;
  // Waits until `condition` holds, re-checking after every change, bookmark,
  // error and end of a watch; false on timeout. `condition` runs on the
  // calling thread and may use the read methods.
  bool WaitUntil(const std::function<bool()>& condition,
                 absl::Duration timeout) const;

  ObjectPtr Get(const std::string& ns, const std::string& name) const;
  ObjectPtr GetByKey(const std::string& key) const;
  std::vector<ObjectPtr> List() const;
  // The cached keys ("namespace/name"), sorted; parses nothing.
  std::vector<std::string> Keys() const;
  size_t Size() const;
  // The error of the latest list/watch; OK after a success.
  absl::Status LastError() const;
  Stats stats() const;
  const Resource& resource() const { return resource_; }

 private:
  enum class WatchEnd {
    kClosed,   // the server ended the stream
    kIdle,     // no byte within the idle bound
    kRelist,   // 410 Gone / Expired, or too large resource version
    kError,    // anything else (recorded)
    kStopped,  // Stop()
  };
  struct WatchResult {
    WatchEnd end = WatchEnd::kClosed;
    bool progress = false;  // an event or bookmark was applied
  };
  // One cache entry: the parsed tree, or (compact_cache) its text.
  struct Cached {
    std::string resource_version;
    ObjectPtr tree;
    std::string text;
  };
  Cached ToCached(ObjectPtr obj) const;
  // The object of an entry; nullptr (and an error recorded) only if the text
  // the informer itself serialized does not parse back.
  ObjectPtr Materialize(const Cached& entry) const;
  // Whether `entry` holds `obj` (by resourceVersion, and by content too when
  // `by_content`).
  bool Unchanged(const Cached& entry, const Json& obj, bool by_content) const;
  // Server-side apply bookkeeping (metadata.managedFields); mcl never reads it.
  static void DropManagedFields(Json& obj);
  void Run();
  // informer_list.cc. `by_content`: after the server's history went back,
  // when a version no longer identifies one state of an object.
  absl::Status ListAndReplace(bool by_content);
  // ListAndReplace's steps. A change a relist found: an add (old_entry
  // empty), an update, or a delete (new_obj null).
  struct ListChange {
    Cached old_entry;
    ObjectPtr new_obj;
    bool is_add = false;
  };
  // The listed items by key, checked and in the shape watch events have.
  absl::StatusOr<std::map<std::string, ObjectPtr>> ListedObjects(
      JsonList& list) const;
  // Makes the cache the list; what changed, for the handlers.
  std::vector<ListChange> ReplaceCache(
      const std::map<std::string, ObjectPtr>& fresh, bool by_content);
  void Dispatch(const std::vector<ListChange>& changes) const;
  // informer_list.cc: the server's current resourceVersion is below
  // LastSyncResourceVersion().
  absl::StatusOr<bool> HistoryWentBack();
  WatchResult WatchOnce(absl::Duration server_timeout);
  bool HandleEvent(WatchEvent ev, WatchEnd* end, bool* progress);
  // Publishes `rv` as processed and wakes waiters.
  void Synced(const std::string& rv);
  void RecordError(const absl::Status& s);
  bool stopping() const;

  KubeClient* const client_;
  const Resource resource_;
  const InformerOptions options_;
  const Handlers handlers_;

  mutable absl::Mutex mu_;
  std::map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
  std::string last_rv_ ABSL_GUARDED_BY(mu_);
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  mutable absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  mutable Stats stats_ ABSL_GUARDED_BY(mu_);
  // WaitUntil() callers: woken after each change, bookmark, error and Stop().
  Waiters changes_;
  StopFlag stop_;                        // set by Stop(); backoff sleeps on it
  pplx::cancellation_token_source cts_;  // cancelled by Stop()
  std::thread thread_;
  bool started_ = false;
};

// Informer with typed objects (MultiClusterLease, Lease): decodes on each
// callback and read. Objects that fail to decode are reported to
// options.on_error and skipped by the typed handlers.
template <typename T>
class TypedInformer {
 public:
  struct Handlers {
    std::function<void(const T& obj)> on_add;
    std::function<void(const T& old_obj, const T& new_obj)> on_update;
    std::function<void(const T& obj)> on_delete;
  };
  TypedInformer(KubeClient* client, InformerOptions options, Handlers handlers)
      : on_error_(options.on_error),
        informer_(client, T::resource(), options, Wrap(std::move(handlers))) {}

  void Start() { informer_.Start(); }
  void Stop() { informer_.Stop(); }
  bool HasSynced() const { return informer_.HasSynced(); }
  bool WaitForSync(absl::Duration timeout) const {
    return informer_.WaitForSync(timeout);
  }
  std::string LastSyncResourceVersion() const {
    return informer_.LastSyncResourceVersion();
  }
  bool WaitForResourceVersion(const std::string& rv,
                              absl::Duration timeout) const {
    return informer_.WaitForResourceVersion(rv, timeout);
  }
  bool WaitUntil(const std::function<bool()>& condition,
                 absl::Duration timeout) const {
    return informer_.WaitUntil(condition, timeout);
  }
  std::optional<T> Get(const std::string& ns, const std::string& name) const {
    ObjectPtr p = informer_.Get(ns, name);
    if (p == nullptr) return std::nullopt;
    auto t = T::FromJson(*p);
    if (!t.ok()) return std::nullopt;
    return std::move(*t);
  }
  std::vector<T> List() const {
    std::vector<T> out;
    for (const ObjectPtr& p : informer_.List()) {
      auto t = T::FromJson(*p);
      if (t.ok()) out.push_back(std::move(*t));
    }
    return out;
  }
  size_t Size() const { return informer_.Size(); }
  Informer& untyped() { return informer_; }

 private:
  Informer::Handlers Wrap(Handlers h) {
    auto decode = [err = on_error_](const Json& j) -> std::optional<T> {
      auto t = T::FromJson(j);
      if (!t.ok()) {
        if (err) err(t.status());
        return std::nullopt;
      }
      return std::move(*t);
    };
    Informer::Handlers out;
    if (h.on_add) {
      out.on_add = [decode, f = h.on_add](const Json& j) {
        if (auto t = decode(j)) f(*t);
      };
    }
    if (h.on_update) {
      out.on_update = [decode, f = h.on_update](const Json& a, const Json& b) {
        auto ta = decode(a);
        auto tb = decode(b);
        if (ta && tb) f(*ta, *tb);
      };
    }
    if (h.on_delete) {
      out.on_delete = [decode, f = h.on_delete](const Json& j) {
        if (auto t = decode(j)) f(*t);
      };
    }
    return out;
  }

  std::function<void(const absl::Status&)> on_error_;
  Informer informer_;
};

}  // namespace mcl::kube

#endif  // MCL_COMMON_KUBE_INFORMER_H_
