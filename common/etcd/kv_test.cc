// KV and Txn against a real etcd: reads, writes, prefixes, deletes with
// prev_kv, the lock-key txn shapes, and create-if-absent under 20 concurrent
// contenders.
#include "common/etcd/kv.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/etcd/client.h"
#include "common/etcd/lease.h"
#include "common/etcd/testing/etcd_process.h"
#include "common/etcd/txn.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::etcd {
namespace {

using ::testing::HasSubstr;

class KVTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto e = testing::EtcdProcess::Start();
    ASSERT_TRUE(e.ok()) << e.status();
    etcd_ = e->release();
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(etcd_, nullptr);
    ClientConfig config;
    config.endpoints = {etcd_->address()};
    auto c = Client::Create(config);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
    kv_ = std::make_unique<KV>(client_.get());
    prefix_ = absl::StrCat(
        "/", ::testing::UnitTest::GetInstance()->current_test_info()->name(),
        "/");
  }

  static testing::EtcdProcess* etcd_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<KV> kv_;
  std::string prefix_;
};

testing::EtcdProcess* KVTest::etcd_ = nullptr;

TEST_F(KVTest, PutThenRangeReturnsValueAndRevisions) {
  auto put = kv_->Put(prefix_ + "a", "1");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_GT(put->revision, 0);
  auto got = kv_->Range(prefix_ + "a");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "1");
  EXPECT_EQ(got->kvs[0].create_revision, put->revision);
  EXPECT_EQ(got->kvs[0].mod_revision, put->revision);
  EXPECT_EQ(got->kvs[0].version, 1);
  EXPECT_GE(got->revision, put->revision);

  PutOptions prev;
  prev.prev_kv = true;
  auto put2 = kv_->Put(prefix_ + "a", "2", prev);
  ASSERT_TRUE(put2.ok()) << put2.status();
  ASSERT_TRUE(put2->prev_kv.has_value());
  EXPECT_EQ(put2->prev_kv->value, "1");
  auto one = kv_->Get(prefix_ + "a");
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_TRUE(one->has_value());
  EXPECT_EQ((*one)->value, "2");
  EXPECT_EQ((*one)->version, 2);
  auto none = kv_->Get(prefix_ + "missing");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
}

TEST_F(KVTest, PrefixRangeLimitAndHistoricalRevision) {
  int64_t first_rev = 0;
  for (int i = 0; i < 5; ++i) {
    auto put = kv_->Put(absl::StrCat(prefix_, "k", i), absl::StrCat("v", i));
    ASSERT_TRUE(put.ok()) << put.status();
    if (i == 0) first_rev = put->revision;
  }
  ASSERT_TRUE(kv_->Put(prefix_ + "k0", "changed").ok());
  ASSERT_TRUE(
      kv_->Put(prefix_ + "l", "outside? no, 'l' > 'k' but inside the prefix")
          .ok());

  RangeOptions all;
  all.prefix = true;
  auto r = kv_->Range(prefix_ + "k", all);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->kvs.size(), 5u);
  EXPECT_EQ(r->kvs[0].key, prefix_ + "k0");
  EXPECT_EQ(r->kvs[0].value, "changed");
  EXPECT_EQ(r->count, 5);

  RangeOptions limited = all;
  limited.limit = 2;
  auto l = kv_->Range(prefix_ + "k", limited);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->kvs.size(), 2u);
  EXPECT_TRUE(l->more);
  EXPECT_EQ(l->count, 5);

  RangeOptions old;
  old.revision = first_rev;
  auto h = kv_->Range(prefix_ + "k0", old);
  ASSERT_TRUE(h.ok()) << h.status();
  ASSERT_EQ(h->kvs.size(), 1u);
  EXPECT_EQ(h->kvs[0].value, "v0");

  RangeOptions explicit_range;
  explicit_range.range_end = prefix_ + "k3";
  auto e = kv_->Range(prefix_ + "k1", explicit_range);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->kvs.size(), 2u);  // k1, k2
}

