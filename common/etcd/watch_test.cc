// Watch against a real etcd: ordered events with prev_kv, replay from a start
// revision, resume after etcd restarts (graceful and SIGKILL) with no event
// lost or duplicated, a compacted start revision reported (never hidden),
// progress notifications, and a prompt Stop().
#include "common/etcd/watch.h"

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/etcd/client.h"
#include "common/etcd/kv.h"
#include "common/etcd/testing/etcd_process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testbed/faultproxy/faultproxy.h"

namespace mcl::etcd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Records everything a watch reports; tests wait on it.
class Collector {
 public:
  WatchCallbacks Callbacks() {
    WatchCallbacks cb;
    cb.on_created = [this](int64_t) {
      absl::MutexLock l(&mu_);
      ++created_;
    };
    cb.on_events = [this](const std::vector<Event>& events, int64_t) {
      absl::MutexLock l(&mu_);
      for (const Event& e : events) events_.push_back(e);
      ++batches_;
    };
    cb.on_progress = [this](int64_t rev) {
      absl::MutexLock l(&mu_);
      progress_.push_back(rev);
    };
    cb.on_disconnected = [this](const absl::Status& why) {
      absl::MutexLock l(&mu_);
      disconnects_.push_back(why);
    };
    cb.on_compacted = [this](int64_t rev) {
      absl::MutexLock l(&mu_);
      compacted_ = rev;
    };
    cb.on_done = [this](const absl::Status& why) {
      absl::MutexLock l(&mu_);
      done_.push_back(why);
    };
    return cb;
  }
  bool Wait(const std::function<bool()>& pred, absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    auto cond = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pred(); };
    return mu_.AwaitWithTimeout(absl::Condition(&cond), timeout);
  }
  bool WaitEvents(size_t n, absl::Duration timeout = absl::Seconds(20)) {
    return Wait(
        [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return events_.size() >= n; },
        timeout);
  }
  bool WaitCreated(int n, absl::Duration timeout = absl::Seconds(20)) {
    return Wait([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return created_ >= n; },
                timeout);
  }
  std::vector<Event> events() {
    absl::MutexLock l(&mu_);
    return events_;
  }
  std::vector<std::string> Keys() {
    std::vector<std::string> keys;
    for (const Event& e : events()) keys.push_back(e.kv.key);
    return keys;
  }
  int created() {
    absl::MutexLock l(&mu_);
    return created_;
  }
  std::vector<int64_t> progress() {
    absl::MutexLock l(&mu_);
    return progress_;
  }
  std::vector<absl::Status> disconnects() {
    absl::MutexLock l(&mu_);
    return disconnects_;
  }
  int64_t compacted() {
    absl::MutexLock l(&mu_);
    return compacted_;
  }
  std::vector<absl::Status> done() {
    absl::MutexLock l(&mu_);
    return done_;
  }

  absl::Mutex mu_;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
  int batches_ ABSL_GUARDED_BY(mu_) = 0;
  int created_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int64_t> progress_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> disconnects_ ABSL_GUARDED_BY(mu_);
  int64_t compacted_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<absl::Status> done_ ABSL_GUARDED_BY(mu_);
};

class WatchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::EtcdProcessOptions o;
    o.extra_flags = {"--experimental-watch-progress-notify-interval=500ms"};
    auto e = testing::EtcdProcess::Start(o);
    ASSERT_TRUE(e.ok()) << e.status();
    etcd_ = e->release();
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(etcd_, nullptr);
    if (!etcd_->running()) {
      ASSERT_TRUE(etcd_->Restart().ok());
    }
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
  std::unique_ptr<Watch> StartWatch(Collector* c, int64_t start_revision = 0,
                                    bool prev_kv = false) {
    WatchOptions o;
    o.key = prefix_;
    o.prefix = true;
    o.start_revision = start_revision;
    o.prev_kv = prev_kv;
    auto w = Watch::Start(client_.get(), o, c->Callbacks());
    EXPECT_TRUE(w.ok()) << w.status();
    return w.ok() ? std::move(*w) : nullptr;
  }
  // Puts with retries: right after a restart the first call may find the
  // channel reconnecting.
  int64_t PutEventually(const std::string& key, const std::string& value) {
    absl::StatusOr<PutResult> r;
    for (int i = 0; i < 50; ++i) {
      r = kv_->Put(key, value);
      if (r.ok()) return r->revision;
    }
    ADD_FAILURE() << r.status();
    return 0;
  }

  static testing::EtcdProcess* etcd_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<KV> kv_;
  std::string prefix_;
};

