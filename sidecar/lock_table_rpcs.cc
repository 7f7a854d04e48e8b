// LockTable's side for the RPC handlers (service.h): campaigns and observers
// start and end, Resign, the cached grant. The rest of the table is in
// lock_table.cc, the spec writer's side in lock_table_writes.cc; lock_table.h
// has the concurrency rules.
#include <memory>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "sidecar/lock_table.h"

namespace mcl::sidecar {
namespace {

// A candidacy instance: 64 random bits, lowercase hex (common/contract.h,
// kMaxInstanceLength).
std::string NewInstance() {
  std::random_device rd;
  const uint64_t bits = (static_cast<uint64_t>(rd()) << 32) | rd();
  return absl::StrCat(absl::Hex(bits, absl::kZeroPad16));
}

}  // namespace

absl::StatusOr<uint64_t> LockTable::StartCampaign(
    const LockKey& key, const std::string& identity,
    absl::Duration lease_duration, std::shared_ptr<EventSink> sink,
    LeaseWatch* cache) {
  absl::MutexLock l(&mu_);
  if (shut_down_) return ShuttingDown();
  Lock& lock = EnsureLock(key, cache);
  for (auto& [id, c] : lock.campaigns) {
    if (c->identity != identity) continue;
    if (!c->ended) {
      return absl::AlreadyExistsError(absl::StrCat(
          "identity \"", identity, "\" already campaigns for lock ", key.str(),
          " on this sidecar; cancel that Campaign stream (or call Resign) "
          "before starting another, or campaign with a different identity"));
    }
    return absl::UnavailableError(
        absl::StrCat("the previous campaign of \"", identity, "\" for lock ",
                     key.str(), " is still resigning; retry in a moment"));
  }
  auto c = std::make_unique<Campaign>();
  c->id = next_id_++;
  c->key = key;
  c->identity = identity;
  c->lease_duration = lease_duration;
  c->instance = NewInstance();
  c->leadership = std::make_unique<Leadership>(
      Leadership::Options{identity, c->instance, options_.cluster},
      options_.clock);
  c->candidacy = std::make_unique<Candidacy>(identity, c->instance,
                                             lease_duration, options_.clock);
  c->sink = std::move(sink);
  if (lock.view) {
    c->leadership->ObserveObject(*lock.view);
    c->candidacy->Observe(*lock.view);
  }
  if (!lock.heartbeat.empty()) {
    if (auto latest = hooks_.heartbeat(lock.heartbeat, key.ns))
      c->leadership->ObserveConfirmation(*latest);
  }
  // The first event states the current view instead of the way there.
  c->leadership->TakeEvents();
  c->sink->Send(
      StreamEvent{key, c->leadership->Current(), options_.clock->WallNow()});
  ArmDeadline(*c);
  uint64_t id = c->id;
  LogInfo("campaign started",
          {{"lock", key.str()},
           {"identity", identity},
           {"instance", c->instance},
           {"lease_duration", absl::FormatDuration(lease_duration)}});
  campaign_locks_[id] = key;
  lock.campaigns[id] = std::move(c);
  hooks_.write_due();
  return id;
}

absl::StatusOr<uint64_t> LockTable::StartObserve(
    const LockKey& key, std::shared_ptr<EventSink> sink, LeaseWatch* cache) {
  absl::MutexLock l(&mu_);
  if (shut_down_) return ShuttingDown();
  Lock& lock = EnsureLock(key, cache);
  uint64_t id = next_id_++;
  LeadershipEvent e;
  e.state =
      lock.observed.empty() ? LeaderState::kNoLeader : LeaderState::kFollower;
  e.grant = lock.observed;
  sink->Send(StreamEvent{key, e, options_.clock->WallNow()});
  lock.observers[id] = std::move(sink);
  observer_locks_[id] = key;
  return id;
}

std::optional<Grant> LockTable::CachedGrant(const LockKey& key) {
  absl::MutexLock l(&mu_);
  auto it = locks_.find(key);
  if (it == locks_.end()) return std::nullopt;
  if (it->second.view && it->second.view->exists) return it->second.view->grant;
  return Grant{};
}

void LockTable::EndCampaign(uint64_t id, const std::string& reason) {
  absl::MutexLock l(&mu_);
  if (Campaign* c = FindCampaign(id))
    EndCampaignLocked(*c, reason, /*finish_with=*/std::nullopt);
}

void LockTable::EndObserve(uint64_t id) {
  absl::MutexLock l(&mu_);
  auto k = observer_locks_.find(id);
  if (k == observer_locks_.end()) return;
  auto it = locks_.find(k->second);
  if (it != locks_.end()) it->second.observers.erase(id);
  LockKey key = k->second;
  observer_locks_.erase(k);
  MaybeDropLock(key);
}

bool LockTable::Resign(const LockKey& key, const std::string& identity,
                       std::function<void(absl::StatusOr<bool>)> done) {
  struct Aggregate {
    int remaining = 0;
    bool was_leader = false;
    absl::Status error;
    std::function<void(absl::StatusOr<bool>)> done;
  };
  absl::MutexLock l(&mu_);
  auto it = locks_.find(key);
  std::vector<Campaign*> matching;
  if (it != locks_.end()) {
    for (auto& [id, c] : it->second.campaigns) {
      if (identity.empty() || c->identity == identity)
        matching.push_back(c.get());
    }
  }
  if (matching.empty()) return false;
  auto agg = std::make_shared<Aggregate>();
  agg->done = std::move(done);
  agg->remaining = static_cast<int>(matching.size());
  for (Campaign* c : matching) {
    c->waiters.push_back([agg](absl::StatusOr<bool> r) {
      if (r.ok()) {
        agg->was_leader = agg->was_leader || *r;
      } else if (agg->error.ok()) {
        agg->error = r.status();
      }
      if (--agg->remaining > 0) return;
      if (agg->error.ok()) {
        agg->done(agg->was_leader);
      } else {
        agg->done(agg->error);
      }
    });
    EndCampaignLocked(*c, "resigned", absl::OkStatus());
  }
  return true;
}

}  // namespace mcl::sidecar
