#include "common/kube/informer.h"

#include <pthread.h>

#include <algorithm>
#include <optional>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/kube/errors.h"
#include "common/kube/json.h"

namespace mcl::kube {

void Informer::DropManagedFields(Json& obj) {
  if (!obj.is_object() || !obj.has_field("metadata")) return;
  Json& metadata = obj.at("metadata");
  if (metadata.is_object() && metadata.has_field("managedFields")) {
    metadata.erase("managedFields");
  }
}

Informer::Informer(KubeClient* client, Resource resource,
                   InformerOptions options, Handlers handlers)
    : client_(client),
      resource_(std::move(resource)),
      options_(std::move(options)),
      handlers_(std::move(handlers)) {}

Informer::~Informer() { Stop(); }

void Informer::Start() {
  absl::MutexLock l(&mu_);
  if (started_ || stopping_) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void Informer::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  stop_.Set();
  cts_.cancel();
  changes_.NotifyAll();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id())
    thread_.join();
}

bool Informer::stopping() const {
  absl::MutexLock l(&mu_);
  return stopping_;
}

bool Informer::HasSynced() const {
  absl::MutexLock l(&mu_);
  return synced_;
}

bool Informer::WaitForSync(absl::Duration timeout) const {
  changes_.WaitUntil([this] { return HasSynced() || stopping(); }, timeout);
  return HasSynced();
}

std::string Informer::LastSyncResourceVersion() const {
  absl::MutexLock l(&mu_);
  return last_rv_;
}

bool Informer::WaitForResourceVersion(const std::string& rv,
                                      absl::Duration timeout) const {
  auto want = ParseResourceVersion(rv);
  if (!want.ok()) return false;
  return WaitUntil(
      [&] {
        auto have = ParseResourceVersion(LastSyncResourceVersion());
        return have.ok() && *have >= *want;
      },
      timeout);
}

bool Informer::WaitUntil(const std::function<bool()>& condition,
                         absl::Duration timeout) const {
  changes_.WaitUntil([&] { return condition() || stopping(); }, timeout);
  return condition();
}

ObjectPtr Informer::Get(const std::string& ns, const std::string& name) const {
  return GetByKey(ObjectKey(ns, name));
}

Informer::Cached Informer::ToCached(ObjectPtr obj) const {
  Cached c;
  c.resource_version = ResourceVersionOf(*obj);
  if (options_.compact_cache) {
    c.text = obj->serialize();
  } else {
    c.tree = std::move(obj);
  }
  return c;
}

ObjectPtr Informer::Materialize(const Cached& entry) const {
  if (entry.tree != nullptr) return entry.tree;
  auto parsed = ParseJson(entry.text, "informer cache entry");
  if (parsed.ok()) return std::make_shared<const Json>(*std::move(parsed));
  absl::MutexLock l(&mu_);
  ++stats_.errors;
  last_error_ = absl::InternalError(
      absl::StrCat("cached ", resource_.plural,
                   " object does not parse back: ", parsed.status().message()));
  return nullptr;
}

ObjectPtr Informer::GetByKey(const std::string& key) const {
  Cached entry;
  {
    absl::MutexLock l(&mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) return nullptr;
    entry = it->second;  // copied, so the parse runs without the lock
  }
  return Materialize(entry);
}

std::vector<ObjectPtr> Informer::List() const {
  std::vector<Cached> entries;
  {
    absl::MutexLock l(&mu_);
    entries.reserve(cache_.size());
    for (const auto& [k, v] : cache_) entries.push_back(v);
  }
  std::vector<ObjectPtr> out;
  out.reserve(entries.size());
  for (const Cached& e : entries) {
    if (ObjectPtr obj = Materialize(e)) out.push_back(std::move(obj));
  }
  return out;
}

std::vector<std::string> Informer::Keys() const {
  absl::MutexLock l(&mu_);
  std::vector<std::string> out;
  out.reserve(cache_.size());
  for (const auto& [k, v] : cache_) out.push_back(k);
  return out;
}

size_t Informer::Size() const {
  absl::MutexLock l(&mu_);
  return cache_.size();
}

