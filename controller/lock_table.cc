#include "controller/lock_table.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace mcl::controller {

void LockTable::Observe(const std::string& key, const std::string& uid,
                        int64_t generation,
                        const std::optional<std::string>& holder,
                        absl::Duration now) {
  absl::MutexLock l(&mu_);
  entries_[key].inbox.push_back(Observation{uid, generation, holder, now});
}

void LockTable::With(const std::string& key,
                     const std::function<void(LockSlot&)>& fn) {
  Entry* e;
  std::vector<Observation> arrived;
  bool restart = false;
  {
    absl::MutexLock l(&mu_);
    e = &entries_[key];
    if (e->restarts != restarts_) {
      restart = true;
      e->restarts = restarts_;
    }
    if (e->owned) {
      // The work queue hands a key to one worker at a time; two owners would
      // share a single-threaded LivenessTracker.
      fprintf(stderr, "LockTable: lock %s has two owners at once\n",
              key.c_str());
      abort();
    }
    e->owned = true;
    arrived.swap(e->inbox);
  }
  if (restart) {
    LockSlot fresh;
    fresh.memory.liveness = std::move(e->slot.memory.liveness);
    e->slot = std::move(fresh);
  }
  for (const Observation& o : arrived) {
    e->slot.memory.liveness.Observe(o.uid, o.generation, o.holder, o.at);
  }
  fn(e->slot);
  absl::MutexLock l(&mu_);
  e->owned = false;
}

void LockTable::Forget(const std::string& key) {
  absl::MutexLock l(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.owned) return;
  if (!it->second.inbox.empty()) {
    // Something arrived after the owner decided; keep it for the next one.
    it->second.slot = LockSlot();
    return;
  }
  entries_.erase(it);
}

void LockTable::Restart() {
  absl::MutexLock l(&mu_);
  ++restarts_;
}

std::vector<std::string> LockTable::Keys() const {
  absl::MutexLock l(&mu_);
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& [k, e] : entries_) out.push_back(k);
  return out;
}

}  // namespace mcl::controller