testing::EtcdProcess* WatchTest::etcd_ = nullptr;

TEST_F(WatchTest, DeliversPutsAndDeletesInOrderWithPrevKv) {
  Collector c;
  auto w = StartWatch(&c, 0, /*prev_kv=*/true);
  ASSERT_TRUE(c.WaitCreated(1));
  auto pa = kv_->Put(prefix_ + "a", "1");
  ASSERT_TRUE(pa.ok());
  ASSERT_TRUE(kv_->Put(prefix_ + "a", "2").ok());
  ASSERT_TRUE(kv_->Put(prefix_ + "b", "x").ok());
  ASSERT_TRUE(kv_->Put("/elsewhere", "not watched").ok());
  DeleteOptions d;
  d.prefix = true;
  ASSERT_TRUE(kv_->Delete(prefix_, d).ok());  // one revision, two DELETE events
  ASSERT_TRUE(c.WaitEvents(5));
  auto ev = c.events();
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(ev[0].type, Event::Type::kPut);
  EXPECT_EQ(ev[0].kv.value, "1");
  EXPECT_EQ(ev[0].kv.mod_revision, pa->revision);
  EXPECT_FALSE(ev[0].prev_kv.has_value());
  EXPECT_EQ(ev[1].kv.value, "2");
  ASSERT_TRUE(ev[1].prev_kv.has_value());
  EXPECT_EQ(ev[1].prev_kv->value, "1");
  EXPECT_EQ(ev[2].kv.key, prefix_ + "b");
  EXPECT_EQ(ev[3].type, Event::Type::kDelete);
  EXPECT_EQ(ev[4].type, Event::Type::kDelete);
  EXPECT_EQ(ev[3].kv.mod_revision, ev[4].kv.mod_revision);
  ASSERT_TRUE(ev[3].prev_kv.has_value());
  EXPECT_EQ(ev[3].prev_kv->value, "2");
  for (size_t i = 1; i < 4; ++i)
    EXPECT_LT(ev[i - 1].kv.mod_revision, ev[i].kv.mod_revision);
  EXPECT_EQ(w->next_revision(), ev[4].kv.mod_revision + 1);
  EXPECT_FALSE(w->Done());
}

TEST_F(WatchTest, StartRevisionReplaysHistory) {
  auto first = kv_->Put(prefix_ + "k", "1");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(kv_->Put(prefix_ + "k", "2").ok());
  ASSERT_TRUE(kv_->Delete(prefix_ + "k").ok());
  Collector c;
  auto w = StartWatch(&c, first->revision);
  ASSERT_TRUE(c.WaitEvents(3));
  auto ev = c.events();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].kv.value, "1");
  EXPECT_EQ(ev[0].kv.mod_revision, first->revision);
  EXPECT_EQ(ev[1].kv.value, "2");
  EXPECT_EQ(ev[2].type, Event::Type::kDelete);
}

// Writes before the stop, while etcd is back but the watch has not reconnected,
// and after it reconnected: each arrives once, in order.
TEST_F(WatchTest, ResumesAfterEtcdRestartWithoutLosingOrDuplicatingEvents) {
  Collector c;
  auto w = StartWatch(&c);
  ASSERT_TRUE(c.WaitCreated(1));
  std::vector<std::string> expected;
  int n = 0;
  auto put = [&](const std::string& label) {
    std::string key = absl::StrCat(prefix_, n++, "-", label);
    ASSERT_NE(PutEventually(key, "v"), 0);
    expected.push_back(key);
  };
  for (bool kill : {false, true}) {
    SCOPED_TRACE(kill ? "SIGKILL" : "SIGTERM");
    const int created_before = c.created();
    put("delivered-before-stop");
    ASSERT_TRUE(c.WaitEvents(expected.size()));
    put("just-before-stop");  // may or may not be delivered before the stop
    ASSERT_TRUE((kill ? etcd_->Kill() : etcd_->Stop()).ok());
    ASSERT_TRUE(etcd_->Restart().ok());
    put("after-restart");  // most likely while the watch is still reconnecting
    ASSERT_TRUE(c.WaitCreated(created_before + 1))
        << "the watch did not come back";
    put("after-reconnect");
    ASSERT_TRUE(c.WaitEvents(expected.size()));
  }
  // Give a duplicate a chance to show up: one more write, then compare
  // everything.
  put("final");
  ASSERT_TRUE(c.WaitEvents(expected.size()));
  EXPECT_EQ(c.Keys(), expected);
  auto ev = c.events();
  for (size_t i = 1; i < ev.size(); ++i)
    EXPECT_LT(ev[i - 1].kv.mod_revision, ev[i].kv.mod_revision);
  EXPECT_GE(c.disconnects().size(), 2u);
  EXPECT_THAT(c.disconnects()[0].ToString(), HasSubstr(etcd_->address()));
  EXPECT_FALSE(w->Done());
}

