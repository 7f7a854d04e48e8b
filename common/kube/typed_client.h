// TypedClient<T>: KubeClient's calls for one typed object (MultiClusterLease,
// Lease), decoding answers into T and checking their kind. A thin, stateless
// wrapper; thread-safe like KubeClient.
//
//   kube::TypedClient<kube::MultiClusterLease> leases(client.get());
//   auto l = leases.Get("default", "my-lock");
//   l->spec.renew_time = kube::FormatMicroTime(clock->WallNow());
//   // Conditional on l->metadata.resource_version:
//   auto updated = leases.Update(*l);
//   if (kube::IsConflict(updated.status())) {
//     // Someone else wrote first: re-read, then decide again.
//   }
#ifndef MCL_COMMON_KUBE_TYPED_CLIENT_H_
#define MCL_COMMON_KUBE_TYPED_CLIENT_H_

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/kube/client.h"
#include "common/kube/objects.h"

namespace mcl::kube {

// T provides: static const Resource& resource(); static absl::StatusOr<T>
// FromJson(const Json&); Json ToJson() const; ObjectMeta metadata.
template <typename T>
class TypedClient {
 public:
  explicit TypedClient(KubeClient* client) : client_(client) {}

  absl::StatusOr<T> Get(absl::string_view ns, absl::string_view name) {
    return Decode(client_->Get(T::resource(), ns, name));
  }
  absl::StatusOr<T> Create(const T& obj) {
    return Decode(
        client_->Create(T::resource(), obj.metadata.namespace_, obj.ToJson()));
  }
  // Conditional on obj.metadata.resource_version when set (IsConflict() when
  // stale).
  absl::StatusOr<T> Update(const T& obj) {
    return Decode(client_->Update(T::resource(), obj.ToJson()));
  }
  absl::StatusOr<T> UpdateStatus(const T& obj) {
    return Decode(client_->UpdateStatus(T::resource(), obj.ToJson()));
  }
  absl::StatusOr<T> MergePatch(absl::string_view ns, absl::string_view name,
                               const Json& patch,
                               absl::string_view subresource = "") {
    return Decode(
        client_->MergePatch(T::resource(), ns, name, patch, subresource));
  }
  absl::Status Delete(absl::string_view ns, absl::string_view name,
                      const DeleteOptions& options = {}) {
    return client_->Delete(T::resource(), ns, name, options);
  }
  // All pages.
  absl::StatusOr<ObjectList<T>> List(absl::string_view ns,
                                     const ListOptions& options = {}) {
    auto l = client_->ListAll(T::resource(), ns, options);
    if (!l.ok()) return l.status();
    ObjectList<T> out;
    out.resource_version = l->resource_version;
    for (const Json& item : l->items) {
      auto t = T::FromJson(item);
      if (!t.ok()) return t.status();
      out.items.push_back(std::move(*t));
    }
    return out;
  }

  KubeClient* client() const { return client_; }

 private:
  static absl::StatusOr<T> Decode(absl::StatusOr<Json> j) {
    if (!j.ok()) return j.status();
    return T::FromJson(*j);
  }
  KubeClient* client_;
};

using MultiClusterLeaseClient = TypedClient<MultiClusterLease>;
using LeaseClient = TypedClient<Lease>;

}  // namespace mcl::kube

#endif  // MCL_COMMON_KUBE_TYPED_CLIENT_H_