absl::Status Informer::LastError() const {
  absl::MutexLock l(&mu_);
  return last_error_;
}

Informer::Stats Informer::stats() const {
  absl::MutexLock l(&mu_);
  return stats_;
}

void Informer::RecordError(const absl::Status& s) {
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return;
    last_error_ = s;
    ++stats_.errors;
  }
  changes_.NotifyAll();  // wakes WaitUntil() callers waiting on an error
  if (options_.on_error) options_.on_error(s);
}

void Informer::Synced(const std::string& rv) {
  {
    absl::MutexLock l(&mu_);
    last_rv_ = rv;
  }
  changes_.NotifyAll();
}

absl::Duration JitteredWatchTimeout(absl::Duration min, double u) {
  return min + min * std::clamp(u, 0.0, 0.999999);
}

absl::Duration WatchIdleTimeout(const InformerOptions& options) {
  if (options.watch_idle_timeout <= absl::ZeroDuration()) {
    return kDefaultWatchIdleTimeout;
  }
  return std::max(options.watch_idle_timeout, kMinWatchIdleTimeout);
}

void Informer::Run() {
  pthread_setname_np(pthread_self(), "informer");  // shows in top -H, perf
  Clock* const clock = Clock::Real();
  Backoff backoff(options_.backoff);
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  bool need_list = true;
  bool by_content = false;  // the next list follows a rewound history
  // The last watch broke, went idle or ended without progress: check the
  // server's current version before resuming (the file comment).
  bool check_history = false;
  while (!stopping()) {
    if (check_history && !need_list) {
      absl::StatusOr<bool> went_back = HistoryWentBack();
      if (stopping()) return;
      if (!went_back.ok()) {
        RecordError(went_back.status());
        stop_.WaitFor(backoff.Next());
        continue;
      }
      check_history = false;
      need_list = by_content = *went_back;
    }
    if (need_list) {
      absl::Status s = ListAndReplace(by_content);
      if (stopping()) return;
      if (!s.ok()) {
        RecordError(s);
        stop_.WaitFor(backoff.Next());
        continue;
      }
      need_list = by_content = false;
    }
    const absl::Duration started = clock->Monotonic();
    WatchResult r =
        WatchOnce(JitteredWatchTimeout(options_.watch_timeout, unit(rng)));
    const bool lasted = clock->Monotonic() - started > absl::Seconds(1);
    changes_.NotifyAll();  // stats moved: wakes WaitUntil() callers on them
    switch (r.end) {
      case WatchEnd::kStopped:
        return;
      case WatchEnd::kRelist:
        need_list = true;
        // Relist at once after a watch that made progress; one that fails
        // right after a fresh list (no progress) backs off, so a misbehaving
        // server cannot make us relist in a tight loop.
        if (r.progress || lasted) {
          backoff.Reset();
        } else {
          stop_.WaitFor(backoff.Next());
        }
        break;
      case WatchEnd::kClosed:
        check_history = !r.progress;
        if (r.progress || lasted) {
          backoff.Reset();
        } else {
          stop_.WaitFor(backoff.Next());
        }
        break;
      case WatchEnd::kIdle:
        // Quiet, or a held path: the check comes next, at once (the idle
        // bound has waited already); on a held path it fails and backs off.
        check_history = true;
        backoff.Reset();
        break;
      case WatchEnd::kError:
        check_history = true;
        if (r.progress) backoff.Reset();
        stop_.WaitFor(backoff.Next());
        break;
    }
  }
}

