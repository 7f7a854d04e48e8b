#include "controller/replica_epoch.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/kube/json.h"
#include "common/log.h"
#include "controller/session_tracker.h"

namespace mcl::controller {
namespace {

// The session an epoch value records as abandoned; 0 for none or a value
// that is not ours.
int64_t AbandonedIn(const std::string& value) {
  auto j = kube::ParseJson(value, "replica epoch value");
  if (!j.ok() || !j->is_object()) return 0;
  kube::JsonReader r("replica epoch value");
  const std::string hex = r.String(*j, "abandoned", "").value_or("");
  uint64_t id = 0;
  if (hex.empty() || !absl::SimpleHexAtoi(hex, &id)) return 0;
  return static_cast<int64_t>(id);
}

}  // namespace

ReplicaEpoch::ReplicaEpoch(KeyWriter* keys, std::string key,
                           std::string identity,
                           std::function<void()> on_deposed)
    : keys_(keys),
      key_(std::move(key)),
      identity_(std::move(identity)),
      on_deposed_(std::move(on_deposed)) {}

std::string ReplicaEpoch::Value(int64_t abandoned) const {
  kube::Json v = kube::Json::object();
  v["identity"] = kube::Json::string(identity_);
  if (abandoned != 0)
    v["abandoned"] = kube::Json::string(SessionHex(abandoned));
  return v.serialize();
}

int64_t ReplicaEpoch::epoch() const {
  absl::MutexLock l(&mu_);
  return epoch_;
}

bool ReplicaEpoch::Held() const {
  absl::MutexLock l(&mu_);
  return epoch_ != 0 && !deposed_;
}

bool ReplicaEpoch::deposed() const {
  absl::MutexLock l(&mu_);
  return deposed_;
}

bool ReplicaEpoch::AdoptAllowed(int64_t id) const {
  absl::MutexLock l(&mu_);
  return id != 0 && id != abandoned_;
}

absl::StatusOr<int64_t> ReplicaEpoch::Claim() {
  etcd::Txn read;
  read.Then(etcd::Op::Get(key_));
  auto seen = keys_->Commit(read);
  if (!seen.ok()) return seen.status();
  int64_t previous = 0;
  int64_t abandoned = 0;
  if (!seen->results.empty() && !seen->results[0].range.kvs.empty()) {
    previous = seen->results[0].range.kvs[0].mod_revision;
    abandoned = AbandonedIn(seen->results[0].range.kvs[0].value);
  }
  // Conditional on what we read: a replica that read an older state (one that
  // was paused in between) never overwrites a newer claim. The value keeps
  // the abandoned session, for whoever claims after us.
  etcd::Txn claim;
  if (previous == 0) {
    claim.If(etcd::CreateRevision(key_) == 0);
  } else {
    claim.If(etcd::ModRevision(key_) == previous);
  }
  claim.Then(etcd::Op::Put(key_, Value(abandoned))).Else(etcd::Op::Get(key_));
  {
    absl::MutexLock l(&mu_);
    writing_ = true;
    seen_while_writing_ = 0;
  }
  auto r = keys_->Commit(claim);
  absl::MutexLock l(&mu_);
  writing_ = false;
  if (!r.ok()) return r.status();
  if (!r->succeeded) {
    return absl::AbortedError(
        absl::StrCat("another replica claimed the replica epoch (", key_,
                     ") between our read and our write"));
  }
  deposed_ = seen_while_writing_ > r->revision;  // someone claimed after us
  epoch_ = r->revision;
  abandoned_ = abandoned;
  LogInfo("replica epoch claimed",
          {{"key", key_}, {"epoch", absl::StrCat(r->revision)}});
  return r->revision;
}

absl::Status ReplicaEpoch::Abandon(int64_t session) {
  etcd::Txn txn;
  {
    absl::MutexLock l(&mu_);
    if (epoch_ == 0 || deposed_) {
      return absl::AbortedError("no replica epoch held");
    }
    txn.Then(etcd::Op::Put(key_, Value(session))).Guard(key_, epoch_);
    writing_ = true;
    seen_while_writing_ = 0;
  }
  auto r = keys_->Commit(txn);
  bool depose = false;
  {
    absl::MutexLock l(&mu_);
    writing_ = false;
    if (!r.ok()) return r.status();
    if (r->succeeded) {
      epoch_ = r->revision;
      abandoned_ = session;
      // A write by another replica seen meanwhile, newer than ours.
      depose = seen_while_writing_ > epoch_;
    } else {
      depose = true;
    }
  }
  if (depose) {
    Depose("the epoch key moved while we recorded an abandoned session");
    return absl::AbortedError("deposed");
  }
  return absl::OkStatus();
}

void ReplicaEpoch::Clear() {
  absl::MutexLock l(&mu_);
  epoch_ = 0;
  deposed_ = false;
}

void ReplicaEpoch::Guard(etcd::Txn& txn) const {
  absl::MutexLock l(&mu_);
  if (epoch_ == 0) {
    txn.Reject(absl::FailedPreconditionError(
        "no replica epoch: this replica is not active"));
    return;
  }
  txn.Guard(key_, epoch_);
}

bool ReplicaEpoch::CheckGuard(const etcd::TxnResult& result) {
  if (result.succeeded || result.results.empty()) return true;
  const etcd::OpResult& last = result.results.back();
  const int64_t now_at =
      last.kind == etcd::OpResult::Kind::kRange && last.range.kvs.size() == 1
          ? last.range.kvs[0].mod_revision
          : 0;
  {
    absl::MutexLock l(&mu_);
    // Still (or newly, by our own Abandon) at our epoch: another compare
    // failed, or our own write moved it. Either way we are not deposed.
    if (epoch_ == 0 || now_at == epoch_ || writing_) return true;
  }
  Depose("a guarded transaction found the epoch key moved");
  return false;
}

void ReplicaEpoch::Observe(int64_t revision) {
  {
    absl::MutexLock l(&mu_);
    if (writing_) {
      seen_while_writing_ = std::max(seen_while_writing_, revision);
      return;
    }
    // Only a newer write (or delete) of the key deposes: the watch may still
    // deliver writes older than our claim.
    if (epoch_ == 0 || revision <= epoch_) return;
  }
  Depose("the key watch saw a newer write of the epoch key");
}

void ReplicaEpoch::Depose(const char* why) {
  {
    absl::MutexLock l(&mu_);
    if (deposed_ || epoch_ == 0) return;
    deposed_ = true;
  }
  LogWarn("deposed: another replica claimed a newer replica epoch",
          {{"key", key_}, {"why", why}, {"epoch", absl::StrCat(epoch())}});
  if (on_deposed_) on_deposed_();
}

}  // namespace mcl::controller