TEST_F(WatchTest, CompactedStartRevisionIsReportedNotHidden) {
  auto first = kv_->Put(prefix_ + "k", "1");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(kv_->Put(prefix_ + "k", "2").ok());
  auto last = kv_->Put(prefix_ + "k", "3");
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(kv_->Compact(last->revision).ok());
  Collector c;
  auto w = StartWatch(&c, first->revision);
  ASSERT_TRUE(
      c.Wait([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return !c.done_.empty(); },
             absl::Seconds(10)));
  EXPECT_EQ(c.compacted(), last->revision);
  ASSERT_EQ(c.done().size(), 1u);
  EXPECT_EQ(c.done()[0].code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(c.done()[0].message()), HasSubstr("compacted"));
  EXPECT_TRUE(c.events().empty()) << "nothing from a compacted history";
  EXPECT_TRUE(w->Done());
  EXPECT_EQ(w->status().code(), absl::StatusCode::kOutOfRange);
  // Watching again from the compaction revision works.
  Collector again;
  auto w2 = StartWatch(&again, last->revision);
  ASSERT_TRUE(again.WaitEvents(1));
  EXPECT_EQ(again.events()[0].kv.value, "3");
}

TEST_F(WatchTest, ProgressNotifyAdvancesAQuietWatch) {
  ASSERT_TRUE(kv_->Put("/other/key", "moves the store revision").ok());
  auto head = kv_->Put("/other/key", "again");
  ASSERT_TRUE(head.ok());
  WatchOptions o;
  o.key = prefix_;
  o.prefix = true;
  o.progress_notify = true;
  Collector c;
  auto w = Watch::Start(client_.get(), o, c.Callbacks());
  ASSERT_TRUE(w.ok()) << w.status();
  // etcd runs with a 500 ms progress interval.
  ASSERT_TRUE(c.Wait(
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return !c.progress_.empty(); },
      absl::Seconds(10)));
  EXPECT_GE(c.progress()[0], head->revision);
  EXPECT_GE((*w)->next_revision(), head->revision);
  EXPECT_TRUE(c.events().empty());
}

