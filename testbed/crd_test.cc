// The MultiClusterLease CRD on a real kube-apiserver: accepted, validates what
// it promises, keeps status behind /status, and the sidecar identity's RBAC
// stops at spec.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testbed/cc/testbed.h"

namespace mcl::testbed {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::string Lease(const std::string& name, const std::string& spec) {
  return absl::StrCat(
      "apiVersion: mcl.dev/v1alpha1\nkind: MultiClusterLease\nmetadata:\n  "
      "name: ",
      name, "\n  namespace: default\nspec:\n", spec);
}

const char kValidSpec[] =
    "  holderIdentity: pod-a_1234\n  leaseDurationSeconds: 15\n"
    "  renewTime: \"2026-11-23T01:00:00.123456Z\"\n";

class CrdTest : public ::testing::Test {
 protected:
  Testbed& tb_ = SharedTestbed(2);
};

TEST_F(CrdTest, EstablishedInEveryClusterWithShortNameAndPrinterColumns) {
  for (int i = 0; i < tb_.clusters(); ++i) {
    auto out = tb_.Kubectl(
        i,
        {"get", "crd", "multiclusterleases.mcl.dev", "-o",
         "jsonpath={.status.conditions[?(@.type==\"Established\")].status}"});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(*out, "True");
  }
  std::string name = UniqueName("columns");
  ASSERT_TRUE(
      tb_.Kubectl(0, {"apply", "-f", "-"}, Lease(name, kValidSpec)).ok());
  auto table = tb_.Kubectl(0, {"get", "mcl", name});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_THAT(*table,
              AllOf(HasSubstr("LEADER"), HasSubstr("CLUSTER"),
                    HasSubstr("TOKEN"), HasSubstr("AGE"), HasSubstr(name)));
}

TEST_F(CrdTest, ValidObjectIsCreatedAsWritten) {
  std::string name = UniqueName("valid");
  ASSERT_TRUE(
      tb_.Kubectl(1, {"create", "-f", "-"}, Lease(name, kValidSpec)).ok());
  auto holder = tb_.Kubectl(1, {"get", "mcl", name, "-o",
                                "jsonpath={.spec.holderIdentity} "
                                "{.spec.leaseDurationSeconds} "
                                "{.spec.renewTime}"});
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(*holder, "pod-a_1234 15 2026-11-23T01:00:00.123456Z");
}

TEST_F(CrdTest, AbsentHolderIsAllowedForAResignedCandidacy) {
  std::string name = UniqueName("resigned");
  EXPECT_TRUE(tb_.Kubectl(0, {"create", "-f", "-"},
                          Lease(name, "  leaseDurationSeconds: 15\n"))
                  .ok());
}

struct InvalidCase {
  std::string label;
  std::string spec;
  std::string expected_message;
};

class CrdRejectsTest : public CrdTest,
                       public ::testing::WithParamInterface<InvalidCase> {};

TEST_P(CrdRejectsTest, RejectedWithAClearMessage) {
  std::string name = UniqueName("invalid");
  auto out =
      tb_.Kubectl(0, {"create", "-f", "-"}, Lease(name, GetParam().spec));
  ASSERT_FALSE(out.ok()) << "the apiserver accepted " << GetParam().label;
  EXPECT_THAT(std::string(out.status().message()),
              HasSubstr(GetParam().expected_message));
  EXPECT_FALSE(tb_.Kubectl(0, {"get", "mcl", name}).ok())
      << "object exists after rejection";
}

INSTANTIATE_TEST_SUITE_P(
    InvalidSpecs, CrdRejectsTest,
    ::testing::Values(
        InvalidCase{"negative leaseDurationSeconds",
                    "  holderIdentity: a\n  leaseDurationSeconds: -5\n",
                    "spec.leaseDurationSeconds: Invalid value: -5"},
        InvalidCase{"zero leaseDurationSeconds",
                    "  holderIdentity: a\n  leaseDurationSeconds: 0\n",
                    "should be greater than or equal to 2"},
        InvalidCase{"absurd leaseDurationSeconds",
                    "  holderIdentity: a\n  leaseDurationSeconds: 100000\n",
                    "should be less than or equal to 3600"},
        InvalidCase{
            "empty holderIdentity",
            "  holderIdentity: \"\"\n  leaseDurationSeconds: 5\n",
            "spec.holderIdentity in body should be at least 1 chars long"},
        InvalidCase{
            "holderIdentity with spaces",
            "  holderIdentity: \"two words\"\n  leaseDurationSeconds: 5\n",
            "spec.holderIdentity in body should match"},
        InvalidCase{
            "string where an integer belongs",
            "  holderIdentity: a\n  leaseDurationSeconds: \"fifteen\"\n",
            "spec.leaseDurationSeconds"},
        InvalidCase{"integer where a string belongs", "  holderIdentity: 12\n",
                    "spec.holderIdentity"},
        InvalidCase{"renewTime that is no time",
                    "  holderIdentity: a\n  renewTime: yesterday\n",
                    "spec.renewTime"},
        InvalidCase{"unknown field",
                    "  holderIdentity: a\n  leaderPlease: true\n",
                    "unknown field \"spec.leaderPlease\""}),
    [](const ::testing::TestParamInfo<InvalidCase>& info) {
      std::string n = absl::StrReplaceAll(info.param.label, {{" ", "_"}});
      return n;
    });

TEST_F(CrdTest, StatusWrittenThroughTheMainResourceIsIgnored) {
  std::string name = UniqueName("status-main");
  std::string with_status = Lease(name, kValidSpec) +
                            "status:\n  leader: intruder\n  fencingToken: 99\n";
  ASSERT_TRUE(tb_.Kubectl(0, {"create", "-f", "-"}, with_status).ok());
  auto leader =
      tb_.Kubectl(0, {"get", "mcl", name, "-o", "jsonpath={.status.leader}"});
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(*leader, "");
  // An update of the main resource carrying status is accepted for spec and
  // drops status.
  ASSERT_TRUE(
      tb_.Kubectl(
             0,
             {"patch", "mcl", name, "--type=merge", "-p",
              R"({"spec":{"holderIdentity":"pod-b"},"status":{"leader":"x"}})"})
          .ok());
  auto both =
      tb_.Kubectl(0, {"get", "mcl", name, "-o",
                      "jsonpath={.spec.holderIdentity}/{.status.leader}"});
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(*both, "pod-b/");
}

TEST_F(CrdTest, SidecarIdentityWritesSpecButIsForbiddenStatus) {
  std::string name = UniqueName("rbac");
  ASSERT_TRUE(tb_.Kubectl(0, {"create", "-f", "-"}, Lease(name, kValidSpec),
                          Identity::kSidecar)
                  .ok());
  EXPECT_TRUE(
      tb_.Kubectl(0,
                  {"patch", "mcl", name, "--type=merge", "-p",
                   R"({"spec":{"renewTime":"2026-11-23T01:00:05.000000Z"}})"},
                  "", Identity::kSidecar)
          .ok());
  auto status_write =
      tb_.Kubectl(0,
                  {"patch", "mcl", name, "--subresource=status", "--type=merge",
                   "-p", R"({"status":{"leader":"me"}})"},
                  "", Identity::kSidecar);
  ASSERT_FALSE(status_write.ok());
  EXPECT_THAT(
      std::string(status_write.status().message()),
      AllOf(HasSubstr("Forbidden"), HasSubstr("multiclusterleases/status")));
  // The controller identity may.
  auto controller_write = tb_.Kubectl(
      0,
      {"patch", "mcl", name, "--subresource=status", "--type=merge", "-p",
       R"({"status":{"leader":"pod-a_1234","leaderCluster":"cluster-0","fencingToken":7}})"},
      "", Identity::kController);
  ASSERT_TRUE(controller_write.ok()) << controller_write.status();
  auto token = tb_.Kubectl(
      0, {"get", "mcl", name, "-o", "jsonpath={.status.fencingToken}"});
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(*token, "7");
}

TEST_F(CrdTest, ControllerIdentityCannotDeleteOrCreateLeases) {
  std::string name = UniqueName("ctl-create");
  auto out = tb_.Kubectl(0, {"create", "-f", "-"}, Lease(name, kValidSpec),
                         Identity::kController);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("Forbidden"));
}

}  // namespace
}  // namespace mcl::testbed
