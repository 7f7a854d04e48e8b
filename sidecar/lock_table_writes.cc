// LockTable's side for the spec writer (spec_writer.h): which write to make
// next, and what its answer changes. The rest of the table is in
// lock_table.cc; lock_table.h has the concurrency rules.
#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/kube/errors.h"
#include "common/log.h"
#include "sidecar/lock_table.h"

namespace mcl::sidecar {
namespace {

// The stream's error when the create of `key` answered 404.
absl::Status CreateNotFound(const LockKey& key, const absl::Status& s) {
  const std::string missing = absl::StrCat("namespaces \"", key.ns, "\"");
  if (absl::StrContains(s.message(), missing)) {
    return absl::NotFoundError(absl::StrCat(
        "namespace \"", key.ns, "\" does not exist in this cluster, so lock ",
        key.str(),
        " cannot be created there; create the namespace, or campaign for a "
        "lock in a namespace that exists"));
  }
  return absl::NotFoundError(absl::StrCat(
      "the kube-apiserver answered NOT_FOUND to creating MultiClusterLease ",
      key.str(), " (", s.message(), "); check that namespace \"", key.ns,
      "\" exists and that the MultiClusterLease CRD is installed"));
}

}  // namespace

std::optional<LockTable::Write> LockTable::WriteFor(Lock& lock, Campaign& c,
                                                    absl::Duration now,
                                                    absl::Duration* wake,
                                                    bool* done) {
  if (now < c.retry_at) {
    *wake = std::min(*wake, c.retry_at);
    return std::nullopt;
  }
  Write w;
  w.campaign = c.id;
  if (c.ended) {
    // Release only what this candidacy holds: never another instance's spec.
    bool holding = lock.view && lock.view->exists && lock.view->holder &&
                   *lock.view->holder == c.identity &&
                   lock.view->holder_instance.value_or("") == c.instance &&
                   lock.obj;
    if (!holding || now >= c.release_until) {
      *done = true;
      return std::nullopt;
    }
    w.release = true;
    w.obj = *lock.obj;
    w.obj.spec.holder_identity.reset();
    w.obj.spec.holder_instance.reset();
    w.obj.spec.renew_time = kube::FormatMicroTime(options_.clock->WallNow());
    return w;
  }
  Candidacy::Decision d = c.candidacy->Next();
  if (d.action == Candidacy::Action::kNone) {
    if (d.wake_at) *wake = std::min(*wake, *d.wake_at);
    return std::nullopt;
  }
  if (!c.leadership->CheckWritePrecondition(d.precondition_rv).ok())
    return std::nullopt;
  if (d.action == Candidacy::Action::kCreate) {
    w.kind = Write::kCreate;
    w.obj.metadata.name = lock.key.name;
    w.obj.metadata.namespace_ = lock.key.ns;
  } else {
    if (!lock.obj) return std::nullopt;
    w.obj = *lock.obj;
  }
  w.obj.spec.holder_identity = c.identity;
  w.obj.spec.holder_instance = c.instance;
  w.obj.spec.lease_duration_seconds =
      static_cast<int32_t>(absl::ToInt64Seconds(c.lease_duration));
  w.obj.spec.renew_time = kube::FormatMicroTime(options_.clock->WallNow());
  return w;
}

std::optional<LockTable::Write> LockTable::NextWrite(absl::Duration* wake) {
  absl::MutexLock l(&mu_);
  // Waits longer than this are cut so that a wrong deadline can never park the
  // writer for good.
  constexpr absl::Duration kMaxIdle = absl::Minutes(1);
  const absl::Duration now = options_.clock->Monotonic();
  *wake = now + kMaxIdle;
  std::vector<std::pair<Lock*, Campaign*>> done;
  std::optional<Write> next;
  for (auto& [k, lock] : locks_) {
    for (auto& [id, c] : lock.campaigns) {
      // LOST deadlines are not this thread's business: the deadline timer
      // ticks them, so that they never wait behind this thread's requests.
      bool finished = false;
      next = WriteFor(lock, *c, now, wake, &finished);
      if (finished) done.emplace_back(&lock, c.get());
      if (next) break;
    }
    if (next) break;
  }
  for (auto& [lock, c] : done) CompleteRelease(*lock, *c, c->was_leader);
  return next;
}

absl::Status LockTable::ApplyRead(
    const LockKey& key, const absl::StatusOr<kube::MultiClusterLease>& read) {
  absl::MutexLock l(&mu_);
  auto it = locks_.find(key);
  if (it == locks_.end()) return absl::OkStatus();
  if (read.ok()) {
    ApplyObjectLocked(*read);
    return absl::OkStatus();
  }
  if (!absl::IsNotFound(read.status())) return read.status();
  LeaseView gone;
  gone.exists = false;
  gone.resource_version =
      it->second.view ? it->second.view->resource_version : 0;
  Apply(it->second, gone, nullptr);
  return absl::OkStatus();
}

void LockTable::WriteDone(const Write& w, absl::Duration sent_at,
                          const absl::StatusOr<kube::MultiClusterLease>& r) {
  absl::MutexLock l(&mu_);
  const LockKey key = w.key();
  Campaign* c = FindCampaign(w.campaign);
  auto it = locks_.find(key);
  if (r.ok()) {
    if (it != locks_.end()) {
      ApplyObjectLocked(*r);  // may end the campaign and drop the lock
      c = FindCampaign(w.campaign);
      it = locks_.find(key);
    }
    if (c == nullptr) return;
    auto rv = kube::ParseResourceVersion(r->metadata.resource_version);
    if (rv.ok()) c->leadership->RecordWrite(*rv, sent_at);
    c->candidacy->WriteSucceeded(sent_at);
    c->backoff.Reset();
    c->retry_at = -absl::InfiniteDuration();
    if (it != locks_.end()) {
      Flush(it->second, *c);
      if (w.release) CompleteRelease(it->second, *c, c->was_leader);
    }
    return;
  }
  if (w.kind == Write::kCreate && absl::IsNotFound(r.status())) {
    // A create in the collection answers 404 only when the namespace does
    // not exist (or the CRD is not installed; then the watch would not have
    // synced). Retrying cannot help: end the stream and say what to fix.
    if (c == nullptr || it == locks_.end()) return;
    if (c->ended) {
      CompleteRelease(it->second, *c, c->was_leader);  // nothing to release
    } else {
      FailCampaign(it->second, *c, CreateNotFound(key, r.status()));
    }
    return;
  }
  if (it != locks_.end()) ++it->second.metrics.renew_errors;
  LogWarn(w.release ? "release failed" : "spec write failed",
          {{"lock", key.str()}, {"error", std::string(r.status().message())}});
  if (c == nullptr) return;
  c->candidacy->WriteFailed();
  c->retry_at = options_.clock->Monotonic() + c->backoff.Next();
  if (w.release && it != locks_.end()) {
    CompleteRelease(it->second, *c,
                    absl::UnavailableError(absl::StrCat(
                        "the kube-apiserver did not accept the resignation: ",
                        r.status().message(),
                        "; the campaign is cancelled here and the controller "
                        "releases the lock when its renewals go stale")));
  }
}

}  // namespace mcl::sidecar
