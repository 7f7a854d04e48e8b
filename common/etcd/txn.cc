#include "common/etcd/txn.h"

#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace mcl::etcd {

Compare IntTarget::Make(etcdserverpb::Compare::CompareResult op,
                        int64_t v) const {
  Compare c;
  c.proto_.set_result(op);
  c.proto_.set_target(target_);
  c.proto_.set_key(key_);
  switch (target_) {
    case etcdserverpb::Compare::CREATE:
      c.proto_.set_create_revision(v);
      break;
    case etcdserverpb::Compare::MOD:
      c.proto_.set_mod_revision(v);
      break;
    case etcdserverpb::Compare::LEASE:
      c.proto_.set_lease(v);
      break;
    default:
      c.proto_.set_version(v);
      break;
  }
  return c;
}

Compare ValueTarget::Make(etcdserverpb::Compare::CompareResult op,
                          absl::string_view v) const {
  Compare c;
  c.proto_.set_result(op);
  c.proto_.set_target(etcdserverpb::Compare::VALUE);
  c.proto_.set_key(key_);
  c.proto_.set_value(std::string(v));
  return c;
}

Op Op::Get(absl::string_view key, const RangeOptions& options) {
  Op op;
  auto end = ResolveRangeEnd(key, options);
  if (!end.ok()) {
    op.error_ = end.status();
    return op;
  }
  auto* r = op.proto_.mutable_request_range();
  r->set_key(key.empty() ? std::string(1, '\0') : std::string(key));
  r->set_range_end(*end);
  r->set_revision(options.revision);
  r->set_limit(options.limit);
  r->set_keys_only(options.keys_only);
  r->set_count_only(options.count_only);
  r->set_serializable(options.serializable);
  return op;
}

Op Op::Put(absl::string_view key, absl::string_view value,
           const PutOptions& options) {
  Op op;
  if (key.empty()) {
    op.error_ = absl::InvalidArgumentError("etcd: Put of an empty key");
    return op;
  }
  auto* r = op.proto_.mutable_request_put();
  r->set_key(std::string(key));
  r->set_value(std::string(value));
  r->set_lease(options.lease);
  r->set_prev_kv(options.prev_kv);
  return op;
}

Op Op::Delete(absl::string_view key, const DeleteOptions& options) {
  Op op;
  auto end = ResolveRangeEnd(key, options);
  if (!end.ok()) {
    op.error_ = end.status();
    return op;
  }
  auto* r = op.proto_.mutable_request_delete_range();
  r->set_key(key.empty() ? std::string(1, '\0') : std::string(key));
  r->set_range_end(*end);
  r->set_prev_kv(options.prev_kv);
  return op;
}

Op Op::Nested(const Txn& txn) {
  Op op;
  op.error_ = txn.Validate();
  *op.proto_.mutable_request_txn() = txn.proto();
  return op;
}

Txn& Txn::Guard(absl::string_view key, int64_t mod_revision) {
  If(ModRevision(key) == mod_revision);
  Else(Op::Get(key));
  if (mod_revision <= 0 && error_.ok()) {
    error_ = absl::InvalidArgumentError(
        "etcd: a Txn guard needs the guard key's mod_revision (> 0)");
  }
  return *this;
}

bool GuardHeld(const TxnResult& result, int64_t mod_revision) {
  if (result.succeeded || result.results.empty()) return result.succeeded;
  const OpResult& last = result.results.back();
  return last.kind == OpResult::Kind::kRange && last.range.kvs.size() == 1 &&
         last.range.kvs[0].mod_revision == mod_revision;
}

Txn& Txn::If(Compare c) {
  if (c.proto().key().empty() && error_.ok()) {
    error_ = absl::InvalidArgumentError("etcd: Txn compare on an empty key");
  }
  *proto_.add_compare() = c.proto();
  return *this;
}

Txn& Txn::Then(Op op) {
  if (!op.error().ok() && error_.ok()) error_ = op.error();
  *proto_.add_success() = op.proto();
  return *this;
}

Txn& Txn::Else(Op op) {
  if (!op.error().ok() && error_.ok()) error_ = op.error();
  *proto_.add_failure() = op.proto();
  return *this;
}

Txn& Txn::Reject(absl::Status why) {
  if (error_.ok()) error_ = std::move(why);
  return *this;
}

absl::Status Txn::Validate() const { return error_; }

namespace {

Txn Owned(absl::string_view key, int64_t mod_revision, int64_t lease,
          absl::string_view shape) {
  Txn txn;
  txn.If(ModRevision(key) == mod_revision);
  if (lease != 0) txn.If(LeaseOf(key) == lease);
  if (mod_revision <= 0) {
    // "Unchanged since revision 0" would mean "absent", which is no ownership.
    txn.Reject(absl::InvalidArgumentError(absl::StrCat(
        "etcd: ", shape, " needs the mod_revision of our write (> 0)")));
  }
  return txn;
}

}  // namespace

Txn CreateIfAbsent(absl::string_view key, absl::string_view value,
                   int64_t lease) {
  PutOptions put;
  put.lease = lease;
  Txn txn;
  txn.If(CreateRevision(key) == 0)
      .Then(Op::Put(key, value, put))
      .Else(Op::Get(key));
  return txn;
}

Txn PutIfOwned(absl::string_view key, int64_t mod_revision,
               absl::string_view value, int64_t lease) {
  PutOptions put;
  put.lease = lease;
  Txn txn = Owned(key, mod_revision, lease, "PutIfOwned");
  txn.Then(Op::Put(key, value, put)).Else(Op::Get(key));
  return txn;
}

Txn DeleteIfOwned(absl::string_view key, int64_t mod_revision, int64_t lease) {
  Txn txn = Owned(key, mod_revision, lease, "DeleteIfOwned");
  txn.Then(Op::Delete(key)).Else(Op::Get(key));
  return txn;
}

}  // namespace mcl::etcd
