#include "controller/session_tracker.h"

#include "gtest/gtest.h"

namespace mcl::controller {
namespace {

const absl::Duration T0 = absl::Seconds(100);
const absl::Duration kTtl = absl::Seconds(2);

absl::Duration Ms(int64_t n) { return absl::Milliseconds(n); }

TEST(SessionTrackerTest,
     ConfirmsOnlyWhatWasProcessedBeforeTheKeepaliveWasSent) {
  SessionTracker t;
  t.Started(1, kTtl, T0, kTtl);
  t.RecordProcessed(10, T0 + Ms(100));
  t.RecordProcessed(11, T0 + Ms(200));
  t.RecordProcessed(12, T0 + Ms(300));
  EXPECT_EQ(t.TakeHeartbeat(T0 + Ms(300))->confirmed_rv, "0")
      << "new session: published at once";
  // Keepalive sent at +250: rv 12 was processed after it was sent and is not
  // covered.
  t.OnRenewed(1, 2, T0 + Ms(250), T0 + Ms(400));
  EXPECT_EQ(t.View(T0 + Ms(400)).confirmed_rv, "11");
  auto hb = t.TakeHeartbeat(T0 + Ms(400));
  ASSERT_TRUE(hb.has_value());
  EXPECT_EQ(hb->session, 1);
  EXPECT_EQ(hb->confirmed_rv, "11");
  EXPECT_FALSE(t.TakeHeartbeat(T0 + Ms(401)).has_value()) << "published once";
  t.OnRenewed(1, 2, T0 + Ms(310), T0 + Ms(500));
  EXPECT_EQ(t.TakeHeartbeat(T0 + Ms(500))->confirmed_rv, "12");
}

TEST(SessionTrackerTest, ALateAnswerConfirmsNothingNewer) {
  SessionTracker t;
  t.Started(1, kTtl, T0, kTtl);
  t.RecordProcessed(10, T0 + Ms(100));
  t.OnRenewed(1, 2, T0 + Ms(50),
              T0 + Ms(900));  // sent before rv 10 was processed
  EXPECT_EQ(t.View(T0 + Ms(900)).confirmed_rv, "");
  // Only the session itself is published, confirming nothing.
  EXPECT_EQ(t.TakeHeartbeat(T0 + Ms(900))->confirmed_rv, "0");
  EXPECT_FALSE(t.TakeHeartbeat(T0 + Ms(901)).has_value());
}

TEST(SessionTrackerTest, LostWhenTheLeaseCouldHaveExpired) {
  SessionTracker t;
  t.Started(1, kTtl, T0, kTtl);
  t.OnRenewed(1, 2, T0 + Ms(500), T0 + Ms(510));
  const absl::Duration deadline =
      T0 + Ms(500) + kTtl * (1 - contract::kRho) - contract::kMargin;
  EXPECT_EQ(*t.LossDeadline(), deadline);
  EXPECT_TRUE(t.View(deadline - Ms(1)).alive);
  EXPECT_FALSE(t.View(deadline - Ms(1)).reachable)
      << "no answer for over 2/3 TTL";
  EXPECT_FALSE(t.View(deadline).alive);
  // An answer arriving after that does not revive it: sidecars have already
  // lapsed.
  t.OnRenewed(1, 2, T0 + Ms(1000), deadline + Ms(1));
  EXPECT_FALSE(t.View(deadline + Ms(2)).alive);
  EXPECT_FALSE(t.TakeHeartbeat(deadline + Ms(2)).has_value());
}

TEST(SessionTrackerTest, NextChangeByTimeIsWhenTheViewChangesWithoutEvents) {
  SessionTracker t;
  EXPECT_FALSE(t.NextChangeByTime(T0).has_value()) << "no session";
  t.Started(1, kTtl, T0, kTtl);
  t.OnRenewed(1, 2, T0 + Ms(500), T0 + Ms(510));
  const absl::Duration unreachable =
      T0 + Ms(510) + kTtl * 2 / 3 + contract::kMargin;
  const absl::Duration lost = *t.LossDeadline();
  ASSERT_LT(unreachable, lost);
  // Walk time forward only to the moments it names: the view must not change
  // between them, and must change at each.
  absl::Duration now = T0 + Ms(510);
  SessionView before = t.View(now);
  EXPECT_TRUE(before.reachable);
  ASSERT_EQ(t.NextChangeByTime(now), unreachable);
  EXPECT_TRUE(t.View(unreachable - Ms(1)).reachable);
  EXPECT_FALSE(t.View(unreachable).reachable);
  now = unreachable;
  ASSERT_EQ(t.NextChangeByTime(now), lost) << "next: the loss";
  EXPECT_TRUE(t.View(lost - Ms(1)).alive);
  EXPECT_FALSE(t.View(lost).alive);
  EXPECT_FALSE(t.NextChangeByTime(lost).has_value())
      << "lost: only a new session changes anything";
  // A failed KV call makes etcd unreachable until an event: only the loss is
  // left to wait for.
  SessionTracker u;
  u.Started(2, kTtl, T0, kTtl);
  u.OnCallResult(false, T0 + Ms(10));
  EXPECT_EQ(u.NextChangeByTime(T0 + Ms(10)), u.LossDeadline());
}

TEST(SessionTrackerTest, EtcdSayingGoneLosesAtOnce) {
  SessionTracker t;
  t.Started(1, kTtl, T0, kTtl);
  t.OnRenewed(1, 0, T0 + Ms(10), T0 + Ms(20));
  EXPECT_FALSE(t.View(T0 + Ms(20)).alive);
  SessionTracker u;
  u.Started(1, kTtl, T0, kTtl);
  u.OnLost(1);
  EXPECT_FALSE(u.View(T0).alive);
  u.Started(2, kTtl, T0 + Ms(5), kTtl);
  EXPECT_TRUE(u.View(T0 + Ms(5)).alive);
}

TEST(SessionTrackerTest, AnAdoptedLeaseCountsOnlyItsRemainingTtl) {
  SessionTracker t;
  t.Started(1, kTtl, T0, Ms(800));
  EXPECT_EQ(
      *t.LossDeadline(),
      T0 - (kTtl - Ms(800)) + kTtl * (1 - contract::kRho) - contract::kMargin);
}

TEST(SessionTrackerTest,
     FailedCallsMakeTheBackendUnreachableUntilTheNextAnswer) {
  SessionTracker t;
  t.Started(1, kTtl, T0, kTtl);
  EXPECT_TRUE(t.View(T0 + Ms(10)).reachable);
  t.OnCallResult(false, T0 + Ms(20));
  EXPECT_FALSE(t.View(T0 + Ms(20)).reachable);
  EXPECT_TRUE(t.View(T0 + Ms(20)).alive);
  t.OnRenewed(1, 2, T0 + Ms(30), T0 + Ms(40));
  EXPECT_TRUE(t.View(T0 + Ms(40)).reachable);
}

TEST(SessionTrackerTest, HeartbeatRepublishesAfterAFailedWrite) {
  SessionTracker t;
  t.Started(1, kTtl, T0, kTtl);
  t.RecordProcessed(5, T0);
  t.OnRenewed(1, 2, T0 + Ms(1), T0 + Ms(2));
  ASSERT_TRUE(t.TakeHeartbeat(T0 + Ms(2)).has_value());
  t.PublishFailed();
  EXPECT_TRUE(t.TakeHeartbeat(T0 + Ms(3)).has_value());
}

// design.md §Stand-down: while heartbeat writes fail, every retry and every
// status write carries the confirmation of the first failed write, so the
// newest S we tried to publish stops moving, and with it the moment from which
// no local candidate can count itself leader.
TEST(SessionTrackerTest, FailingHeartbeatsFreezeTheConfirmationAndItsDeadline) {
  SessionTracker t;
  t.Started(1, kTtl, T0, kTtl);
  EXPECT_EQ(t.ReleaseDeadline(), T0) << "nothing ever published";
  t.RecordProcessed(5, T0);
  t.OnRenewed(1, 2, T0 + Ms(1), T0 + Ms(2));
  auto hb = t.TakeHeartbeat(T0 + Ms(2));
  ASSERT_TRUE(hb.has_value());
  EXPECT_EQ(hb->confirmed_rv, "5");
  EXPECT_EQ(hb->sent_at, T0 + Ms(1));
  const absl::Duration lapse = contract::LapseAfterObservedRenewal(kTtl);
  EXPECT_EQ(t.ReleaseDeadline(), T0 + Ms(1) + lapse);
  t.PublishFailed();
  EXPECT_TRUE(t.View(T0 + Ms(3)).frozen);
  // Newer confirmations arrive; retries and statuses still carry rv 5.
  t.RecordProcessed(9, T0 + Ms(100));
  t.OnRenewed(1, 2, T0 + Ms(200), T0 + Ms(210));
  auto retry = t.TakeHeartbeat(T0 + Ms(300));
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(retry->confirmed_rv, "5");
  EXPECT_EQ(t.View(T0 + Ms(300)).confirmed_rv, "5");
  EXPECT_EQ(t.View(T0 + Ms(300)).confirmed_sent_at, T0 + Ms(1));
  EXPECT_EQ(t.ReleaseDeadline(), T0 + Ms(1) + lapse);
  // The apiserver answers again: the newest confirmation goes out.
  t.PublishSucceeded();
  EXPECT_EQ(t.View(T0 + Ms(310)).confirmed_rv, "9");
  hb = t.TakeHeartbeat(T0 + Ms(310));
  ASSERT_TRUE(hb.has_value());
  EXPECT_EQ(hb->confirmed_rv, "9");
  EXPECT_EQ(t.ReleaseDeadline(), T0 + Ms(200) + lapse);
  // A status write that carried a confirmation counts as an attempt too.
  t.NotePublishAttempt(T0 + Ms(250));
  EXPECT_EQ(t.ReleaseDeadline(), T0 + Ms(250) + lapse);
  t.NotePublishAttempt(T0 + Ms(5));
  EXPECT_EQ(t.ReleaseDeadline(), T0 + Ms(250) + lapse) << "never earlier";
}

// An adopted session may carry its previous owner's confirmations, all sent
// before we asked etcd about it.
TEST(SessionTrackerTest, AnAdoptedSessionCountsItsPredecessorsConfirmations) {
  SessionTracker t;
  t.Started(7, kTtl, T0, Ms(1500), /*adopted=*/true);
  EXPECT_EQ(t.ReleaseDeadline(),
            T0 + contract::LapseAfterObservedRenewal(kTtl));
}

TEST(SessionTrackerTest, ShutdownStopsConfirmations) {
  SessionTracker t;
  t.Started(1, kTtl, T0, kTtl);
  t.RecordProcessed(5, T0);
  ASSERT_TRUE(t.TakeHeartbeat(T0).has_value());
  t.SetShuttingDown();
  t.OnRenewed(1, 2, T0 + Ms(1), T0 + Ms(2));
  EXPECT_FALSE(t.TakeHeartbeat(T0 + Ms(3)).has_value());
  EXPECT_TRUE(t.View(T0 + Ms(3)).shutting_down);
}

TEST(SessionTrackerTest, SessionHexIsLowercaseWithoutPrefix) {
  EXPECT_EQ(SessionHex(0x694d8c4a1b2c3d4e), "694d8c4a1b2c3d4e");
}

}  // namespace
}  // namespace mcl::controller
