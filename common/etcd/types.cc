#include "common/etcd/types.h"

#include "absl/status/statusor.h"

namespace mcl::etcd {

KeyValue KeyValue::FromProto(const mvccpb::KeyValue& kv) {
  KeyValue out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.version = kv.version();
  out.lease = kv.lease();
  return out;
}

bool KeyValue::operator==(const KeyValue& o) const {
  return key == o.key && value == o.value &&
         create_revision == o.create_revision &&
         mod_revision == o.mod_revision && version == o.version &&
         lease == o.lease;
}

std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

absl::StatusOr<std::string> ResolveRangeEnd(absl::string_view key,
                                            const KeyRange& range) {
  if (range.prefix && !range.range_end.empty()) {
    return absl::InvalidArgumentError(
        "etcd: give either prefix or range_end, not both");
  }
  if (range.prefix) return PrefixEnd(key);
  if (key.empty() && range.range_end.empty()) {
    return absl::InvalidArgumentError(
        "etcd: empty key (use prefix=true for all keys)");
  }
  return range.range_end;
}

}  // namespace mcl::etcd
