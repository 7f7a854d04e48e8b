#include "controller/lock_table.h"

namespace mcl::controller {

void LockTable::Observe(const std::string& key, const std::string& uid,
                        int64_t generation,
                        const std::optional<std::string>& holder,
                        absl::Duration now) {
  absl::MutexLock l(&mu_);
  slots_[key].memory.liveness.Observe(uid, generation, holder, now);
}

void LockTable::With(const std::string& key,
                     const std::function<void(LockSlot&)>& fn) {
  LockSlot* slot;
  {
    absl::MutexLock l(&mu_);
    slot = &slots_[key];
  }
  fn(*slot);
}

void LockTable::Forget(const std::string& key) {
  absl::MutexLock l(&mu_);
  slots_.erase(key);
}

std::vector<std::string> LockTable::Keys() const {
  absl::MutexLock l(&mu_);
  std::vector<std::string> out;
  out.reserve(slots_.size());
  for (const auto& [k, s] : slots_) out.push_back(k);
  return out;
}

}  // namespace mcl::controller
