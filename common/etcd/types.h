// types: the plain values of etcd's key space as the client hands them out
// (KeyValue), and the options and results of the three KV operations. Keys and
// values are bytes (std::string).
#ifndef MCL_COMMON_ETCD_TYPES_H_
#define MCL_COMMON_ETCD_TYPES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "etcd/mvcc/mvccpb/kv.pb.h"

namespace mcl::etcd {

struct KeyValue {
  std::string key;
  std::string value;
  // Revision of the Put that created this incarnation of the key.
  int64_t create_revision = 0;
  // Revision of the last change: the fencing token of a lock key (txn.h).
  int64_t mod_revision = 0;
  int64_t version = 0;  // changes since creation (1 after the create)
  int64_t lease = 0;    // attached lease, 0 = none

  static KeyValue FromProto(const mvccpb::KeyValue& kv);
  bool operator==(const KeyValue& o) const;
};

// The smallest key greater than every key starting with `prefix` (etcd's
// range_end for a prefix); "\0" (all keys) when `prefix` is empty or only 0xff
// bytes.
std::string PrefixEnd(absl::string_view prefix);

// Which keys: `key` alone; [key, range_end) when range_end is set; every key
// starting with `key` when prefix is true (range_end must then be empty). An
// empty key is only allowed with a prefix (= all keys) or a range_end.
struct KeyRange {
  std::string range_end;
  bool prefix = false;
};
// Checks the combination and returns the range_end to send ("" for a single
// key).
absl::StatusOr<std::string> ResolveRangeEnd(absl::string_view key,
                                            const KeyRange& range);

struct RangeOptions : KeyRange {
  int64_t revision = 0;  // read at this revision; 0 = latest
  int64_t limit = 0;     // at most this many keys; 0 = no limit
  bool keys_only = false;
  bool count_only = false;
  bool serializable = false;  // served by one member without a quorum read
  // Zero = the client's call_timeout.
  absl::Duration timeout = absl::ZeroDuration();
};

struct RangeResult {
  int64_t revision = 0;  // the store revision the read saw (header revision)
  std::vector<KeyValue> kvs;
  bool more = false;  // a limit cut the result short
  int64_t count = 0;  // keys in the range (ignoring limit)
};

struct PutOptions {
  // Attach to this lease (0 = none; the key then outlives every session).
  int64_t lease = 0;
  bool prev_kv = false;
  absl::Duration timeout = absl::ZeroDuration();
};

struct PutResult {
  int64_t revision = 0;  // the revision of this Put
  std::optional<KeyValue> prev_kv;
};

struct DeleteOptions : KeyRange {
  bool prev_kv = false;
  absl::Duration timeout = absl::ZeroDuration();
};

struct DeleteResult {
  int64_t revision = 0;
  int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs;
};

}  // namespace mcl::etcd

#endif  // MCL_COMMON_ETCD_TYPES_H_
