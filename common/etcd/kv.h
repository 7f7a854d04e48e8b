// KV: etcd's key space (like clientv3.KV): Range, Put, DeleteRange, Txn and
// Compact. Each call is one unary RPC with a deadline through the Client
// (failover, auth, errors naming the endpoint). Results carry the header
// revision. Stateless and thread-safe; must not outlive the Client.
//
//   KV kv(client);
//   auto put = kv.Put("/a", "1");          // put->revision
//   RangeOptions all;
//   all.prefix = true;
//   auto got = kv.Range("/", all);         // got->kvs, got->revision
//   auto mine = kv.Commit(CreateIfAbsent("/lock", "me", lease));  // txn.h
#ifndef MCL_COMMON_ETCD_KV_H_
#define MCL_COMMON_ETCD_KV_H_

#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/etcd/client.h"
#include "common/etcd/txn.h"
#include "common/etcd/types.h"

namespace mcl::etcd {

class KV {
 public:
  explicit KV(Client* client) : client_(client) {}

  absl::StatusOr<RangeResult> Range(absl::string_view key,
                                    const RangeOptions& options = {});
  // One key: nullopt when it does not exist. The revision is dropped; use Range
  // to keep it.
  absl::StatusOr<std::optional<KeyValue>> Get(
      absl::string_view key, absl::Duration timeout = absl::ZeroDuration());
  absl::StatusOr<PutResult> Put(absl::string_view key, absl::string_view value,
                                const PutOptions& options = {});
  absl::StatusOr<DeleteResult> Delete(absl::string_view key,
                                      const DeleteOptions& options = {});
  // Applies `txn` atomically. An invalid txn (see Txn::Validate) is reported
  // without sending.
  absl::StatusOr<TxnResult> Commit(
      const Txn& txn, absl::Duration timeout = absl::ZeroDuration());
  // Compacts history up to `revision` (watches from older revisions then fail
  // with compact_revision). Returns the header revision. physical: wait until
  // the space is freed.
  absl::StatusOr<int64_t> Compact(
      int64_t revision, bool physical = true,
      absl::Duration timeout = absl::ZeroDuration());

 private:
  Client* client_;
};

}  // namespace mcl::etcd

#endif  // MCL_COMMON_ETCD_KV_H_
