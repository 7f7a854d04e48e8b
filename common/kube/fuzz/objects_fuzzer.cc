// The JSON decoders of the API objects mcl reads from an apiserver — the
// MultiClusterLease CR, the heartbeat Lease (coordination.k8s.io/v1) and a
// watch ERROR event's metav1.Status — on any bytes. Properties:
//  * no crash, no exception, whatever the input;
//  * a decoded integer field holds the input's value or the decoder refuses
//    the object (never a silently truncated number);
//  * ToJson(FromJson(x)) is a fixed point: decoding and encoding it again
//    gives the same JSON (a read-modify-write changes nothing it did not
//    mean to);
//  * a resourceVersion that parses is the decimal number it names.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/fuzz/check.h"
#include "common/kube/errors.h"
#include "common/kube/json.h"
#include "common/kube/objects.h"

namespace mcl::kube {
namespace {

// The integer at obj.a.b when it is a JSON integer that fits int64.
std::optional<int64_t> IntAt(const Json& obj, const char* a, const char* b) {
  if (!obj.is_object() || !obj.has_field(a)) return std::nullopt;
  const Json& x = obj.at(a);
  if (!x.is_object() || !x.has_field(b)) return std::nullopt;
  const Json& v = x.at(b);
  if (!v.is_integer() || !v.as_number().is_int64()) return std::nullopt;
  return v.as_number().to_int64();
}

template <typename T>
void RoundTrip(const Json& j) {
  auto x = T::FromJson(j);
  if (!x.ok()) {
    FUZZ_CHECK(!x.status().message().empty(), "an error without a message");
    return;
  }
  const Json once = x->ToJson();
  auto y = T::FromJson(once);
  FUZZ_CHECK(y.ok(), "ToJson's output does not decode: %s -> %s",
             once.serialize().c_str(),
             std::string(y.status().message()).c_str());
  const Json twice = y->ToJson();
  FUZZ_CHECK(once == twice, "not a fixed point:\n%s\n%s",
             once.serialize().c_str(), twice.serialize().c_str());
}

void CheckIntegers(const Json& j) {
  if (auto m = MultiClusterLease::FromJson(j); m.ok()) {
    if (auto d = IntAt(j, "spec", "leaseDurationSeconds")) {
      FUZZ_CHECK(m->spec.lease_duration_seconds == *d,
                 "spec.leaseDurationSeconds %lld decoded as %d",
                 static_cast<long long>(*d), m->spec.lease_duration_seconds);
    }
  }
  if (auto l = Lease::FromJson(j); l.ok()) {
    if (auto d = IntAt(j, "spec", "leaseDurationSeconds")) {
      FUZZ_CHECK(l->spec.lease_duration_seconds == *d,
                 "Lease spec.leaseDurationSeconds %lld decoded as %d",
                 static_cast<long long>(*d), l->spec.lease_duration_seconds);
    }
    if (auto t = IntAt(j, "spec", "leaseTransitions")) {
      FUZZ_CHECK(l->spec.lease_transitions == *t,
                 "Lease spec.leaseTransitions %lld decoded as %d",
                 static_cast<long long>(*t), l->spec.lease_transitions);
    }
  }
}

void CheckResourceVersion(const Json& j) {
  const std::string rv = ResourceVersionOf(j);
  auto v = ParseResourceVersion(rv);
  if (v.ok()) {
    FUZZ_CHECK(absl::StrCat(*v) == rv, "resourceVersion \"%s\" parsed as %lld",
               rv.c_str(), static_cast<long long>(*v));
  }
}

}  // namespace
}  // namespace mcl::kube

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mcl::kube;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto j = ParseJson(text, "fuzz input");
  if (!j.ok()) return 0;
  RoundTrip<MultiClusterLease>(*j);
  RoundTrip<Lease>(*j);
  CheckIntegers(*j);
  CheckResourceVersion(*j);
  (void)ObjectKeyOf(*j);
  (void)CheckKind(*j, MultiClusterLeaseResource());
  absl::Status s = StatusFromWatchError(*j, "watch of multiclusterleases");
  FUZZ_CHECK(!s.ok(), "a watch ERROR event read as success");
  (void)IsGone(s);
  (void)IsTooLargeResourceVersion(s);
  absl::Status r = StatusFromResponse(409, "application/json", text, "PUT",
                                      "https://127.0.0.1/x");
  FUZZ_CHECK(!r.ok(), "an HTTP 409 read as success");
  return 0;
}
