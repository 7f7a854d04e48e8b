// Typed Kubernetes objects mcl uses, with JSON round trips: MultiClusterLease
// (mcl.dev/v1alpha1) and coordination.k8s.io/v1 Lease, plus Resource, the
// description of a REST collection that the generic client and the informer
// work on.
//
// Each typed object keeps the JSON it was decoded from (`raw`); ToJson() writes
// the known fields over that copy, so fields this code does not model (labels,
// ownerReferences, managedFields, fields added by a newer CRD) survive a
// read-modify-write Update. Empty/zero values are omitted, like Go's
// `omitempty`. Plain value types; not synchronised.
#ifndef MCL_COMMON_KUBE_OBJECTS_H_
#define MCL_COMMON_KUBE_OBJECTS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/kube/json.h"
#include "common/kube/time.h"  // the time formats of the objects below

namespace mcl::kube {

// A REST collection: /api/v1/... for the core group, /apis/GROUP/VERSION/...
// otherwise.
struct Resource {
  std::string group;  // "" for the core group
  std::string version;
  std::string plural;  // "multiclusterleases"
  std::string kind;    // "MultiClusterLease"
  bool namespaced = true;

  std::string ApiVersion() const;  // "mcl.dev/v1alpha1", "v1"
  // The URL path of the collection (name empty) or of an object, optionally of
  // its subresource. Empty `ns` on a namespaced resource means all namespaces
  // (lists and watches only).
  std::string Path(absl::string_view ns, absl::string_view name = "",
                   absl::string_view subresource = "") const;
  std::string ListKind() const { return kind + "List"; }
};

const Resource&
MultiClusterLeaseResource();      // mcl.dev/v1alpha1 multiclusterleases
const Resource& LeaseResource();  // coordination.k8s.io/v1 leases
const Resource& EventResource();  // v1 events

// "namespace/name" (or "name" for cluster-scoped objects): the informer's cache
// key.
std::string ObjectKey(absl::string_view ns, absl::string_view name);
// The key of a JSON object from its metadata ("" when it has no name).
std::string ObjectKeyOf(const Json& obj);
// metadata.resourceVersion of a JSON object ("" when absent).
std::string ResourceVersionOf(const Json& obj);

struct ObjectMeta {
  std::string name;
  std::string namespace_;
  std::string uid;
  std::string resource_version;
  int64_t generation = 0;
  std::string creation_timestamp;
  std::optional<std::string>
      deletion_timestamp;  // set once deletion has started
  std::vector<std::string> finalizers;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;

  std::string Key() const { return ObjectKey(namespace_, name); }
};

// metav1.Condition.
struct Condition {
  std::string type;
  std::string status;  // "True", "False", "Unknown"
  int64_t observed_generation = 0;
  std::string last_transition_time;
  std::string reason;
  std::string message;
  bool operator==(const Condition& o) const;
};

struct MultiClusterLeaseSpec {
  std::optional<std::string>
      holder_identity;                 // absent: no local candidate campaigns
  int32_t lease_duration_seconds = 0;  // 0: absent
  std::string renew_time;              // MicroTime, RFC 3339 with microseconds
  // Which candidacy of holder_identity writes the spec (contract.h).
  std::optional<std::string> holder_instance;
};

struct MultiClusterLeaseStatus {
  std::string leader;
  std::string leader_cluster;
  std::string leader_instance;  // spec.holderInstance of the granted candidacy
  std::string acquire_time;
  int64_t fencing_token = 0;
  int64_t observed_generation = 0;
  int64_t transitions = 0;
  std::string session;    // etcd lease ID (hex) backing the grant
  std::string heartbeat;  // namespace/name of the granting controller's Lease
  int64_t session_ttl_milliseconds = 0;  // TTL of that etcd session lease
  std::string confirmed_resource_version;
  std::string last_confirmed_renew_time;
  std::vector<Condition> conditions;
};

struct MultiClusterLease {
  ObjectMeta metadata;
  MultiClusterLeaseSpec spec;
  MultiClusterLeaseStatus status;
  Json raw;  // the decoded JSON (see the file comment); null for objects built
             // in code

  static const Resource& resource() { return MultiClusterLeaseResource(); }
  // Fails with a clear message on a wrong `kind`/`apiVersion` or a field of the
  // wrong type.
  static absl::StatusOr<MultiClusterLease> FromJson(const Json& j);
  Json ToJson() const;
};

struct LeaseSpec {
  std::optional<std::string> holder_identity;
  int32_t lease_duration_seconds = 0;
  std::string acquire_time;  // MicroTime
  std::string renew_time;    // MicroTime
  int32_t lease_transitions = 0;
  std::string strategy;
  std::string preferred_holder;
};

struct Lease {
  ObjectMeta metadata;
  LeaseSpec spec;
  Json raw;

  static const Resource& resource() { return LeaseResource(); }
  static absl::StatusOr<Lease> FromJson(const Json& j);
  Json ToJson() const;
};

// A typed list: the items and the list's resourceVersion (for a watch to start
// from).
template <typename T>
struct ObjectList {
  std::vector<T> items;
  std::string resource_version;
};

// Metadata helpers shared by the typed objects (and usable on any JSON object).
absl::StatusOr<ObjectMeta> MetaFromJson(const Json& obj,
                                        absl::string_view what);
void MetaToJson(const ObjectMeta& m, Json& obj);
// Checks `kind` and `apiVersion` of a decoded object: "expected kind X, got Y"
// otherwise.
absl::Status CheckKind(const Json& obj, const Resource& r);

// A resourceVersion as an integer. Kubernetes calls them opaque, but every
// etcd3-backed apiserver uses the etcd revision, so versions from one cluster
// compare as integers (docs/design.md). Never compare versions from different
// clusters.
absl::StatusOr<int64_t> ParseResourceVersion(absl::string_view rv);

}  // namespace mcl::kube

#endif  // MCL_COMMON_KUBE_OBJECTS_H_