Informer::WatchResult Informer::WatchOnce(absl::Duration server_timeout) {
  WatchOptions wo;
  wo.label_selector = options_.label_selector;
  wo.field_selector = options_.field_selector;
  wo.resource_version = LastSyncResourceVersion();
  wo.allow_bookmarks = true;
  wo.timeout = server_timeout;
  wo.idle_timeout = WatchIdleTimeout(options_);
  {
    absl::MutexLock l(&mu_);
    ++stats_.watches;
  }
  WatchResult r;
  absl::Status s = client_->Watch(
      resource_, options_.namespace_, wo,
      [&](WatchEvent ev) {
        return HandleEvent(std::move(ev), &r.end, &r.progress);
      },
      cts_.get_token());
  if (stopping()) {
    r.end = WatchEnd::kStopped;
    return r;
  }
  if (r.end == WatchEnd::kRelist || r.end == WatchEnd::kError) {
    return r;  // from an event; recorded by HandleEvent
  }
  if (!s.ok()) {
    if (IsGone(s) || IsTooLargeResourceVersion(s)) {
      absl::MutexLock l(&mu_);
      ++(IsGone(s) ? stats_.gone : stats_.too_large);
      r.end = WatchEnd::kRelist;
      return r;
    }
    if (IsWatchIdle(s)) {  // not an error by itself: see the file comment
      absl::MutexLock l(&mu_);
      ++stats_.idle;
      r.end = WatchEnd::kIdle;
      return r;
    }
    r.end = WatchEnd::kError;
    RecordError(s);
    return r;
  }
  absl::MutexLock l(&mu_);
  last_error_ = absl::OkStatus();
  r.end = WatchEnd::kClosed;
  return r;
}

bool Informer::HandleEvent(WatchEvent ev, WatchEnd* end, bool* progress) {
  std::string where = absl::StrCat("watch of ", resource_.plural);
  if (ev.type == WatchEvent::Type::kError) {
    absl::Status s = StatusFromWatchError(ev.object, where);
    if (IsGone(s) || IsTooLargeResourceVersion(s)) {
      absl::MutexLock l(&mu_);
      ++(IsGone(s) ? stats_.gone : stats_.too_large);
      *end = WatchEnd::kRelist;
      return false;
    }
    *end = WatchEnd::kError;
    RecordError(s);
    return false;
  }
  std::string rv = ResourceVersionOf(ev.object);
  if (ev.type == WatchEvent::Type::kBookmark) {
    if (rv.empty()) return true;  // nothing to learn
    if (handlers_.on_synced) handlers_.on_synced(rv);
    {
      absl::MutexLock l(&mu_);
      ++stats_.bookmarks;
    }
    Synced(rv);
    *progress = true;
    return true;
  }
  absl::Status kind = CheckKind(ev.object, resource_);
  std::string key = ObjectKeyOf(ev.object);
  if (kind.ok() && (key.empty() || rv.empty())) {
    kind = absl::InvalidArgumentError(
        "object without metadata.name or resourceVersion");
  }
  if (!kind.ok()) {
    *end = WatchEnd::kError;
    RecordError(absl::InternalError(absl::StrCat(
        where, ": ", WatchEventTypeName(ev.type), " event: ", kind.message())));
    return false;
  }
  if (!ev.object.has_field("kind"))
    ev.object["kind"] = Json::string(resource_.kind);
  if (!ev.object.has_field("apiVersion")) {
    ev.object["apiVersion"] = Json::string(resource_.ApiVersion());
  }
  if (!options_.keep_managed_fields) DropManagedFields(ev.object);
  auto obj = std::make_shared<const Json>(std::move(ev.object));
  std::optional<Cached> old;
  Cached entry;
  if (ev.type != WatchEvent::Type::kDeleted) entry = ToCached(obj);
  {
    absl::MutexLock l(&mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) old = std::move(it->second);
    if (ev.type == WatchEvent::Type::kDeleted) {
      if (it != cache_.end()) cache_.erase(it);
    } else if (it != cache_.end()) {
      it->second = std::move(entry);
    } else {
      cache_.emplace(key, std::move(entry));
    }
    ++stats_.events;
  }
  *progress = true;
  if (ev.type == WatchEvent::Type::kDeleted) {
    if (old.has_value() && handlers_.on_delete) handlers_.on_delete(*obj);
  } else if (!old.has_value()) {
    if (handlers_.on_add) handlers_.on_add(*obj);
  } else if (old->resource_version != rv && handlers_.on_update) {
    if (ObjectPtr old_obj = Materialize(*old)) {
      handlers_.on_update(*old_obj, *obj);
    }
  }
  if (handlers_.on_synced) handlers_.on_synced(rv);
  Synced(rv);  // after the handlers: see LastSyncResourceVersion()
  return true;
}

}  // namespace mcl::kube
