// The sidecar's checks of gRPC request fields (sidecar/validate.h), which
// guard every Campaign, Resign, Observe and Leader call: any bytes must get a
// verdict, never a crash, and each verdict must match an independent reading
// of the rule it enforces (the CRD's and Kubernetes' own): a name the sidecar
// accepts is one the apiserver accepts, and the reverse. A refusal names the
// field.
//
// Input: lock name, namespace and identity separated by '\n'; the remaining
// bytes (up to 8, little-endian) are the lease duration.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/fuzz/check.h"
#include "sidecar/validate.h"

namespace {

bool Alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// RFC 1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63.
bool IsLabel(const std::string& s) {
  if (s.empty() || s.size() > 63 || !Alnum(s.front()) || !Alnum(s.back())) {
    return false;
  }
  for (char c : s) {
    if (!Alnum(c) && c != '-') return false;
  }
  return true;
}

// DNS-1123 subdomain: labels joined by '.', at most 253 in all.
bool IsSubdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (absl::string_view part : absl::StrSplit(s, '.')) {
    // A subdomain's label may be longer than 63 (Kubernetes checks only the
    // total length for names).
    std::string p(part);
    if (p.empty() || !Alnum(p.front()) || !Alnum(p.back())) return false;
    for (char c : p) {
      if (!Alnum(c) && c != '-') return false;
    }
  }
  return true;
}

// The CRD's spec.holderIdentity: ^[\x21-\x7e]+$, at most 128 (empty: the
// sidecar picks a default, so the check lets it through).
bool IsIdentity(const std::string& s) {
  if (s.size() > 128) return false;
  for (unsigned char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

void Expect(const absl::Status& s, bool valid, const char* field,
            const std::string& value) {
  FUZZ_CHECK(s.ok() == valid, "%s \"%s\": validator says %s, the rule says %s",
             field, value.c_str(), s.ok() ? "valid" : "invalid",
             valid ? "valid" : "invalid");
  if (!s.ok()) {
    FUZZ_CHECK(absl::StrContains(s.message(), field),
               "the error does not name %s: %s", field,
               std::string(s.message()).c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mcl::sidecar;
  const std::string in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts = absl::StrSplit(in, absl::MaxSplits('\n', 3));
  parts.resize(4);
  const std::string& name = parts[0];
  const std::string& ns = parts[1];
  const std::string& identity = parts[2];
  int64_t seconds = 0;
  std::memcpy(&seconds, parts[3].data(), std::min<size_t>(parts[3].size(), 8));

  Expect(ValidateLockName(name, "lock.name"), IsSubdomain(name), "lock.name",
         name);
  Expect(ValidateNamespace(ns, "lock.namespace"), IsLabel(ns), "lock.namespace",
         ns);
  Expect(ValidateIdentity(identity, "identity"), IsIdentity(identity),
         "identity", identity);
  Expect(ValidateLeaseDuration(seconds, "lease_duration_seconds"),
         seconds == 0 || (seconds >= 2 && seconds <= 3600),
         "lease_duration_seconds", std::to_string(seconds));
  return 0;
}
