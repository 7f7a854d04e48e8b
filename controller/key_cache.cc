#include "controller/key_cache.h"

#include <pthread.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/backoff.h"
#include "common/contract.h"
#include "common/log.h"

namespace mcl::controller {

KeyCache::KeyCache(etcd::Client* etcd, Clock* clock, std::string prefix,
                   absl::Duration watch_silence, Metrics* metrics,
                   Callbacks callbacks)
    : etcd_(etcd),
      clock_(clock),
      prefix_(std::move(prefix)),
      watch_silence_(watch_silence),
      metrics_(metrics),
      callbacks_(std::move(callbacks)),
      kv_(etcd),
      wake_(clock) {}

KeyCache::~KeyCache() { Stop(); }

void KeyCache::Start() {
  thread_ = std::thread([this] { Run(); });
}

void KeyCache::Stop() {
  stopping_ = true;
  wake_.Notify();
  if (thread_.joinable()) thread_.join();
  watch_.reset();
}

std::string KeyCache::LockKeyOf(const std::string& etcd_key) const {
  return contract::LockKeyOfEtcdKey(prefix_, etcd_key);
}

std::string KeyCache::EtcdKey(const std::string& lock_key) const {
  return absl::StrCat(prefix_, "/", lock_key);
}

KeyView KeyCache::View(const std::string& lock_key) const {
  absl::MutexLock l(&mu_);
  KeyView v;
  v.known = known_;
  auto it = keys_.find(lock_key);
  if (it != keys_.end() && it->second.present) {
    v.present = true;
    v.mod_revision = it->second.mod_revision;
    v.lease = it->second.lease;
    v.raw = it->second.raw;
  }
  return v;
}

void KeyCache::ApplyLocked(const std::string& lock_key, const KeyEntry& entry) {
  auto it = keys_.find(lock_key);
  if (it != keys_.end() && it->second.rev > entry.rev) return;  // older news
  keys_[lock_key] = entry;
}

void KeyCache::Apply(const std::string& lock_key, const KeyEntry& entry) {
  {
    absl::MutexLock l(&mu_);
    ApplyLocked(lock_key, entry);
  }
  if (callbacks_.on_change) callbacks_.on_change();
}

void KeyCache::ForgetTombstone(const std::string& lock_key) {
  absl::MutexLock l(&mu_);
  auto it = keys_.find(lock_key);
  if (it != keys_.end() && !it->second.present) keys_.erase(it);
}

bool KeyCache::known() const {
  absl::MutexLock l(&mu_);
  return known_;
}

int64_t KeyCache::KeysHeldBy(int64_t lease) const {
  absl::MutexLock l(&mu_);
  int64_t n = 0;
  for (const auto& [k, e] : keys_) {
    if (e.present && e.lease == lease) ++n;
  }
  return n;
}

std::vector<std::pair<std::string, int64_t>> KeyCache::HeldBy(
    int64_t lease) const {
  absl::MutexLock l(&mu_);
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& [k, e] : keys_) {
    if (e.present && e.lease == lease) out.emplace_back(k, e.mod_revision);
  }
  return out;
}

std::vector<std::string> KeyCache::PresentKeys() const {
  absl::MutexLock l(&mu_);
  std::vector<std::string> out;
  for (const auto& [k, e] : keys_) {
    if (e.present) out.push_back(k);
  }
  return out;
}

void KeyCache::WarnStray(const std::string& etcd_key) {
  if (warned_.insert(etcd_key).second) {
    LogWarn("ignoring an etcd key under the prefix that names no lock",
            {{"key", etcd_key}});
  }
}

void KeyCache::Run() {
  pthread_setname_np(pthread_self(), "key-cache");
  Backoff backoff({absl::Milliseconds(100), absl::Seconds(5), 2.0});
  while (!stopping_.load()) {
    bool restart;
    {
      absl::MutexLock l(&mu_);
      restart = needs_restart_;
    }
    absl::Duration next = absl::InfiniteDuration();
    if (restart) {
      absl::Status st = ListAndWatch();
      if (st.ok()) {
        backoff.Reset();
        if (callbacks_.on_resync) callbacks_.on_resync();
      } else {
        next = clock_->Monotonic() + backoff.Next();
        LogWarn("cannot list etcd keys; retrying",
                {{"error", std::string(st.message())}});
      }
    }
    // Until the watch ends (its on_done) or the retry is due.
    wake_.WaitUntil(next);
  }
}

