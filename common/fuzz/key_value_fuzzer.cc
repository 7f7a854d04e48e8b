// The value of a lock's etcd key (common/contract.h), as the controller reads
// it from etcd: any bytes — another installation's value under our prefix, a
// truncated write, garbage. ParseKeyValue must never crash and must accept
// only what EncodeKeyValue could have written: a value it accepts encodes and
// parses back to itself.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "common/contract.h"
#include "common/fuzz/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using mcl::contract::EncodeKeyValue;
  using mcl::contract::ParseKeyValue;
  const absl::string_view raw(reinterpret_cast<const char*>(data), size);
  auto v = ParseKeyValue(raw);
  if (!v.has_value()) return 0;
  FUZZ_CHECK(!v->cluster.empty() && !v->holder.empty(), "input: %.*s",
             static_cast<int>(std::min<size_t>(size, 200)), raw.data());
  const std::string encoded = EncodeKeyValue(*v);
  auto back = ParseKeyValue(encoded);
  FUZZ_CHECK(back.has_value(), "encoded: %s", encoded.c_str());
  FUZZ_CHECK(back->cluster == v->cluster && back->holder == v->holder &&
                 back->session == v->session &&
                 back->acquire_time == v->acquire_time,
             "encoded: %s", encoded.c_str());
  FUZZ_CHECK(EncodeKeyValue(*back) == encoded, "encoded: %s", encoded.c_str());
  return 0;
}
