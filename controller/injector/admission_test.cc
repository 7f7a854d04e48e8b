#include "controller/injector/admission.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::injector {
namespace {

using ::testing::HasSubstr;

InjectorConfig Config() {
  auto c = ParseConfig(
      R"({"sidecar": {"name": "mcl-sidecar", "image": "mcl-sidecar:0.1.0", "args": []},
          "address": "127.0.0.1:7400"})",
      "test");
  EXPECT_TRUE(c.ok());
  return *c;
}

std::string ReviewOf(const std::string& kind, const std::string& op,
                     const std::string& pod) {
  return R"({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": ")" +
         kind + R"("},
    "operation": ")" +
         op + R"(", "namespace": "apps", "object": )" + pod + "}}";
}

TEST(Review, InjectsWithABase64JsonPatch) {
  AdmissionResult r = Review(
      ReviewOf(
          "Pod", "CREATE",
          R"({"metadata": {"generateName": "app-"}, "spec": {"containers": [{"name": "a"}]}})"),
      Config());
  ASSERT_EQ(r.http_status, 200) << r.body;
  EXPECT_EQ(r.outcome, Outcome::kInjected);
  EXPECT_EQ(r.pod, "apps/app-*");
  Json out = Json::parse(r.body);
  EXPECT_EQ(out.at("apiVersion").as_string(), "admission.k8s.io/v1");
  const Json& resp = out.at("response");
  EXPECT_EQ(resp.at("uid").as_string(), "u-1");
  EXPECT_TRUE(resp.at("allowed").as_bool());
  EXPECT_EQ(resp.at("patchType").as_string(), "JSONPatch");
  std::string patch;
  ASSERT_TRUE(absl::Base64Unescape(resp.at("patch").as_string(), &patch));
  Json ops = Json::parse(patch);
  ASSERT_TRUE(ops.is_array());
  EXPECT_EQ(ops.at(0).at("path").as_string(), "/spec/initContainers");
}

TEST(Review, RefusalCarriesTheMessage) {
  AdmissionResult r = Review(
      ReviewOf(
          "Pod", "CREATE",
          R"({"metadata": {"name": "p", "annotations": {"mcl.dev/lease-duration": "soon"}},
                   "spec": {"containers": [{"name": "a"}]}})"),
      Config());
  ASSERT_EQ(r.http_status, 200);
  EXPECT_EQ(r.outcome, Outcome::kDenied);
  const Json resp = Json::parse(r.body).at("response");
  EXPECT_FALSE(resp.at("allowed").as_bool());
  EXPECT_EQ(resp.at("status").at("code").as_integer(), 400);
  EXPECT_THAT(resp.at("status").at("message").as_string(),
              HasSubstr("mcl.dev/lease-duration=soon is not a lease duration"));
  EXPECT_FALSE(resp.has_field("patch"));
}

TEST(Review, OtherObjectsAndOperationsPassUnchanged) {
  for (auto [kind, op] :
       {std::pair{"Pod", "UPDATE"}, std::pair{"ConfigMap", "CREATE"}}) {
    AdmissionResult r =
        Review(ReviewOf(kind, op, R"({"spec": {"containers": []}})"), Config());
    ASSERT_EQ(r.http_status, 200);
    EXPECT_EQ(r.outcome, Outcome::kUnchanged);
    const Json resp = Json::parse(r.body).at("response");
    EXPECT_TRUE(resp.at("allowed").as_bool());
    EXPECT_FALSE(resp.has_field("patch"));
  }
}

TEST(Review, MalformedRequestsGet400WithAReason) {
  for (
      const std::string& body :
      {std::string("<html>"), std::string(R"({"kind": "AdmissionReview"})"),
       std::string(
           R"({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"})"),
       std::string(
           R"({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}})"),
       std::string(
           R"({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x"}})")}) {
    AdmissionResult r = Review(body, Config());
    EXPECT_EQ(r.http_status, 400) << body;
    EXPECT_EQ(r.outcome, Outcome::kBadRequest);
    EXPECT_FALSE(r.reason.empty());
  }
}

}  // namespace
}  // namespace mcl::injector
