// Foundation: the official etcd v3 protos (Debian's golang-etcd-server-dev,
// compiled by cc_grpc_library) talk to a real etcd. Raw gRPC stubs only, no mcl
// client: Put, Range, Txn.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/etcd/testing/etcd_process.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace {

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(10));
  return ctx;
}

TEST(EtcdApiTest, RawPutRangeTxnAgainstRealEtcd) {
  auto etcd = mcl::etcd::testing::EtcdProcess::Start();
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  auto channel = grpc::CreateChannel((*etcd)->address(),
                                     grpc::InsecureChannelCredentials());
  auto kv = etcdserverpb::KV::NewStub(channel);

  etcdserverpb::PutRequest put;
  put.set_key("/foundation/a");
  put.set_value("1");
  etcdserverpb::PutResponse put_resp;
  grpc::Status s = kv->Put(Ctx().get(), put, &put_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const int64_t rev = put_resp.header().revision();
  EXPECT_GT(rev, 0);

  etcdserverpb::RangeRequest range;
  range.set_key("/foundation/a");
  etcdserverpb::RangeResponse range_resp;
  s = kv->Range(Ctx().get(), range, &range_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(range_resp.kvs_size(), 1);
  EXPECT_EQ(range_resp.kvs(0).value(), "1");
  EXPECT_EQ(range_resp.kvs(0).create_revision(), rev);

  // Create-if-absent: the key exists, so the compare fails and the else branch
  // (a Range) runs.
  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key("/foundation/a");
  cmp->set_target(etcdserverpb::Compare::CREATE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_create_revision(0);
  auto* then_put = txn.add_success()->mutable_request_put();
  then_put->set_key("/foundation/a");
  then_put->set_value("2");
  txn.add_failure()->mutable_request_range()->set_key("/foundation/a");
  etcdserverpb::TxnResponse txn_resp;
  s = kv->Txn(Ctx().get(), txn, &txn_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(txn_resp.succeeded());
  ASSERT_EQ(txn_resp.responses_size(), 1);
  ASSERT_TRUE(txn_resp.responses(0).has_response_range());
  EXPECT_EQ(txn_resp.responses(0).response_range().kvs(0).value(), "1");

  // On a fresh key the same shape succeeds and the revision moves on.
  txn.mutable_compare(0)->set_key("/foundation/b");
  txn.mutable_success(0)->mutable_request_put()->set_key("/foundation/b");
  s = kv->Txn(Ctx().get(), txn, &txn_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(txn_resp.succeeded());
  EXPECT_EQ(txn_resp.header().revision(), rev + 1);
}

}  // namespace
