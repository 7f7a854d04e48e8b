#include "common/contract.h"

#include "gtest/gtest.h"

namespace mcl::contract {
namespace {

TEST(ContractTest, HeartbeatNamesRoundTrip) {
  EXPECT_EQ(HeartbeatLeaseName("east"), "mcl-heartbeat-east");
  EXPECT_EQ(ClusterFromHeartbeat("mcl-system/mcl-heartbeat-east"), "east");
  EXPECT_EQ(ClusterFromHeartbeat("mcl-heartbeat-east"), "east");
  EXPECT_EQ(ClusterFromHeartbeat("mcl-system/mcl-heartbeat-"), "");
  EXPECT_EQ(ClusterFromHeartbeat("mcl-system/something-else"), "");
  EXPECT_EQ(ElectionLeaseName("east"), "mcl-controller-east");
}

TEST(ContractTest, EtcdKeysRoundTrip) {
  const std::string k = EtcdKey(kDefaultKeyPrefix, "team-a", "my-lock");
  EXPECT_EQ(k, "/mcl/locks/team-a/my-lock");
  EXPECT_EQ(LockKeyOfEtcdKey(kDefaultKeyPrefix, k), "team-a/my-lock");
  EXPECT_EQ(LockKeyOfEtcdKey(kDefaultKeyPrefix, "/mcl/locks/only-one"), "");
  EXPECT_EQ(LockKeyOfEtcdKey(kDefaultKeyPrefix, "/mcl/locks/a/b/c"), "");
  EXPECT_EQ(LockKeyOfEtcdKey(kDefaultKeyPrefix, "/mcl/locks//b"), "");
  EXPECT_EQ(LockKeyOfEtcdKey(kDefaultKeyPrefix, "/other/a/b"), "");
  // The replica-epoch key is under the prefix but never a lock key.
  const std::string e = ReplicaEpochKey(kDefaultKeyPrefix, "east");
  EXPECT_EQ(e, "/mcl/locks/_epoch/east");
  EXPECT_EQ(LockKeyOfEtcdKey(kDefaultKeyPrefix, e), "");
  EXPECT_EQ(ClusterOfReplicaEpochKey(kDefaultKeyPrefix, e), "east");
  EXPECT_EQ(ClusterOfReplicaEpochKey(kDefaultKeyPrefix, k), "");
  EXPECT_EQ(ClusterOfReplicaEpochKey(kDefaultKeyPrefix, "/mcl/locks/_epoch/"),
            "");
}

TEST(ContractTest, KeyValueRoundTripsAndRejectsForeignValues) {
  KeyValue v{"east", "pod-1_uid", "694d7d1a2b3c4d5e", "2026-12-03T07:00:00Z",
             ""};
  auto back = ParseKeyValue(EncodeKeyValue(v));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->cluster, "east");
  EXPECT_EQ(back->holder, "pod-1_uid");
  EXPECT_EQ(back->session, "694d7d1a2b3c4d5e");
  EXPECT_EQ(back->acquire_time, "2026-12-03T07:00:00Z");
  EXPECT_EQ(back->instance, "");
  EXPECT_EQ(EncodeKeyValue(v).find("instance"), std::string::npos)
      << "no instance, no field: values stay readable by older controllers";
  v.instance = "9f3a";
  back = ParseKeyValue(EncodeKeyValue(v));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->instance, "9f3a");
  EXPECT_FALSE(ParseKeyValue(R"({"cluster":"a","holder":"b","instance":1})")
                   .has_value());
  EXPECT_FALSE(ParseKeyValue("").has_value());
  EXPECT_FALSE(ParseKeyValue("not json").has_value());
  EXPECT_FALSE(ParseKeyValue("[1,2]").has_value());
  EXPECT_FALSE(ParseKeyValue(R"({"cluster":"","holder":"x"})").has_value());
  EXPECT_FALSE(ParseKeyValue(R"({"cluster":"a","holder":7})").has_value());
  EXPECT_FALSE(ParseKeyValue(std::string(100000, '[')).has_value());
}

TEST(ContractTest, SessionTtlRange) {
  EXPECT_TRUE(CheckSessionTtl(kMinSessionTtl).ok());
  EXPECT_TRUE(CheckSessionTtl(absl::Seconds(10)).ok());
  EXPECT_TRUE(CheckSessionTtl(kMaxSessionTtl).ok());
  EXPECT_FALSE(CheckSessionTtl(kMinSessionTtl - absl::Milliseconds(1)).ok());
  EXPECT_FALSE(CheckSessionTtl(absl::ZeroDuration()).ok());
  absl::Status s = CheckSessionTtl(kMaxSessionTtl + absl::Milliseconds(1));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(s.message().find("1s..1h"), absl::string_view::npos) << s;
}

TEST(ContractTest, TimingBoundsMirrorEachOther) {
  // A sidecar's validity after a confirmed write is shorter than the
  // controller's wait after observing it, for any TTL: the gap is 2·rho·TTL +
  // 2·m.
  for (absl::Duration ttl : {absl::Seconds(1), absl::Seconds(2),
                             absl::Seconds(10), absl::Seconds(60)}) {
    EXPECT_LT(ValidityAfterConfirmedWrite(ttl), LapseAfterObservedRenewal(ttl));
    EXPECT_EQ(LapseAfterObservedRenewal(ttl) - ValidityAfterConfirmedWrite(ttl),
              ttl * 2 * kRho + 2 * kMargin);
  }
}

}  // namespace
}  // namespace mcl::contract