TEST_F(KVTest, DeletePrefixReturnsPreviousValues) {
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(kv_->Put(absl::StrCat(prefix_, i), "x").ok());
  DeleteOptions d;
  d.prefix = true;
  d.prev_kv = true;
  auto del = kv_->Delete(prefix_, d);
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->deleted, 3);
  ASSERT_EQ(del->prev_kvs.size(), 3u);
  EXPECT_EQ(del->prev_kvs[0].value, "x");
  RangeOptions all;
  all.prefix = true;
  auto r = kv_->Range(prefix_, all);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->kvs.empty());
  EXPECT_GE(r->revision, del->revision);
}

TEST_F(KVTest, BadInputIsAClearErrorWithoutACall) {
  auto r = kv_->Range("");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("empty key"));
  EXPECT_EQ(kv_->Put("", "v").status().code(),
            absl::StatusCode::kInvalidArgument);
  DeleteOptions both;
  both.prefix = true;
  both.range_end = "z";
  EXPECT_EQ(kv_->Delete("a", both).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(kv_->Commit(PutIfOwned("k", 0, "v", 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(kv_->Commit(DeleteIfOwned("k", 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(kv_->Compact(0).status().code(),
            absl::StatusCode::kInvalidArgument);
  RangeOptions negative;
  negative.timeout = absl::Seconds(-1);
  EXPECT_EQ(kv_->Range("k", negative).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A request etcd itself rejects: the error names the method and the endpoint.
  RangeOptions future;
  future.revision = 1'000'000'000;
  auto f = kv_->Range("k", future);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(f.status().message()),
              HasSubstr(absl::StrCat("etcd KV.Range on ", etcd_->address())));
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("future revision"));
}

TEST_F(KVTest, LockKeyShapes) {
  Lease lease(client_.get());
  auto grant = lease.Grant(30);
  ASSERT_TRUE(grant.ok()) << grant.status();
  const std::string key = prefix_ + "lock";

  auto created = kv_->Commit(CreateIfAbsent(key, "cluster-a/pod-1", grant->id));
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_TRUE(created->succeeded);
  const int64_t token = created->revision;
  auto kv = kv_->Get(key);
  ASSERT_TRUE(kv.ok() && kv->has_value());
  EXPECT_EQ((*kv)->mod_revision, token) << "the token is the mod_revision";
  EXPECT_EQ((*kv)->lease, grant->id);

  // A second creator loses and learns the holder in the same round trip.
  auto again = kv_->Commit(CreateIfAbsent(key, "cluster-b/pod-9", 0));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->succeeded);
  ASSERT_EQ(again->results.size(), 1u);
  ASSERT_EQ(again->results[0].kind, OpResult::Kind::kRange);
  ASSERT_EQ(again->results[0].range.kvs.size(), 1u);
  EXPECT_EQ(again->results[0].range.kvs[0].value, "cluster-a/pod-1");

  // The owner re-points; the write is a new grant with a greater token. A
  // stale mod_revision or another lease changes nothing.
  auto repoint =
      kv_->Commit(PutIfOwned(key, token, "cluster-a/pod-2", grant->id));
  ASSERT_TRUE(repoint.ok()) << repoint.status();
  ASSERT_TRUE(repoint->succeeded);
  const int64_t token2 = repoint->revision;
  EXPECT_GT(token2, token);
  auto stale = kv_->Commit(PutIfOwned(key, token, "stolen", grant->id));
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(stale->succeeded) << "the first grant's token is stale now";
  ASSERT_EQ(stale->results.size(), 1u);
  ASSERT_EQ(stale->results[0].range.kvs.size(), 1u);
  EXPECT_EQ(stale->results[0].range.kvs[0].mod_revision, token2);
  auto wrong_lease =
      kv_->Commit(PutIfOwned(key, token2, "stolen", grant->id + 1));
  ASSERT_TRUE(wrong_lease.ok());
  EXPECT_FALSE(wrong_lease->succeeded);
  kv = kv_->Get(key);
  ASSERT_TRUE(kv.ok() && kv->has_value());
  EXPECT_EQ((*kv)->value, "cluster-a/pod-2");
  EXPECT_EQ((*kv)->mod_revision, token2);
  EXPECT_EQ((*kv)->lease, grant->id);

  // Delete-if-owned with a stale token removes nothing; with the current one
  // it releases; a newer incarnation is never removed by an old token.
  auto stale_del = kv_->Commit(DeleteIfOwned(key, token));
  ASSERT_TRUE(stale_del.ok());
  EXPECT_FALSE(stale_del->succeeded);
  auto del = kv_->Commit(DeleteIfOwned(key, token2, grant->id));
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_TRUE(del->succeeded);
  ASSERT_EQ(del->results.size(), 1u);
  EXPECT_EQ(del->results[0].del.deleted, 1);
  auto recreated = kv_->Commit(CreateIfAbsent(key, "cluster-b/pod-9", 0));
  ASSERT_TRUE(recreated.ok() && recreated->succeeded);
  EXPECT_GT(recreated->revision, token2);  // tokens strictly increase
  auto old_del = kv_->Commit(DeleteIfOwned(key, token2));
  ASSERT_TRUE(old_del.ok());
  EXPECT_FALSE(old_del->succeeded);
  kv = kv_->Get(key);
  ASSERT_TRUE(kv.ok() && kv->has_value());
  EXPECT_EQ((*kv)->value, "cluster-b/pod-9");
}

// A txn guarded by an epoch key applies only while that key is unchanged
// since the epoch's write; a failed one tells whether the guard failed.
// Nested txns release many keys in one request, each under its own compare.
TEST_F(KVTest, GuardedTxnsAndNestedReleases) {
  const std::string epoch_key = prefix_ + "_epoch/c0";
  auto e1 = kv_->Put(epoch_key, "replica-1");
  ASSERT_TRUE(e1.ok());
  const int64_t epoch = e1->revision;
  const std::string a = prefix_ + "a", b = prefix_ + "b";
  auto put_a = kv_->Commit(CreateIfAbsent(a, "x", 0).Guard(epoch_key, epoch));
  ASSERT_TRUE(put_a.ok()) << put_a.status();
  ASSERT_TRUE(put_a->succeeded);
  // The key's own compare fails, the guard held.
  auto again = kv_->Commit(CreateIfAbsent(a, "y", 0).Guard(epoch_key, epoch));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->succeeded);
  EXPECT_TRUE(GuardHeld(*again, epoch));
  ASSERT_EQ(again->results.size(), 2u) << "Else: the key, then the guard";
  EXPECT_EQ(again->results[0].range.kvs[0].value, "x");

  auto put_b = kv_->Commit(CreateIfAbsent(b, "x", 0).Guard(epoch_key, epoch));
  ASSERT_TRUE(put_b.ok() && put_b->succeeded);
  // Both released in one request.
  Txn release;
  release.Then(Op::Nested(DeleteIfOwned(a, put_a->revision)))
      .Then(Op::Nested(DeleteIfOwned(b, put_b->revision)))
      .Guard(epoch_key, epoch);
  auto released = kv_->Commit(release);
  ASSERT_TRUE(released.ok()) << released.status();
  ASSERT_TRUE(released->succeeded);
  ASSERT_EQ(released->results.size(), 2u);
  EXPECT_EQ(released->results[0].kind, OpResult::Kind::kTxn);
  EXPECT_TRUE(released->results[0].txn_succeeded);
  EXPECT_TRUE(released->results[1].txn_succeeded);
  EXPECT_FALSE(kv_->Get(a)->has_value());
  EXPECT_FALSE(kv_->Get(b)->has_value());

  // Another replica writes the epoch key: every txn of the old epoch fails
  // and says why.
  ASSERT_TRUE(kv_->Put(epoch_key, "replica-2").ok());
  auto stale = kv_->Commit(CreateIfAbsent(a, "z", 0).Guard(epoch_key, epoch));
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(stale->succeeded);
  EXPECT_FALSE(GuardHeld(*stale, epoch));
  EXPECT_FALSE(kv_->Get(a)->has_value());
  EXPECT_EQ(kv_->Commit(Txn().Guard(epoch_key, 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(KVTest, TxnBuilderComparesValuesAndVersions) {
  const std::string key = prefix_ + "k";
  ASSERT_TRUE(kv_->Put(key, "b").ok());
  Txn t;
  t.If(Value(key) == "b")
      .If(Version(key) == 1)
      .Then(Op::Put(key, "c"))
      .Else(Op::Get(key));
  auto r = kv_->Commit(t);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->succeeded);
  ASSERT_EQ(r->results.size(), 1u);
  EXPECT_EQ(r->results[0].kind, OpResult::Kind::kPut);
  Txn u;
  u.If(Value(key) < "c").Then(Op::Delete(key));  // "c" < "c" is false
  auto r2 = kv_->Commit(u);
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_FALSE(r2->succeeded);
  EXPECT_TRUE(r2->results.empty());
  Txn v;
  v.If(ModRevision(key) > 0).If(Value(key) != "x").Then(Op::Delete(key));
  auto r3 = kv_->Commit(v);
  ASSERT_TRUE(r3.ok()) << r3.status();
  EXPECT_TRUE(r3->succeeded);
  auto gone = kv_->Get(key);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
}

TEST_F(KVTest, CreateIfAbsentWinsExactlyOnceUnder20Contenders) {
  constexpr int kContenders = 20;
  constexpr int kRounds = 5;
  for (int round = 0; round < kRounds; ++round) {
    const std::string key = absl::StrCat(prefix_, "lock-", round);
    // Each contender has its own client (own connection), as separate
    // controllers would.
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < kContenders; ++i) {
      ClientConfig config;
      config.endpoints = {etcd_->address()};
      auto c = Client::Create(config);
      ASSERT_TRUE(c.ok()) << c.status();
      clients.push_back(std::move(*c));
    }
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<int> won(kContenders, -1);
    std::vector<std::string> errors(kContenders);
    std::vector<int64_t> tokens(kContenders, 0);
    std::vector<std::string> seen_holder(kContenders);
    std::vector<std::thread> threads;
    for (int i = 0; i < kContenders; ++i) {
      threads.emplace_back([&, i] {
        KV kv(clients[static_cast<size_t>(i)].get());
        ++ready;
        while (!go.load()) std::this_thread::yield();
        auto r =
            kv.Commit(CreateIfAbsent(key, absl::StrCat("contender-", i), 0));
        if (!r.ok()) {
          errors[static_cast<size_t>(i)] = r.status().ToString();
          return;
        }
        won[static_cast<size_t>(i)] = r->succeeded ? 1 : 0;
        tokens[static_cast<size_t>(i)] = r->revision;
        if (!r->succeeded && !r->results.empty() &&
            !r->results[0].range.kvs.empty()) {
          seen_holder[static_cast<size_t>(i)] =
              r->results[0].range.kvs[0].value;
        }
      });
    }
    while (ready.load() < kContenders) std::this_thread::yield();
    go = true;
    for (auto& t : threads) t.join();
    int winners = 0, winner = -1;
    for (int i = 0; i < kContenders; ++i) {
      ASSERT_TRUE(errors[static_cast<size_t>(i)].empty())
          << errors[static_cast<size_t>(i)];
      if (won[static_cast<size_t>(i)] == 1) {
        ++winners;
        winner = i;
      }
    }
    ASSERT_EQ(winners, 1) << "round " << round;
    const std::string holder = absl::StrCat("contender-", winner);
    for (int i = 0; i < kContenders; ++i) {
      if (i != winner) {
        EXPECT_EQ(seen_holder[static_cast<size_t>(i)], holder);
      }
    }
    auto kv = kv_->Get(key);
    ASSERT_TRUE(kv.ok() && kv->has_value());
    EXPECT_EQ((*kv)->value, holder);
    EXPECT_EQ((*kv)->create_revision, tokens[static_cast<size_t>(winner)]);
    EXPECT_EQ((*kv)->version, 1);
  }
}

TEST_F(KVTest, CompactMakesOldRevisionsUnreadable) {
  auto p1 = kv_->Put(prefix_ + "c", "1");
  ASSERT_TRUE(p1.ok());
  auto p2 = kv_->Put(prefix_ + "c", "2");
  ASSERT_TRUE(p2.ok());
  auto c = kv_->Compact(p2->revision);
  ASSERT_TRUE(c.ok()) << c.status();
  RangeOptions old;
  old.revision = p1->revision;
  auto r = kv_->Range(prefix_ + "c", old);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("compacted"));
}

}  // namespace
}  // namespace mcl::etcd
