#include "sidecar/kube_view.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/contract.h"

namespace mcl::sidecar {

absl::StatusOr<LeaseView> ToLeaseView(const kube::MultiClusterLease& obj) {
  LeaseView v;
  auto rv = kube::ParseResourceVersion(obj.metadata.resource_version);
  if (!rv.ok()) return rv.status();
  v.resource_version = *rv;
  v.exists = true;
  v.holder = obj.spec.holder_identity;
  v.holder_instance = obj.spec.holder_instance;
  v.lease_duration_seconds = obj.spec.lease_duration_seconds;
  v.renew_time = obj.spec.renew_time;
  v.grant.leader = obj.status.leader;
  v.grant.cluster = obj.status.leader_cluster;
  v.grant.token = obj.status.fencing_token;
  v.grant.instance = obj.status.leader_instance;
  if (!obj.status.acquire_time.empty()) {
    auto t = kube::ParseKubeTime(obj.status.acquire_time);
    if (t.ok()) v.grant.acquire_time = *t;
  }
  v.session = obj.status.session;
  if (!obj.status.confirmed_resource_version.empty()) {
    auto c = kube::ParseResourceVersion(obj.status.confirmed_resource_version);
    if (c.ok()) v.confirmed_rv = *c;
  }
  v.heartbeat = obj.status.heartbeat;
  v.session_ttl_ms = obj.status.session_ttl_milliseconds;
  if (v.session_ttl_ms != 0) {
    absl::Status ttl =
        contract::CheckSessionTtl(absl::Milliseconds(v.session_ttl_ms));
    if (!ttl.ok()) {
      v.session_ttl_ms = 0;
      v.refused_confirmation =
          absl::StrCat("status.sessionTTLMilliseconds: ", ttl.message());
    }
  }
  return v;
}

absl::StatusOr<std::optional<Confirmation>> ToConfirmation(
    const kube::Lease& lease) {
  const auto& a = lease.metadata.annotations;
  auto s = a.find(contract::kSessionAnnotation);
  auto c = a.find(contract::kConfirmedResourceVersionAnnotation);
  auto t = a.find(contract::kSessionTtlAnnotation);
  if (s == a.end() || c == a.end() || t == a.end() || s->second.empty())
    return std::nullopt;
  int64_t rv = 0, ttl = 0;
  if (!absl::SimpleAtoi(c->second, &rv) || rv <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(contract::kConfirmedResourceVersionAnnotation, " \"",
                     c->second, "\" is not a positive integer"));
  }
  if (!absl::SimpleAtoi(t->second, &ttl)) {
    return absl::InvalidArgumentError(
        absl::StrCat(contract::kSessionTtlAnnotation, " \"", t->second,
                     "\" is not an integer number of milliseconds"));
  }
  // absl::Milliseconds saturates to infinity, which the range refuses too.
  if (absl::Status r = contract::CheckSessionTtl(absl::Milliseconds(ttl));
      !r.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(contract::kSessionTtlAnnotation, ": ", r.message()));
  }
  return Confirmation{s->second, rv, absl::Milliseconds(ttl)};
}

}  // namespace mcl::sidecar
