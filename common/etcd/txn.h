// Txn: etcd's mini-transaction, If(compares).Then(ops).Else(ops), applied
// atomically at one revision. A small builder over etcdserverpb::TxnRequest
// plus the three shapes a lock key needs, in the manner of etcd's
// clientv3/concurrency (Mutex, Election):
//
//   KV kv(client);
//   auto r = kv.Commit(CreateIfAbsent("/mcl/locks/ns/name", value, lease));
//   if (r.ok() && r->succeeded) {
//     token = r->revision;                  // the key's mod_revision
//   } else if (r.ok()) {
//     holder = r->results[0].range.kvs;     // Else read the holder
//   }
//
// The fencing token of a grant is the key's mod_revision: the etcd revision of
// the write that made the grant (docs/design.md, Objects). Revisions are
// global and strictly increasing, so every later grant of the lock, by anyone,
// carries a larger one. "Still owned" compares the mod_revision (and the
// lease): a key re-pointed, deleted and re-created, or written by anyone else
// since has a newer one.
//
// Compares are built from a target and an operator:
//   CreateRevision(key) == 0      ModRevision(key) < 42      Version(key) != 0
//   Value(key) == "x"             LeaseOf(key) == lease_id
#ifndef MCL_COMMON_ETCD_TXN_H_
#define MCL_COMMON_ETCD_TXN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/etcd/types.h"
#include "etcd/etcdserver/etcdserverpb/rpc.pb.h"

namespace mcl::etcd {

// One comparison of a key's current state (a missing key has create/mod
// revision, version and lease 0, and no value: a Value compare on a missing key
// is false).
class Compare {
 public:
  const etcdserverpb::Compare& proto() const { return proto_; }

 private:
  friend class IntTarget;
  friend class ValueTarget;
  etcdserverpb::Compare proto_;
};

// The integer fields of a key: compared with ==, !=, <, >.
class IntTarget {
 public:
  IntTarget(etcdserverpb::Compare::CompareTarget target, absl::string_view key)
      : target_(target), key_(key) {}
  Compare operator==(int64_t v) const {
    return Make(etcdserverpb::Compare::EQUAL, v);
  }
  Compare operator!=(int64_t v) const {
    return Make(etcdserverpb::Compare::NOT_EQUAL, v);
  }
  Compare operator<(int64_t v) const {
    return Make(etcdserverpb::Compare::LESS, v);
  }
  Compare operator>(int64_t v) const {
    return Make(etcdserverpb::Compare::GREATER, v);
  }

 private:
  Compare Make(etcdserverpb::Compare::CompareResult op, int64_t v) const;
  etcdserverpb::Compare::CompareTarget target_;
  std::string key_;
};

// A key's value: compared (byte-wise) with ==, !=, <, >.
class ValueTarget {
 public:
  explicit ValueTarget(absl::string_view key) : key_(key) {}
  Compare operator==(absl::string_view v) const {
    return Make(etcdserverpb::Compare::EQUAL, v);
  }
  Compare operator!=(absl::string_view v) const {
    return Make(etcdserverpb::Compare::NOT_EQUAL, v);
  }
  Compare operator<(absl::string_view v) const {
    return Make(etcdserverpb::Compare::LESS, v);
  }
  Compare operator>(absl::string_view v) const {
    return Make(etcdserverpb::Compare::GREATER, v);
  }

