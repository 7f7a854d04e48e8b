// ApiserverHealth on a FakeClock: an answer of any kind (even a 409) is an
// answer; a failure or a call left outstanding makes the apiserver
// unreachable only after `grace` without any answer.
#include "controller/apiserver_health.h"

#include "common/kube/errors.h"
#include "gtest/gtest.h"

namespace mcl::controller {
namespace {

constexpr absl::Duration kGrace = absl::Milliseconds(700);

TEST(ApiserverHealthTest, AFailureCountsOnlyAfterTheGraceWithoutAnswers) {
  FakeClock clock;
  int changes = 0;
  ApiserverHealth h(&clock, kGrace, [&] { changes++; });
  EXPECT_FALSE(h.UnreachableAt().has_value());
  {
    ApiserverHealth::Call c(&h);
    c.Done(absl::UnavailableError("connection refused"));
  }
  const absl::Duration failed_at = clock.Monotonic();
  EXPECT_GE(changes, 1);
  ASSERT_TRUE(h.UnreachableAt().has_value());
  EXPECT_EQ(*h.UnreachableAt(), failed_at + kGrace);
  clock.Advance(kGrace - absl::Milliseconds(1));
  EXPECT_FALSE(h.Unreachable(clock.Monotonic()));
  clock.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(h.Unreachable(clock.Monotonic()));
  // A conflict is an answer: reachable again.
  {
    ApiserverHealth::Call c(&h);
    c.Done(kube::WithKubeDetails(absl::AbortedError("stale"), "Conflict", 409));
  }
  EXPECT_FALSE(h.Unreachable(clock.Monotonic()));
  EXPECT_FALSE(h.UnreachableAt().has_value());
  // A 5xx is not.
  {
    ApiserverHealth::Call c(&h);
    c.Done(kube::WithKubeDetails(absl::InternalError("etcd"), "", 503));
  }
  clock.Advance(kGrace);
  EXPECT_TRUE(h.Unreachable(clock.Monotonic()));
}

// A stopping apiserver or a path that holds bytes: the call hangs. It counts
// once it has been outstanding for the grace, before its own timeout.
TEST(ApiserverHealthTest, ACallLeftOutstandingCountsAfterTheGrace) {
  FakeClock clock;
  ApiserverHealth h(&clock, kGrace);
  clock.Advance(absl::Seconds(5));  // the last answer was long ago
  ApiserverHealth::Call hanging(&h);
  ASSERT_TRUE(h.UnreachableAt().has_value());
  EXPECT_EQ(*h.UnreachableAt(), clock.Monotonic() + kGrace);
  clock.Advance(kGrace / 2);
  {
    ApiserverHealth::Call ok(&h);
    ok.Done(absl::OkStatus());  // another call answered meanwhile
  }
  clock.Advance(kGrace / 2);
  EXPECT_FALSE(h.Unreachable(clock.Monotonic())) << "an answer came since";
  clock.Advance(kGrace / 2);
  EXPECT_TRUE(h.Unreachable(clock.Monotonic()));
  hanging.Done(absl::DeadlineExceededError("no answer"));
  EXPECT_TRUE(h.Unreachable(clock.Monotonic()));
}

}  // namespace
}  // namespace mcl::controller