std::string KeyCache::Classify(const std::string& etcd_key,
                               int64_t mod_revision, EpochNews* epochs) {
  std::string lk = LockKeyOf(etcd_key);
  if (!lk.empty()) return lk;
  std::string cluster = contract::ClusterOfReplicaEpochKey(prefix_, etcd_key);
  if (!cluster.empty()) {
    epochs->emplace_back(std::move(cluster), mod_revision);
  } else {
    WarnStray(etcd_key);
  }
  return "";
}

void KeyCache::Announce(const EpochNews& epochs,
                        const std::vector<std::string>& touched) {
  if (callbacks_.on_epoch) {
    for (const auto& [cluster, rev] : epochs) callbacks_.on_epoch(cluster, rev);
  }
  if (callbacks_.on_change) callbacks_.on_change();
  if (callbacks_.on_key) {
    for (const auto& lk : touched) callbacks_.on_key(lk);
  }
}

absl::StatusOr<int64_t> KeyCache::List() {
  etcd::RangeOptions ro;
  ro.prefix = true;
  const absl::Duration t0 = clock_->Monotonic();
  auto list = kv_.Range(prefix_ + "/", ro);
  metrics_->etcd_requests++;
  metrics_->etcd_latency.Observe(clock_->Monotonic() - t0);
  if (!list.ok()) {
    metrics_->etcd_errors++;
    return list.status();
  }
  EpochNews epochs;
  {
    absl::MutexLock l(&mu_);
    std::set<std::string> seen;
    for (const auto& kv : list->kvs) {
      const std::string lk = Classify(kv.key, kv.mod_revision, &epochs);
      if (lk.empty()) continue;
      seen.insert(lk);
      keys_[lk] =
          KeyEntry{true, kv.mod_revision, kv.lease, kv.value, kv.mod_revision};
    }
    for (auto& [lk, e] : keys_) {
      if (!seen.count(lk)) e = KeyEntry{false, 0, 0, "", list->revision};
    }
    known_ = true;
    needs_restart_ = false;
  }
  // The keys listed are queued by on_resync (Run), not one by one here.
  Announce(epochs, {});
  return list->revision;
}

void KeyCache::OnWatchEvents(const std::vector<etcd::Event>& events) {
  std::vector<std::string> touched;
  EpochNews epochs;
  {
    absl::MutexLock l(&mu_);
    for (const auto& ev : events) {
      const std::string lk = Classify(ev.kv.key, ev.kv.mod_revision, &epochs);
      if (lk.empty()) continue;
      if (ev.type == etcd::Event::Type::kPut) {
        ApplyLocked(lk, KeyEntry{true, ev.kv.mod_revision, ev.kv.lease,
                                 ev.kv.value, ev.kv.mod_revision});
      } else {
        ApplyLocked(lk, KeyEntry{false, 0, 0, "", ev.kv.mod_revision});
      }
      touched.push_back(lk);
    }
  }
  Announce(epochs, touched);
}

absl::Status KeyCache::ListAndWatch() {
  watch_.reset();  // never from its own callback: this is the cache's thread
  absl::StatusOr<int64_t> revision = List();
  if (!revision.ok()) return revision.status();
  etcd::WatchOptions wo;
  wo.key = prefix_ + "/";
  wo.prefix = true;
  wo.start_revision = *revision + 1;
  wo.silence_timeout = watch_silence_;
  wo.require_leader = true;
  etcd::WatchCallbacks cb;
  cb.on_events = [this](const std::vector<etcd::Event>& events, int64_t) {
    OnWatchEvents(events);
  };
  cb.on_created = [this](int64_t) {
    bool was;
    {
      absl::MutexLock l(&mu_);
      was = known_;
      known_ = true;
    }
    if (!was && callbacks_.on_resync) callbacks_.on_resync();
  };
  cb.on_disconnected = [this](const absl::Status& why) {
    LogWarn("etcd watch disconnected", {{"why", std::string(why.message())}});
    absl::MutexLock l(&mu_);
    known_ = false;
  };
  cb.on_done = [this](const absl::Status& why) {
    LogWarn("etcd watch ended; relisting",
            {{"why", std::string(why.message())}});
    {
      absl::MutexLock l(&mu_);
      known_ = false;
      needs_restart_ = true;
    }
    wake_.Notify();
  };
  auto w = etcd::Watch::Start(etcd_, wo, cb);
  if (!w.ok()) {
    absl::MutexLock l(&mu_);
    needs_restart_ = true;
    return w.status();
  }
  watch_ = std::move(*w);
  return absl::OkStatus();
}

}  // namespace mcl::controller
