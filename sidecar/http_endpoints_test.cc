#include "sidecar/http_endpoints.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::sidecar {
namespace {

using ::testing::HasSubstr;

HttpSources Sources(absl::Status apiserver) {
  HttpSources s;
  s.metrics = [] {
    std::map<std::string, LockMetrics> m;
    m["default/a"] = LockMetrics{true, 3, 1, 2};
    m["team/b\"x"] = LockMetrics{false, 0, 0};
    return m;
  };
  s.apiserver = [apiserver] { return apiserver; };
  return s;
}

TEST(HttpEndpointsTest, MetricsPerLockAndApiserverReachability) {
  HttpReply r = ServeHttp("/metrics", Sources(absl::OkStatus()));
  EXPECT_EQ(r.code, 200);
  EXPECT_THAT(r.body, HasSubstr("mcl_sidecar_is_leader{lock=\"default/a\"} 1"));
  EXPECT_THAT(r.body,
              HasSubstr("mcl_sidecar_is_leader{lock=\"team/b\\\"x\"} 0"));
  EXPECT_THAT(
      r.body,
      HasSubstr("mcl_sidecar_leader_transitions_total{lock=\"default/a\"} 3"));
  EXPECT_THAT(
      r.body,
      HasSubstr("mcl_sidecar_renew_errors_total{lock=\"default/a\"} 1"));
  EXPECT_THAT(r.body, HasSubstr("mcl_sidecar_campaigns{lock=\"default/a\"} 2"));
  EXPECT_THAT(r.body,
              HasSubstr("mcl_sidecar_campaigns{lock=\"team/b\\\"x\"} 0"));
  EXPECT_THAT(r.body, HasSubstr("mcl_sidecar_apiserver_reachable 1\n"));
  r = ServeHttp("/metrics", Sources(absl::UnavailableError("refused")));
  EXPECT_THAT(r.body, HasSubstr("mcl_sidecar_apiserver_reachable 0\n"));
}

// Liveness never depends on the apiserver (issue 17); readiness reports it.
TEST(HttpEndpointsTest, HealthzStaysUpWhenTheApiserverIsDownReadyzDoesNot) {
  HttpSources down = Sources(absl::UnavailableError("connection refused"));
  EXPECT_EQ(ServeHttp("/healthz", down).code, 200);
  HttpReply ready = ServeHttp("/readyz", down);
  EXPECT_EQ(ready.code, 503);
  EXPECT_THAT(ready.body, HasSubstr("connection refused"));
  EXPECT_EQ(ServeHttp("/readyz", Sources(absl::OkStatus())).code, 200);
  HttpReply other = ServeHttp("/nope", down);
  EXPECT_EQ(other.code, 404);
  EXPECT_THAT(other.body, HasSubstr("/readyz"));
}

}  // namespace
}  // namespace mcl::sidecar
