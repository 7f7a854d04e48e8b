#include "common/etcd/kv.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace mcl::etcd {
namespace {

RangeResult FromProto(const etcdserverpb::RangeResponse& r) {
  RangeResult out;
  out.revision = r.header().revision();
  out.more = r.more();
  out.count = r.count();
  out.kvs.reserve(static_cast<size_t>(r.kvs_size()));
  for (const auto& kv : r.kvs()) out.kvs.push_back(KeyValue::FromProto(kv));
  return out;
}

PutResult FromProto(const etcdserverpb::PutResponse& r) {
  PutResult out;
  out.revision = r.header().revision();
  if (r.has_prev_kv()) out.prev_kv = KeyValue::FromProto(r.prev_kv());
  return out;
}

DeleteResult FromProto(const etcdserverpb::DeleteRangeResponse& r) {
  DeleteResult out;
  out.revision = r.header().revision();
  out.deleted = r.deleted();
  for (const auto& kv : r.prev_kvs())
    out.prev_kvs.push_back(KeyValue::FromProto(kv));
  return out;
}

}  // namespace

absl::StatusOr<RangeResult> KV::Range(absl::string_view key,
                                      const RangeOptions& options) {
  Op op = Op::Get(key, options);
  if (!op.error().ok()) return op.error();
  const etcdserverpb::RangeRequest& req = op.proto().request_range();
  etcdserverpb::RangeResponse resp;
  absl::Status s =
      client_->Call("KV.Range", Client::CallKind::kRead, options.timeout,
                    [&](Client::Connection& c, grpc::ClientContext* ctx) {
                      return c.kv->Range(ctx, req, &resp);
                    });
  if (!s.ok()) return s;
  return FromProto(resp);
}

absl::StatusOr<std::optional<KeyValue>> KV::Get(absl::string_view key,
                                                absl::Duration timeout) {
  if (key.empty())
    return absl::InvalidArgumentError("etcd: Get of an empty key");
  RangeOptions options;
  options.timeout = timeout;
  auto r = Range(key, options);
  if (!r.ok()) return r.status();
  if (r->kvs.empty()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(std::move(r->kvs[0]));
}

absl::StatusOr<PutResult> KV::Put(absl::string_view key,
                                  absl::string_view value,
                                  const PutOptions& options) {
  Op op = Op::Put(key, value, options);
  if (!op.error().ok()) return op.error();
  const etcdserverpb::PutRequest& req = op.proto().request_put();
  etcdserverpb::PutResponse resp;
  absl::Status s =
      client_->Call("KV.Put", Client::CallKind::kMutation, options.timeout,
                    [&](Client::Connection& c, grpc::ClientContext* ctx) {
                      return c.kv->Put(ctx, req, &resp);
                    });
  if (!s.ok()) return s;
  return FromProto(resp);
}

absl::StatusOr<DeleteResult> KV::Delete(absl::string_view key,
                                        const DeleteOptions& options) {
  Op op = Op::Delete(key, options);
  if (!op.error().ok()) return op.error();
  const etcdserverpb::DeleteRangeRequest& req =
      op.proto().request_delete_range();
  etcdserverpb::DeleteRangeResponse resp;
  absl::Status s = client_->Call(
      "KV.DeleteRange", Client::CallKind::kMutation, options.timeout,
      [&](Client::Connection& c, grpc::ClientContext* ctx) {
        return c.kv->DeleteRange(ctx, req, &resp);
      });
  if (!s.ok()) return s;
  return FromProto(resp);
}

absl::StatusOr<TxnResult> KV::Commit(const Txn& txn, absl::Duration timeout) {
  if (absl::Status v = txn.Validate(); !v.ok()) return v;
  etcdserverpb::TxnResponse resp;
  // A txn that only reads is safe to send twice.
  bool read_only = true;
  for (const auto* branch : {&txn.proto().success(), &txn.proto().failure()}) {
    for (const auto& op : *branch) read_only &= op.has_request_range();
  }
  absl::Status s = client_->Call(
      "KV.Txn",
      read_only ? Client::CallKind::kRead : Client::CallKind::kMutation,
      timeout, [&](Client::Connection& c, grpc::ClientContext* ctx) {
        return c.kv->Txn(ctx, txn.proto(), &resp);
      });
  if (!s.ok()) return s;
  TxnResult out;
  out.succeeded = resp.succeeded();
  out.revision = resp.header().revision();
  for (const auto& r : resp.responses()) {
    OpResult op;
    if (r.has_response_range()) {
      op.kind = OpResult::Kind::kRange;
      op.range = FromProto(r.response_range());
    } else if (r.has_response_put()) {
      op.kind = OpResult::Kind::kPut;
      op.put = FromProto(r.response_put());
    } else if (r.has_response_delete_range()) {
      op.kind = OpResult::Kind::kDelete;
      op.del = FromProto(r.response_delete_range());
    } else if (r.has_response_txn()) {
      op.kind = OpResult::Kind::kTxn;
      op.txn_succeeded = r.response_txn().succeeded();
    }
    out.results.push_back(std::move(op));
  }
  return out;
}

absl::StatusOr<int64_t> KV::Compact(int64_t revision, bool physical,
                                    absl::Duration timeout) {
  if (revision <= 0)
    return absl::InvalidArgumentError("etcd: Compact needs a revision > 0");
  etcdserverpb::CompactionRequest req;
  req.set_revision(revision);
  req.set_physical(physical);
  etcdserverpb::CompactionResponse resp;
  absl::Status s =
      client_->Call("KV.Compact", Client::CallKind::kMutation, timeout,
                    [&](Client::Connection& c, grpc::ClientContext* ctx) {
                      return c.kv->Compact(ctx, req, &resp);
                    });
  if (!s.ok()) return s;
  return resp.header().revision();
}

}  // namespace mcl::etcd
