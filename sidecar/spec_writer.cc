#include "sidecar/spec_writer.h"

#include <pthread.h>

#include "common/kube/errors.h"

namespace mcl::sidecar {

SpecWriter::SpecWriter(LockTable* table, LeaseStore* store, Clock* clock)
    : table_(table), store_(store), clock_(clock), wakeup_(clock) {
  thread_ = std::thread([this] { Loop(); });
}

SpecWriter::~SpecWriter() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  wakeup_.Notify();
  thread_.join();
}

void SpecWriter::EndCampaign(uint64_t id, const std::string& reason) {
  {
    absl::MutexLock l(&mu_);
    campaign_ends_.emplace_back(id, reason);
  }
  wakeup_.Notify();
}

void SpecWriter::EndObserve(uint64_t id) {
  {
    absl::MutexLock l(&mu_);
    observer_ends_.push_back(id);
  }
  wakeup_.Notify();
}

void SpecWriter::RunDeferred() {
  for (auto& f : table_->TakeDeferred()) f();
}

void SpecWriter::Loop() {
  pthread_setname_np(pthread_self(), "spec-writer");
  for (;;) {
    std::vector<std::pair<uint64_t, std::string>> ends;
    std::vector<uint64_t> observer_ends;
    {
      absl::MutexLock l(&mu_);
      if (stopping_) return;
      ends.swap(campaign_ends_);
      observer_ends.swap(observer_ends_);
    }
    for (auto& [id, reason] : ends) table_->EndCampaign(id, reason);
    for (uint64_t id : observer_ends) table_->EndObserve(id);
    absl::Duration wake;
    std::optional<LockTable::Write> w = table_->NextWrite(&wake);
    RunDeferred();
    if (w) {
      Execute(*w);
      RunDeferred();
      continue;
    }
    wakeup_.WaitUntil(wake);
  }
}

void SpecWriter::Execute(const LockTable::Write& w) {
  // T_w: taken before the request is sent (design.md §Confirmation 1).
  const absl::Duration sent_at = clock_->Monotonic();
  absl::StatusOr<kube::MultiClusterLease> r =
      w.kind == LockTable::Write::kCreate ? store_->Create(w.obj)
                                          : store_->Update(w.obj);
  // A create's 404 (no such namespace) is final: no read can change it.
  const bool gone =
      absl::IsNotFound(r.status()) && w.kind == LockTable::Write::kUpdate;
  if (!r.ok() && (kube::IsConflict(r.status()) ||
                  absl::IsAlreadyExists(r.status()) || gone)) {
    // Someone else wrote first (or the object appeared / vanished): learn the
    // new version and decide again. The watch would bring it too; a read is
    // faster.
    const LockKey key = w.key();
    absl::Status s = table_->ApplyRead(key, store_->Get(key.ns, key.name));
    if (s.ok()) return;
    r = s;
  }
  table_->WriteDone(w, sent_at, r);
}

}  // namespace mcl::sidecar
