#include "controller/cr_codec.h"

#include "controller/work_queue.h"
#include "gtest/gtest.h"

namespace mcl::controller {
namespace {

TEST(CrCodecTest, ReadsEveryFieldTheReconcilerUses) {
  auto j = kube::ParseJson(R"({
    "apiVersion":"mcl.dev/v1alpha1","kind":"MultiClusterLease",
    "metadata":{"name":"l","namespace":"ns","uid":"u","resourceVersion":"12","generation":3,
                "deletionTimestamp":"2026-01-01T00:00:00Z","finalizers":["x","mcl.dev/release"]},
    "spec":{"holderIdentity":"pod-a","leaseDurationSeconds":5,"renewTime":"2026-01-01T00:00:00.000001Z"},
    "status":{"leader":"pod-a","leaderCluster":"c","fencingToken":9,"transitions":2,"session":"ab",
              "heartbeat":"mcl-system/hb","sessionTTLMilliseconds":2000,
              "conditions":[{"type":"GlobalLockHeld","status":"True","reason":"Granted","message":"m",
                             "lastTransitionTime":"2026-01-01T00:00:00Z"}]}})",
                           "test");
  ASSERT_TRUE(j.ok()) << j.status();
  auto v = CrViewFromJson(*j);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->namespace_, "ns");
  EXPECT_EQ(v->generation, 3);
  EXPECT_TRUE(v->deleting);
  EXPECT_TRUE(v->has_finalizer);
  EXPECT_EQ(v->holder, std::optional<std::string>("pod-a"));
  EXPECT_EQ(v->lease_duration_seconds, 5);
  EXPECT_EQ(v->status.fencing_token, 9);
  EXPECT_EQ(v->status.session_ttl_ms, 2000);
  ASSERT_EQ(v->status.conditions.size(), 1u);
  EXPECT_EQ(v->status.conditions[0].reason, "Granted");
}

TEST(CrCodecTest, MissingSpecFieldsAreAbsentAndWrongTypesAreErrors) {
  auto j = kube::ParseJson(
      R"({"metadata":{"name":"l","namespace":"ns"},"spec":{}})", "t");
  auto v = CrViewFromJson(*j);
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->holder.has_value());
  EXPECT_EQ(v->lease_duration_seconds, 0);
  auto bad = kube::ParseJson(
      R"({"metadata":{"name":"l"},"spec":{"holderIdentity":5}})", "t");
  auto e = CrViewFromJson(*bad);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(std::string(e.status().message()).find("spec.holderIdentity"),
            std::string::npos);
}

TEST(CrCodecTest, StatusRoundTripsAndOmitsEmptyFields) {
  LockStatus s;
  s.leader = "a";
  s.fencing_token = 4;
  s.conditions.push_back({"CandidateLive", "True", "Renewing", "m", "t"});
  auto obj = kube::ParseJson(
      R"({"metadata":{"name":"l","namespace":"n","resourceVersion":"1"}})",
      "t");
  kube::Json out = WithStatus(*obj, s, "7");
  EXPECT_EQ(out.at("metadata").at("resourceVersion").as_string(), "7");
  EXPECT_FALSE(out.at("status").has_field("session"));
  auto back = CrViewFromJson(out);
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(StatusDiffers(back->status, s));
}

TEST(CrCodecTest, FinalizerIsAddedOnceAndRemovedAlone) {
  auto obj = kube::ParseJson(
      R"({"metadata":{"name":"l","finalizers":["other"]}})", "t");
  kube::Json added = WithFinalizer(WithFinalizer(*obj, "mcl.dev/release", true),
                                   "mcl.dev/release", true);
  EXPECT_EQ(added.at("metadata").at("finalizers").size(), 2u);
  kube::Json removed = WithFinalizer(added, "mcl.dev/release", false);
  ASSERT_EQ(removed.at("metadata").at("finalizers").size(), 1u);
  EXPECT_EQ(removed.at("metadata").at("finalizers").at(0).as_string(), "other");
  EXPECT_FALSE(WithFinalizer(removed, "other", false)
                   .at("metadata")
                   .has_field("finalizers"));
}

TEST(WorkQueueTest, DeduplicatesAndHandsAKeyToOneWorkerAtATime) {
  FakeClock clock;
  WorkQueue q(&clock);
  q.Add("a");
  q.Add("a");
  q.Add("b");
  EXPECT_EQ(q.Len(), 2u);
  std::string k;
  ASSERT_TRUE(q.Get(&k));
  EXPECT_EQ(k, "a");
  q.Add("a");  // while processing: not handed out again until Done
  ASSERT_TRUE(q.Get(&k));
  EXPECT_EQ(k, "b");
  EXPECT_EQ(q.Len(), 0u);
  q.Done("a");
  EXPECT_EQ(q.Len(), 1u);
  q.Done("b");
}

TEST(WorkQueueTest, DelayedAddsKeepTheEarliestDeadline) {
  FakeClock clock;
  WorkQueue q(&clock);
  q.AddAt("a", clock.Monotonic() + absl::Seconds(5));
  q.AddAt("a", clock.Monotonic() + absl::Seconds(1));
  q.AddAt("a", clock.Monotonic() + absl::Seconds(3));
  clock.Advance(absl::Seconds(1));
  std::string k;
  ASSERT_TRUE(q.Get(&k));
  EXPECT_EQ(k, "a");
  q.Done("a");
  EXPECT_EQ(q.Len(), 0u);
  q.ShutDown();
  EXPECT_FALSE(q.Get(&k));
}

TEST(RvNumberTest, ParsesIntegersOnly) {
  EXPECT_EQ(RvNumber("123"), 123);
  EXPECT_EQ(RvNumber(""), -1);
  EXPECT_EQ(RvNumber("abc"), -1);
}

}  // namespace
}  // namespace mcl::controller
