// The writes the executor makes, behind interfaces so unit tests run against
// scripted fakes (testing/fakes.h): MultiClusterLease updates on the apiserver
// (LockWriter) and etcd Txns (KeyWriter), with their real implementations.
#ifndef MCL_CONTROLLER_EXECUTOR_IO_H_
#define MCL_CONTROLLER_EXECUTOR_IO_H_

#include "absl/status/statusor.h"
#include "common/etcd/client.h"
#include "common/etcd/kv.h"
#include "common/etcd/txn.h"
#include "common/kube/client.h"
#include "common/kube/objects.h"
#include "common/kube/typed_client.h"
#include "controller/apiserver_health.h"
#include "controller/metrics.h"

namespace mcl::controller {

// The apiserver side: MultiClusterLease writes.
class LockWriter {
 public:
  virtual ~LockWriter() = default;
  // Conditional on metadata.resource_version (kube::IsConflict when stale).
  virtual absl::StatusOr<kube::MultiClusterLease> Update(
      const kube::MultiClusterLease& obj) = 0;
  virtual absl::StatusOr<kube::MultiClusterLease> UpdateStatus(
      const kube::MultiClusterLease& obj) = 0;
};

// Counts each write in metrics.apiserver_writes and reports its outcome to
// `health` (may be null).
class KubeLockWriter : public LockWriter {
 public:
  KubeLockWriter(kube::KubeClient* client, Metrics* metrics,
                 ApiserverHealth* health)
      : leases_(client), metrics_(metrics), health_(health) {}
  absl::StatusOr<kube::MultiClusterLease> Update(
      const kube::MultiClusterLease& obj) override {
    metrics_->apiserver_writes++;
    return TrackedCall(health_, [&] { return leases_.Update(obj); });
  }
  absl::StatusOr<kube::MultiClusterLease> UpdateStatus(
      const kube::MultiClusterLease& obj) override {
    metrics_->apiserver_writes++;
    return TrackedCall(health_, [&] { return leases_.UpdateStatus(obj); });
  }

 private:
  kube::MultiClusterLeaseClient leases_;
  Metrics* metrics_;
  ApiserverHealth* health_;
};

// The etcd side: one Txn.
class KeyWriter {
 public:
  virtual ~KeyWriter() = default;
  virtual absl::StatusOr<etcd::TxnResult> Commit(const etcd::Txn& txn) = 0;
};

class EtcdKeyWriter : public KeyWriter {
 public:
  explicit EtcdKeyWriter(etcd::Client* client) : kv_(client) {}
  absl::StatusOr<etcd::TxnResult> Commit(const etcd::Txn& txn) override {
    return kv_.Commit(txn);
  }

 private:
  etcd::KV kv_;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_EXECUTOR_IO_H_