 private:
  Compare Make(etcdserverpb::Compare::CompareResult op,
               absl::string_view v) const;
  std::string key_;
};

inline IntTarget CreateRevision(absl::string_view key) {
  return IntTarget(etcdserverpb::Compare::CREATE, key);
}
inline IntTarget ModRevision(absl::string_view key) {
  return IntTarget(etcdserverpb::Compare::MOD, key);
}
inline IntTarget Version(absl::string_view key) {
  return IntTarget(etcdserverpb::Compare::VERSION, key);
}
inline IntTarget LeaseOf(absl::string_view key) {
  return IntTarget(etcdserverpb::Compare::LEASE, key);
}
inline ValueTarget Value(absl::string_view key) { return ValueTarget(key); }

class Txn;

// One operation in a branch. A bad option (e.g. an empty key) is kept as an
// error and reported by KV::Commit, so a builder chain never needs checking
// halfway.
class Op {
 public:
  static Op Get(absl::string_view key, const RangeOptions& options = {});
  static Op Put(absl::string_view key, absl::string_view value,
                const PutOptions& options = {});
  static Op Delete(absl::string_view key, const DeleteOptions& options = {});
  // A whole Txn as one operation of a branch (etcd >= 3.3): its compares are
  // checked and one of its branches runs, at the outer txn's revision. Lets one
  // request release many keys, each under its own compare.
  static Op Nested(const Txn& txn);

  const etcdserverpb::RequestOp& proto() const { return proto_; }
  const absl::Status& error() const { return error_; }

 private:
  etcdserverpb::RequestOp proto_;
  absl::Status error_;
};

class Txn {
 public:
  Txn& If(Compare c);
  Txn& Then(Op op);
  Txn& Else(Op op);

  // Marks the txn as unusable: KV::Commit returns `why` without sending it.
  Txn& Reject(absl::Status why);
  // Guards the whole txn with `key` being unchanged since the write at
  // `mod_revision` (e.g. a leader's epoch key): If(ModRevision(key) ==
  // mod_revision), and Else reads `key` as the Else branch's last op, so a
  // failed txn tells whether the guard or another compare failed
  // (GuardHeld()). Call after the branches are built.
  Txn& Guard(absl::string_view key, int64_t mod_revision);

  // The first bad option of any Op (or the Reject reason), or OK.
  absl::Status Validate() const;
  const etcdserverpb::TxnRequest& proto() const { return proto_; }

 private:
  etcdserverpb::TxnRequest proto_;
  absl::Status error_;
};

// The result of one Op of the branch that ran; `kind` says which member is
// filled.
struct OpResult {
  enum class Kind { kRange, kPut, kDelete, kTxn };
  Kind kind = Kind::kRange;
  RangeResult range;
  PutResult put;
  DeleteResult del;
  bool txn_succeeded = false;  // kTxn: the nested txn's compares held
};

struct TxnResult {
  bool succeeded = false;  // the compares held and Then ran (else Else ran)
  // The store revision after the txn (the txn's own if it wrote).
  int64_t revision = 0;
  std::vector<OpResult> results;  // one per Op of the branch that ran, in order
};

// For a txn built with Guard(key, mod_revision) that did not succeed: true when
// the guard key was still at mod_revision (another compare failed), false when
// it had moved on (or the answer has no read of it).
bool GuardHeld(const TxnResult& result, int64_t mod_revision);

// ---- The lock-key shapes ---------------------------------------------------

// Creates `key` = `value` attached to `lease` only if the key does not exist.
// Then: the Put (its revision is the grant's fencing token, the new key's
// mod_revision). Else: a Get of the key, so the caller learns the holder
// (results[0].range.kvs[0]) in the same round trip.
Txn CreateIfAbsent(absl::string_view key, absl::string_view value,
                   int64_t lease);

// Writes `value` attached to `lease` only if the key is unchanged since the
// write at `mod_revision` and, when lease != 0, still attached to `lease`: a
// re-point of a grant we made, which can never overwrite anyone's newer write.
// Then: the Put (its revision is the new token). Else: a Get of the key.
Txn PutIfOwned(absl::string_view key, int64_t mod_revision,
               absl::string_view value, int64_t lease);

// Deletes the key only if it is unchanged since the write at `mod_revision`
// (and, when lease != 0, attached to `lease`): a release that can never remove
// someone else's newer grant. Else: a Get of the key.
Txn DeleteIfOwned(absl::string_view key, int64_t mod_revision,
                  int64_t lease = 0);

}  // namespace mcl::etcd

#endif  // MCL_COMMON_ETCD_TXN_H_
