// In-memory stand-ins for the controller's unit tests: a Lease store with the
// apiserver's optimistic concurrency (resourceVersion preconditions, 409 on a
// stale one), and scripted MultiClusterLease and etcd writers that record what
// they were asked. Thread-safe; failures can be injected.
#ifndef MCL_CONTROLLER_TESTING_FAKES_H_
#define MCL_CONTROLLER_TESTING_FAKES_H_

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/kube/errors.h"
#include "common/kube/objects.h"
#include "controller/executor.h"
#include "controller/lease_store.h"

namespace mcl::controller::testing {

class FakeLeaseStore : public LeaseStore {
 public:
  absl::StatusOr<kube::Lease> Get(const std::string& ns,
                                  const std::string& name) override {
    absl::MutexLock l(&mu_);
    gets_++;
    if (!fail_.ok()) return fail_;
    auto it = leases_.find(ns + "/" + name);
    if (it == leases_.end()) return absl::NotFoundError("lease not found");
    return it->second;
  }
  absl::StatusOr<kube::Lease> Create(const kube::Lease& lease) override {
    absl::MutexLock l(&mu_);
    writes_++;
    if (!fail_.ok()) return fail_;
    const std::string key = lease.metadata.Key();
    if (leases_.count(key)) return absl::AlreadyExistsError("exists");
    kube::Lease stored = lease;
    stored.metadata.resource_version = absl::StrCat(++rv_);
    leases_[key] = stored;
    return stored;
  }
  absl::StatusOr<kube::Lease> Update(const kube::Lease& lease) override {
    absl::MutexLock l(&mu_);
    writes_++;
    if (!fail_.ok()) return fail_;
    auto it = leases_.find(lease.metadata.Key());
    if (it == leases_.end()) return absl::NotFoundError("lease not found");
    if (!lease.metadata.resource_version.empty() &&
        lease.metadata.resource_version !=
            it->second.metadata.resource_version) {
      return kube::WithKubeDetails(absl::AbortedError("conflict"), "Conflict",
                                   409);
    }
    kube::Lease stored = lease;
    stored.metadata.resource_version = absl::StrCat(++rv_);
    it->second = stored;
    return stored;
  }

  // Another writer (another replica) changes the stored Lease.
  void Put(const kube::Lease& lease) {
    absl::MutexLock l(&mu_);
    kube::Lease stored = lease;
    stored.metadata.resource_version = absl::StrCat(++rv_);
    leases_[lease.metadata.Key()] = stored;
  }
  std::optional<kube::Lease> Peek(const std::string& ns,
                                  const std::string& name) {
    absl::MutexLock l(&mu_);
    auto it = leases_.find(ns + "/" + name);
    if (it == leases_.end()) return std::nullopt;
    return it->second;
  }
  // Every call fails with `s` until FailWith(OkStatus()).
  void FailWith(absl::Status s) {
    absl::MutexLock l(&mu_);
    fail_ = std::move(s);
  }
  int writes() {
    absl::MutexLock l(&mu_);
    return writes_;
  }
  int gets() {
    absl::MutexLock l(&mu_);
    return gets_;
  }
  // Waits (real time, bounded) until `n` calls were made in all (reads and
  // writes): a test on a FakeClock advances time only once the thread under
  // test has done its step and is waiting again.
  bool WaitForCalls(int n, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock l(&mu_);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return gets_ + writes_ >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }
  int calls() {
    absl::MutexLock l(&mu_);
    return gets_ + writes_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, kube::Lease> leases_ ABSL_GUARDED_BY(mu_);
  int64_t rv_ ABSL_GUARDED_BY(mu_) = 100;
  int writes_ ABSL_GUARDED_BY(mu_) = 0;
  int gets_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fail_ ABSL_GUARDED_BY(mu_);
};

// Records MultiClusterLease writes; answers with the next scripted result, or
// (none scripted) applies the write with resourceVersion + 1.
class FakeLockWriter : public LockWriter {
 public:
  absl::StatusOr<kube::MultiClusterLease> Update(
      const kube::MultiClusterLease& obj) override {
    return Answer(obj, &updates_);
  }
  absl::StatusOr<kube::MultiClusterLease> UpdateStatus(
      const kube::MultiClusterLease& obj) override {
    return Answer(obj, &status_updates_);
  }
  void Script(absl::Status s) {
    absl::MutexLock l(&mu_);
    script_.push_back(std::move(s));
  }
  std::vector<kube::MultiClusterLease> updates() {
    absl::MutexLock l(&mu_);
    return updates_;
  }
  std::vector<kube::MultiClusterLease> status_updates() {
    absl::MutexLock l(&mu_);
    return status_updates_;
  }

 private:
  absl::StatusOr<kube::MultiClusterLease> Answer(
      const kube::MultiClusterLease& obj,
      std::vector<kube::MultiClusterLease>* log) {
    absl::MutexLock l(&mu_);
    log->push_back(obj);
    if (!script_.empty()) {
      absl::Status s = script_.front();
      script_.pop_front();
      if (!s.ok()) return s;
    }
    kube::MultiClusterLease out = obj;
    out.metadata.resource_version = absl::StrCat(
        kube::ParseResourceVersion(obj.metadata.resource_version).value_or(0) +
        1);
    return out;
  }
  absl::Mutex mu_;
  std::deque<absl::Status> script_ ABSL_GUARDED_BY(mu_);
  std::vector<kube::MultiClusterLease> updates_ ABSL_GUARDED_BY(mu_);
  std::vector<kube::MultiClusterLease> status_updates_ ABSL_GUARDED_BY(mu_);
};

// Answers each Commit with the next scripted result; records the requests.
class FakeKeyWriter : public KeyWriter {
 public:
  absl::StatusOr<etcd::TxnResult> Commit(const etcd::Txn& txn) override {
    absl::MutexLock l(&mu_);
    txns_.push_back(txn.proto());
    if (script_.empty()) return absl::UnavailableError("nothing scripted");
    auto r = script_.front();
    script_.pop_front();
    return r;
  }
  void Script(absl::StatusOr<etcd::TxnResult> r) {
    absl::MutexLock l(&mu_);
    script_.push_back(std::move(r));
  }
  std::vector<etcdserverpb::TxnRequest> txns() {
    absl::MutexLock l(&mu_);
    return txns_;
  }

 private:
  absl::Mutex mu_;
  std::deque<absl::StatusOr<etcd::TxnResult>> script_ ABSL_GUARDED_BY(mu_);
  std::vector<etcdserverpb::TxnRequest> txns_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mcl::controller::testing

#endif  // MCL_CONTROLLER_TESTING_FAKES_H_
