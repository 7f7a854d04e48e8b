// The decoders refuse a confirmation whose session TTL no controller could
// have been configured with: the sidecar counts leadership for about one TTL
// from each confirmation, so a corrupt or forged one must not extend it
// without bound (findings.md, the kube_view fuzzer's reproducer).
#include "sidecar/kube_view.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/contract.h"
#include "common/kube/json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::sidecar {
namespace {

using ::testing::HasSubstr;

kube::Lease HeartbeatWithTtl(const std::string& ttl_ms) {
  std::string json = absl::StrCat(
      R"({"kind":"Lease","apiVersion":"coordination.k8s.io/v1",)",
      R"("metadata":{"name":"mcl-heartbeat-c0","namespace":"mcl-system",)",
      R"("annotations":{"mcl.dev/session":"694d",)",
      R"("mcl.dev/confirmed-resource-version":"5",)",
      R"("mcl.dev/session-ttl-ms":")", ttl_ms, R"("}},"spec":{}})");
  auto j = kube::ParseJson(json, "test heartbeat");
  EXPECT_TRUE(j.ok()) << j.status();
  auto lease = kube::Lease::FromJson(*j);
  EXPECT_TRUE(lease.ok()) << lease.status();
  return *lease;
}

TEST(ToConfirmationTest, AcceptsATtlAControllerCanHave) {
  auto c = ToConfirmation(HeartbeatWithTtl("10000"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ((*c)->session, "694d");
  EXPECT_EQ((*c)->confirmed_rv, 5);
  EXPECT_EQ((*c)->ttl, absl::Seconds(10));
  EXPECT_TRUE(
      ToConfirmation(HeartbeatWithTtl(absl::StrCat(
                         absl::ToInt64Milliseconds(contract::kMaxSessionTtl))))
          .ok());
}

// The fuzzer's reproducer: 2^63-1 ms, about 292 million years of validity.
TEST(ToConfirmationTest, RefusesTheForgedHeartbeat) {
  auto c = ToConfirmation(HeartbeatWithTtl("9223372036854775807"));
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(c.status())) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr("mcl.dev/session-ttl-ms"));
  EXPECT_THAT(c.status().message(), HasSubstr("1s..1h"));
}

TEST(ToConfirmationTest, RefusesEveryTtlOutsideTheRange) {
  const std::string just_over =
      absl::StrCat(absl::ToInt64Milliseconds(contract::kMaxSessionTtl) + 1);
  for (const std::string& ttl :
       {just_over, std::string("999"), std::string("0"), std::string("-5")}) {
    EXPECT_FALSE(ToConfirmation(HeartbeatWithTtl(ttl)).ok()) << ttl;
  }
  auto c = ToConfirmation(HeartbeatWithTtl("ten seconds"));
  EXPECT_THAT(c.status().message(), HasSubstr("not an integer")) << c.status();
}

TEST(ToLeaseViewTest, AStatusTtlOutOfRangeConfirmsNothing) {
  kube::MultiClusterLease obj;
  obj.metadata.name = "lock";
  obj.metadata.namespace_ = "default";
  obj.metadata.resource_version = "12";
  obj.status.session = "694d";
  obj.status.confirmed_resource_version = "11";
  obj.status.session_ttl_milliseconds = int64_t{1} << 62;
  auto v = ToLeaseView(obj);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->session_ttl_ms, 0);
  EXPECT_THAT(v->refused_confirmation, HasSubstr("sessionTTLMilliseconds"));
  // The rest of the version still counts.
  EXPECT_EQ(v->resource_version, 12);
  EXPECT_EQ(v->confirmed_rv, 11);

  obj.status.session_ttl_milliseconds = 2000;
  v = ToLeaseView(obj);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->session_ttl_ms, 2000);
  EXPECT_EQ(v->refused_confirmation, "");
}

}  // namespace
}  // namespace mcl::sidecar
