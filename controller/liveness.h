// LivenessTracker: when this controller observed each candidate's renewals, on
// its own monotonic clock (design.md §"Controller reconcile" rule 2, §Ack
// "timeout"). A renewal is any new spec generation of the lock: the sidecar
// changes renewTime on every renewal, and status or metadata writes never bump
// metadata.generation, so "generation changed" is exactly "a spec write
// happened".
//
// We never read renewTime's value: comparing it with our wall clock would
// compare two hosts' clocks (S3). Only the moment *we* saw the change counts.
//
// After a controller restart nothing is known about earlier renewals, so every
// holder counts as observed at the moment this tracker first saw the lock:
// conservative in both directions (a live candidate is not declared stale
// early, and an ack timeout is never shorter than the truth, because the
// grantee's last renewal cannot have been observed later than "now").
//
// Pure and single-threaded; one per lock, owned by the lock's memory.
#ifndef MCL_CONTROLLER_LIVENESS_H_
#define MCL_CONTROLLER_LIVENESS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/time/time.h"

namespace mcl::controller {

class LivenessTracker {
 public:
  // Records one version of the lock's spec as seen at monotonic time `now`.
  // Versions may repeat (re-deliveries, resyncs, our own status writes): only a
  // new generation counts as a renewal. A new uid (the CR was deleted and
  // re-created) forgets everything.
  void Observe(const std::string& uid, int64_t generation,
               const std::optional<std::string>& holder, absl::Duration now);

  // The last time a spec write with `holder` as holderIdentity was observed;
  // the time this tracker first saw the lock if that holder was never observed
  // (restart rule). When generations were skipped (a relist coalesced several
  // writes), any holder may have written in the gap, so the time the gap was
  // seen counts for every holder. Must not be called before the first Observe.
  absl::Duration LastRenewal(const std::string& holder) const;
  bool Knows() const { return first_seen_.has_value(); }

  // The holder that removed itself from the spec in the latest spec write, when
  // that write directly followed a version naming it (consecutive generations
  // g-1 → g, both observed). nullopt when the latest spec names a holder, or
  // when a generation was skipped (we cannot tell who wrote it).
  const std::optional<std::string>& resigned() const { return resigned_; }

  // The generation of the latest spec write in which `holder` removed itself
  // directly after a version naming it (consecutive generations, both
  // observed); 0 if none was observed. Remembered even after another holder
  // took over, so a local takeover right after a resign does not hide the
  // resign (design.md §Ack): feed every version the informer delivers, not only
  // reconciled ones.
  int64_t ResignedAt(const std::string& holder) const {
    auto it = resigned_at_.find(holder);
    return it == resigned_at_.end() ? 0 : it->second;
  }

  int64_t generation() const { return generation_; }

  // Forgets holders other than those given (bounded memory per lock).
  void Prune(const std::optional<std::string>& keep_a,
             const std::optional<std::string>& keep_b);

 private:
  std::optional<absl::Duration> first_seen_;
  std::string uid_;
  int64_t generation_ = -1;
  std::optional<std::string> holder_;
  std::optional<std::string> resigned_;
  absl::Duration last_gap_ = absl::ZeroDuration();
  std::map<std::string, absl::Duration> last_renewal_;
  std::map<std::string, int64_t> resigned_at_;
};

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_LIVENESS_H_
