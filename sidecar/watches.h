// The watches the sidecar's core needs, as interfaces (so that Election is
// unit-tested on fakes: sidecar/testing/fake_kube.h), and their implementation
// over the one kube Informer (common/kube/informer.h): one informer per
// namespace for MultiClusterLeases, one per heartbeat Lease (a field selector
// on its name).
//
// Threads: each watch runs its own informer thread, which makes the list and
// watch requests and calls the callbacks, serially and in the server's order.
// Destroying a watch stops that thread (and waits for it), so a watch must
// not be destroyed while holding a mutex its callbacks take.
#ifndef MCL_SIDECAR_WATCHES_H_
#define MCL_SIDECAR_WATCHES_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/kube/client.h"
#include "common/kube/objects.h"

namespace mcl::sidecar {

struct LeaseWatchCallbacks {
  std::function<void(const kube::MultiClusterLease&)> on_upsert;
  // The object's last known state.
  std::function<void(const kube::MultiClusterLease&)> on_delete;
  // A list or watch failed (apiserver unreachable, 403, ...) or an object could
  // not be decoded; the watch retries with backoff.
  std::function<void(const absl::Status&)> on_error;
};

// Every MultiClusterLease of one namespace.
class LeaseWatch {
 public:
  virtual ~LeaseWatch() = default;
  // Blocks until the first list was delivered or `timeout` passed; must not be
  // called with a mutex held that the callbacks take.
  virtual bool WaitForSync(absl::Duration timeout) = 0;
  virtual bool HasSynced() = 0;
  // From the cache. The cache is updated before the callback of a change runs,
  // so a caller that reads here under the mutex its callbacks take sees every
  // later version through a callback.
  virtual std::optional<kube::MultiClusterLease> Get(
      const std::string& name) = 0;
  // Of the latest list/watch attempt; OK while the apiserver answers.
  virtual absl::Status LastError() = 0;
};

struct HeartbeatCallbacks {
  std::function<void(const kube::Lease&)> on_upsert;
};

// One heartbeat Lease.
class HeartbeatWatch {
 public:
  virtual ~HeartbeatWatch() = default;
};

class WatchFactory {
 public:
  virtual ~WatchFactory() = default;
  virtual std::unique_ptr<LeaseWatch> WatchLeases(const std::string& ns,
                                                  LeaseWatchCallbacks cb) = 0;
  virtual std::unique_ptr<HeartbeatWatch> WatchHeartbeat(
      const std::string& ns, const std::string& name,
      HeartbeatCallbacks cb) = 0;
};

// Over informers on `client` (not owned; must outlive the factory and its
// watches).
std::unique_ptr<WatchFactory> NewInformerWatchFactory(kube::KubeClient* client);

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_WATCHES_H_
