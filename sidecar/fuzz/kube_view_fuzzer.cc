// What the sidecar's state machines read from the apiserver, decoded from any
// bytes: a MultiClusterLease to a LeaseView (its spec, grant and confirmation
// fields) and the controller's heartbeat Lease to a Confirmation
// (sidecar/kube_view.h). Properties:
//  * no crash, whatever the JSON;
//  * a LeaseView's versions are the object's (never invented);
//  * a Confirmation only from complete, well-formed annotations, with a
//    session TTL a controller could have been configured with
//    (contract::kMinSessionTtl..kMaxSessionTtl); a LeaseView's session TTL
//    is 0 or in that range. Before this was checked, any positive
//    mcl.dev/session-ttl-ms was believed (findings.md: 2^63-1 ms), and the
//    sidecar's LEADER validity is counted from it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/contract.h"
#include "common/fuzz/check.h"
#include "common/kube/json.h"
#include "common/kube/objects.h"
#include "sidecar/kube_view.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mcl;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto j = kube::ParseJson(text, "fuzz input");
  if (!j.ok()) return 0;
  if (auto mcl = kube::MultiClusterLease::FromJson(*j); mcl.ok()) {
    auto view = sidecar::ToLeaseView(*mcl);
    if (view.ok()) {
      FUZZ_CHECK(view->session_ttl_ms == 0 ||
                     contract::CheckSessionTtl(
                         absl::Milliseconds(view->session_ttl_ms))
                         .ok(),
                 "status session TTL %lld ms accepted",
                 static_cast<long long>(view->session_ttl_ms));
      FUZZ_CHECK(absl::StrCat(view->resource_version) ==
                     mcl->metadata.resource_version,
                 "resourceVersion \"%s\" read as %lld",
                 mcl->metadata.resource_version.c_str(),
                 static_cast<long long>(view->resource_version));
    }
  }
  if (auto lease = kube::Lease::FromJson(*j); lease.ok()) {
    auto c = sidecar::ToConfirmation(*lease);
    if (c.ok() && c->has_value()) {
      FUZZ_CHECK(contract::CheckSessionTtl((*c)->ttl).ok(),
                 "heartbeat session TTL %s accepted",
                 absl::FormatDuration((*c)->ttl).c_str());
    }
  }
  return 0;
}
