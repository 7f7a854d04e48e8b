// The informer's lists: the initial one and every relist with its diff
// against the cache (informer.h, "How it stays exact"), and the version check
// before a watch resumes ("How it stays live").
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/kube/informer.h"
#include "common/kube/json.h"

namespace mcl::kube {

bool Informer::Unchanged(const Cached& entry, const Json& obj,
                         bool by_content) const {
  if (entry.resource_version != ResourceVersionOf(obj)) return false;
  if (!by_content) return true;
  if (entry.tree != nullptr) return *entry.tree == obj;
  return entry.text == obj.serialize();
}

absl::StatusOr<bool> Informer::HistoryWentBack() {
  ListOptions lo;
  lo.label_selector = options_.label_selector;
  lo.field_selector = options_.field_selector;
  lo.limit = 1;  // only the list's resourceVersion matters
  lo.cancel = cts_.get_token();
  {
    absl::MutexLock l(&mu_);
    ++stats_.probes;
  }
  auto page = client_->List(resource_, options_.namespace_, lo);
  if (!page.ok()) return page.status();
  const std::string seen = LastSyncResourceVersion();
  auto now = ParseResourceVersion(page->resource_version);
  auto before = ParseResourceVersion(seen);
  if (!now.ok() || !before.ok() || *now >= *before) return false;
  {
    absl::MutexLock l(&mu_);
    ++stats_.rewinds;
  }
  RecordError(absl::FailedPreconditionError(absl::StrCat(
      resource_.plural, ": the apiserver's resourceVersion went back from ",
      seen, " to ", page->resource_version,
      " (was its etcd restored from a backup?): relisting")));
  return true;
}

absl::StatusOr<std::map<std::string, ObjectPtr>> Informer::ListedObjects(
    JsonList& list) const {
  std::map<std::string, ObjectPtr> fresh;
  for (Json& item : list.items) {
    if (absl::Status s = CheckKind(item, resource_); !s.ok()) {
      return absl::InternalError(
          absl::StrCat("list of ", resource_.plural, ": ", s.message()));
    }
    // A list's items carry no kind or apiVersion; watch events' objects do,
    // and handlers see one shape either way.
    item["kind"] = Json::string(resource_.kind);
    item["apiVersion"] = Json::string(resource_.ApiVersion());
    std::string key = ObjectKeyOf(item);
    if (key.empty()) {
      return absl::InternalError(absl::StrCat(
          "list of ", resource_.plural, ": an item has no metadata.name"));
    }
    if (!options_.keep_managed_fields) DropManagedFields(item);
    fresh[key] = std::make_shared<const Json>(std::move(item));
  }
  return fresh;
}

std::vector<Informer::ListChange> Informer::ReplaceCache(
    const std::map<std::string, ObjectPtr>& fresh, bool by_content) {
  std::vector<ListChange> changes;
  std::map<std::string, Cached> next;
  absl::MutexLock l(&mu_);
  for (const auto& [key, obj] : fresh) {
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      changes.push_back({Cached(), obj, true});
      next[key] = ToCached(obj);
    } else if (!Unchanged(it->second, *obj, by_content)) {
      changes.push_back({it->second, obj, false});
      next[key] = ToCached(obj);
    } else {
      // Unchanged: keep the cached entry, so readers see one identity.
      next[key] = it->second;
    }
  }
  for (const auto& [key, entry] : cache_) {
    if (fresh.find(key) == fresh.end()) {
      changes.push_back({entry, nullptr, false});
    }
  }
  cache_ = std::move(next);
  last_error_ = absl::OkStatus();
  return changes;
}

void Informer::Dispatch(const std::vector<ListChange>& changes) const {
  for (const ListChange& c : changes) {
    if (c.is_add) {
      if (handlers_.on_add) handlers_.on_add(*c.new_obj);
    } else if (c.new_obj == nullptr) {
      if (!handlers_.on_delete) continue;
      if (ObjectPtr old = Materialize(c.old_entry)) handlers_.on_delete(*old);
    } else if (handlers_.on_update) {
      if (ObjectPtr old = Materialize(c.old_entry)) {
        handlers_.on_update(*old, *c.new_obj);
      }
    }
  }
}

absl::Status Informer::ListAndReplace(bool by_content) {
  ListOptions lo;
  lo.label_selector = options_.label_selector;
  lo.field_selector = options_.field_selector;
  lo.limit = options_.list_page_size;
  lo.cancel = cts_.get_token();
  auto list = client_->ListAll(resource_, options_.namespace_, lo);
  {
    absl::MutexLock l(&mu_);
    ++stats_.lists;
  }
  if (!list.ok()) return list.status();
  auto fresh = ListedObjects(*list);
  if (!fresh.ok()) return fresh.status();
  // Handlers run after the cache is replaced and outside the lock, so they
  // can read the informer.
  Dispatch(ReplaceCache(*fresh, by_content));
  // on_synced before the version is published, so whoever sees it published
  // (LastSyncResourceVersion, HasSynced) knows on_synced has run for it.
  if (handlers_.on_synced) handlers_.on_synced(list->resource_version);
  {
    absl::MutexLock l(&mu_);
    // After the handlers: see LastSyncResourceVersion().
    last_rv_ = list->resource_version;
    synced_ = true;
  }
  changes_.NotifyAll();
  return absl::OkStatus();
}

}  // namespace mcl::kube