// A member (here: the path to it) that holds bytes without resetting: the
// watch through it goes quiet. Its progress requests go unanswered, so after
// silence_timeout the stream is dropped and re-established on the next
// endpoint, and the change made meanwhile arrives, once, in order.
TEST_F(WatchTest, ASilentStreamIsReplacedOnTheNextEndpoint) {
  using faultproxy::FaultProxy;
  auto path = testing::ProxyTo(*etcd_);
  ASSERT_TRUE(path.ok()) << path.status();
  ClientConfig config;
  config.endpoints = {path->address, etcd_->address()};
  auto client = Client::Create(config);
  ASSERT_TRUE(client.ok());
  WatchOptions o;
  o.key = prefix_;
  o.prefix = true;
  o.silence_timeout = absl::Seconds(1);
  Collector c;
  auto w = Watch::Start(client->get(), o, c.Callbacks());
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE(c.WaitCreated(1));
  EXPECT_EQ((*client)->current_endpoint(), path->address);
  ASSERT_TRUE(kv_->Put(prefix_ + "a", "1").ok());
  ASSERT_TRUE(c.WaitEvents(1));
  // A quiet, healthy stream is not taken for a silent one: progress answers
  // keep it alive for several bounds.
  absl::SleepFor(absl::Seconds(3));
  EXPECT_TRUE(c.disconnects().empty()) << c.disconnects()[0];

  ASSERT_TRUE(path->Set(FaultProxy::Mode::kHold).ok());
  const absl::Duration held_at = Clock::Real()->Monotonic();
  ASSERT_TRUE(kv_->Put(prefix_ + "b", "2").ok());
  ASSERT_TRUE(c.WaitEvents(2, absl::Seconds(10)))
      << "the watch stayed silently stale";
  const absl::Duration took = Clock::Real()->Monotonic() - held_at;
  // The silence bound, then a reconnect (the one Backoff starts at 50 ms).
  EXPECT_LE(took, absl::Seconds(1) + absl::Seconds(2)) << took;
  EXPECT_THAT(c.Keys(), ElementsAre(prefix_ + "a", prefix_ + "b"));
  ASSERT_FALSE(c.disconnects().empty());
  EXPECT_THAT(std::string(c.disconnects()[0].message()), HasSubstr("silent"));
  EXPECT_EQ((*client)->current_endpoint(), etcd_->address());
  (*w)->Stop();
}

TEST_F(WatchTest, StopIsPromptAndEndsCallbacks) {
  Collector c;
  auto w = StartWatch(&c);
  ASSERT_TRUE(c.WaitCreated(1));
  absl::Duration t0 = Clock::Real()->Monotonic();
  w->Stop();
  EXPECT_LT(Clock::Real()->Monotonic() - t0, absl::Milliseconds(500));
  EXPECT_TRUE(w->Done());
  EXPECT_TRUE(w->status().ok());
  auto after = kv_->Put(prefix_ + "after-stop", "x");
  ASSERT_TRUE(after.ok());
  // A second watch sees the write, so the first one had every chance to.
  Collector witness;
  auto w2 = StartWatch(&witness, after->revision);
  ASSERT_TRUE(witness.WaitEvents(1));
  EXPECT_TRUE(c.events().empty());
  EXPECT_TRUE(c.done().empty()) << "on_done is not called after Stop()";

  // Stop while etcd is down and the watch is retrying.
  ASSERT_TRUE(etcd_->Stop().ok());
  ASSERT_TRUE(witness.Wait(
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return !witness.disconnects_.empty();
      },
      absl::Seconds(10)));
  t0 = Clock::Real()->Monotonic();
  w2->Stop();
  // At most one connect wait (dial_timeout) plus nothing else.
  EXPECT_LT(Clock::Real()->Monotonic() - t0,
            client_->config().dial_timeout + absl::Milliseconds(500));
  ASSERT_TRUE(etcd_->Restart().ok());
}

TEST_F(WatchTest, StopFromItsOwnCallback) {
  Watch* self = nullptr;
  std::atomic<int> calls{0};
  WatchOptions o;
  o.key = prefix_;
  o.prefix = true;
  WatchCallbacks cb;
  absl::Notification created;
  cb.on_created = [&](int64_t) { created.Notify(); };
  cb.on_events = [&](const std::vector<Event>&, int64_t) {
    ++calls;
    self->Stop();
  };
  auto w = Watch::Start(client_.get(), o, cb);
  ASSERT_TRUE(w.ok());
  self = w->get();
  ASSERT_TRUE(created.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(kv_->Put(prefix_ + "1", "x").ok());
  ASSERT_TRUE(
      testbed::WaitUntil([&] { return (*w)->Done(); }, absl::Seconds(10)));
  ASSERT_TRUE(kv_->Put(prefix_ + "2", "x").ok());
  w->reset();  // joins the thread
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(WatchTest, BadOptionsAreRejected) {
  WatchOptions both;
  both.key = "a";
  both.prefix = true;
  both.range_end = "b";
  EXPECT_EQ(Watch::Start(client_.get(), both, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  WatchOptions empty;
  EXPECT_EQ(Watch::Start(client_.get(), empty, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  WatchOptions negative;
  negative.key = "a";
  negative.start_revision = -1;
  EXPECT_EQ(Watch::Start(client_.get(), negative, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mcl::etcd
