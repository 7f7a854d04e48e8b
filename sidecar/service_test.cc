// The gRPC service over real gRPC on loopback, against a scripted ElectionApi:
// requests validated and mapped onto the core, events and errors mapped onto
// the wire, and a stream's end reported to the core exactly once — also when
// the client goes away before the core has registered the stream.
#include "sidecar/service.h"

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/testing/sidecar_client.h"

namespace mcl::sidecar {
namespace {

using ::mcl::sidecar::testing::StreamReader;
using ::testing::HasSubstr;

// The core as the service sees it, scripted by the test.
class ScriptedElection : public ElectionApi {
 public:
  LockKey Key(const std::string& ns, const std::string& name) const override {
    return LockKey{ns.empty() ? "pod-ns" : ns, name};
  }
  std::string Identity(const std::string& requested) const override {
    return requested.empty() ? default_identity : requested;
  }
  absl::Duration DefaultLeaseDuration() const override {
    return absl::Seconds(15);
  }

  absl::StatusOr<uint64_t> StartCampaign(
      const LockKey& key, const std::string& identity,
      absl::Duration lease_duration, std::shared_ptr<EventSink> sink) override {
    if (block_start != nullptr) {
      entered_start.Notify();
      block_start->WaitForNotification();
    }
    absl::MutexLock l(&mu_);
    calls_.push_back(absl::StrCat("StartCampaign ", key.str(), " ", identity,
                                  " ", absl::FormatDuration(lease_duration)));
    if (!start_error.ok()) return start_error;
    const uint64_t id = next_id_++;
    sinks_[id] = sink;
    sink->Send(first_event);
    return id;
  }
  void EndCampaign(uint64_t id, const std::string& reason) override {
    absl::MutexLock l(&mu_);
    calls_.push_back(absl::StrCat("EndCampaign ", id, " ", reason));
  }
  void Resign(const LockKey& key, const std::string& identity,
              std::function<void(absl::StatusOr<bool>)> done) override {
    {
      absl::MutexLock l(&mu_);
      calls_.push_back(absl::StrCat("Resign ", key.str(), " ", identity));
    }
    done(resign_result);
  }
  absl::StatusOr<uint64_t> StartObserve(
      const LockKey& key, std::shared_ptr<EventSink> sink) override {
    absl::MutexLock l(&mu_);
    calls_.push_back(absl::StrCat("StartObserve ", key.str()));
    const uint64_t id = next_id_++;
    sinks_[id] = sink;
    sink->Send(first_event);
    return id;
  }
  void EndObserve(uint64_t id) override {
    absl::MutexLock l(&mu_);
    calls_.push_back(absl::StrCat("EndObserve ", id));
  }
  absl::StatusOr<Grant> Leader(const LockKey& key) override {
    absl::MutexLock l(&mu_);
    calls_.push_back(absl::StrCat("Leader ", key.str()));
    return leader_result;
  }

  std::shared_ptr<EventSink> sink(uint64_t id) {
    absl::MutexLock l(&mu_);
    return sinks_[id];
  }
  // Waits (real time, bounded) until `call` was made.
  bool WaitCall(const std::string& call) {
    absl::MutexLock l(&mu_);
    auto made = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const std::string& c : calls_) {
        if (c == call) return true;
      }
      return false;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&made), absl::Seconds(10));
  }
  std::vector<std::string> calls() {
    absl::MutexLock l(&mu_);
    return calls_;
  }

  // The script (set before the calls).
  std::string default_identity = "pod_uid";
  absl::Status start_error;
  absl::Notification* block_start = nullptr;
  absl::Notification entered_start;
  StreamEvent first_event;
  absl::StatusOr<bool> resign_result = true;
  absl::StatusOr<Grant> leader_result = absl::NotFoundError("nobody leads");

 private:
  absl::Mutex mu_;
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::shared_ptr<EventSink>> sinks_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    election_.first_event.lock = LockKey{"pod-ns", "lock-a"};
    election_.first_event.event.state = LeaderState::kNoLeader;
    service_ = std::make_unique<ElectionService>(&election_, &clock_);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(service_->service());
    auto cq = builder.AddCompletionQueue();
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    loop_ = std::make_unique<CompletionLoop>(std::move(cq));
    workers_ = std::make_unique<Workers>(2);
    service_->Start(loop_.get(), workers_.get());
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                       grpc::InsecureChannelCredentials());
    stub_ = mcl::v1::Election::NewStub(channel);
  }
  void TearDown() override {
    // The server first: it completes every pending operation on the queue,
    // which the loop then drains.
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::seconds(5));
    loop_.reset();
    workers_.reset();
  }

  static mcl::v1::CampaignRequest Campaign(const std::string& name,
                                           const std::string& identity = "",
                                           int lease = 0) {
    mcl::v1::CampaignRequest r;
    r.mutable_lock()->set_name(name);
    r.set_identity(identity);
    r.set_lease_duration_seconds(lease);
    return r;
  }

  FakeClock clock_;
  ScriptedElection election_;
  std::unique_ptr<ElectionService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<CompletionLoop> loop_;
  std::unique_ptr<Workers> workers_;
  std::unique_ptr<mcl::v1::Election::Stub> stub_;
};

TEST_F(ServiceTest, CampaignStreamsTheCoresEventsAndEndsWithItsStatus) {
  auto reader = StreamReader::Campaign(stub_.get(), Campaign("lock-a", "me"));
  auto first = reader->Next(absl::Seconds(10));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->event.state(), mcl::v1::NO_LEADER);
  EXPECT_EQ(first->event.lock().namespace_(), "pod-ns");
  EXPECT_EQ(first->event.lock().name(), "lock-a");
  EXPECT_EQ(election_.calls()[0], "StartCampaign pod-ns/lock-a me 15s");

  StreamEvent e;
  e.lock = LockKey{"pod-ns", "lock-a"};
  e.event.state = LeaderState::kLeader;
  e.event.grant =
      Grant{"me", "east", 42, absl::FromUnixSeconds(1700000000), ""};
  e.time = absl::FromUnixMillis(1790000000123);
  election_.sink(1)->Send(e);
  e.event.state = LeaderState::kLost;
  e.event.reason = "resigned";
  election_.sink(1)->Send(e);
  election_.sink(1)->Finish(absl::OkStatus());

  auto led = reader->Next(absl::Seconds(10));
  ASSERT_TRUE(led.has_value());
  EXPECT_EQ(led->event.state(), mcl::v1::LEADER);
  EXPECT_EQ(led->event.leader().identity(), "me");
  EXPECT_EQ(led->event.leader().cluster(), "east");
  EXPECT_EQ(led->event.leader().fencing_token(), 42);
  EXPECT_EQ(led->event.leader().acquire_time().seconds(), 1700000000);
  EXPECT_EQ(led->event.time().seconds(), 1790000000);
  EXPECT_EQ(led->event.time().nanos(), 123000000);
  auto lost = reader->Next(absl::Seconds(10));
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->event.state(), mcl::v1::LOST);
  EXPECT_EQ(lost->event.reason(), "resigned");
  auto end = reader->WaitEnd(absl::Seconds(10));
  ASSERT_TRUE(end.ok());
  EXPECT_TRUE(end->ok()) << end->error_message();
}

TEST_F(ServiceTest, LeaderEventsCarryTheirBoundStampedWithTheSendTime) {
  auto reader = StreamReader::Campaign(stub_.get(), Campaign("lock-a", "me"));
  auto first = reader->Next(absl::Seconds(10));
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(first->event.has_validity());  // NO_LEADER carries none
  const absl::Duration now = clock_.Monotonic();
  StreamEvent e;
  e.lock = LockKey{"pod-ns", "lock-a"};
  e.event.state = LeaderState::kLeader;
  e.event.grant = Grant{"me", "east", 42, absl::InfinitePast(), ""};
  e.event.valid_until = now + absl::Milliseconds(1830);
  election_.sink(1)->Send(e);
  auto led = reader->Next(absl::Seconds(10));
  ASSERT_TRUE(led.has_value());
  ASSERT_TRUE(led->event.has_validity());
  const mcl::v1::Validity& v = led->event.validity();
  EXPECT_EQ(v.valid_until_monotonic_ns(),
            absl::ToInt64Nanoseconds(now + absl::Milliseconds(1830)));
  EXPECT_EQ(v.sent_monotonic_ns(), absl::ToInt64Nanoseconds(now));
  EXPECT_EQ(v.remaining().seconds(), 1);
  EXPECT_EQ(v.remaining().nanos(), 830000000);
  // A bound that has passed by the time the event is sent says so.
  e.event.valid_until = now - absl::Milliseconds(1500);
  election_.sink(1)->Send(e);
  auto late = reader->Next(absl::Seconds(10));
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(late->event.validity().remaining().seconds(), -1);
  EXPECT_EQ(late->event.validity().remaining().nanos(), -500000000);
  // LOST carries none, even if the core left a bound in the event.
  e.event.state = LeaderState::kLost;
  election_.sink(1)->Send(e);
  auto lost = reader->Next(absl::Seconds(10));
  ASSERT_TRUE(lost.has_value());
  EXPECT_FALSE(lost->event.has_validity());
}

TEST_F(ServiceTest, DefaultsComeFromTheCore) {
  auto reader = StreamReader::Campaign(stub_.get(), Campaign("lock-a"));
  ASSERT_TRUE(reader->Next(absl::Seconds(10)).has_value());
  EXPECT_EQ(election_.calls()[0], "StartCampaign pod-ns/lock-a pod_uid 15s");
  auto other = StreamReader::Campaign(stub_.get(), Campaign("lock-b", "x", 4));
  ASSERT_TRUE(other->Next(absl::Seconds(10)).has_value());
  EXPECT_EQ(election_.calls()[1], "StartCampaign pod-ns/lock-b x 4s");
}

TEST_F(ServiceTest, CancellingACampaignTellsTheCoreOnce) {
  auto reader = StreamReader::Campaign(stub_.get(), Campaign("lock-a", "me"));
  ASSERT_TRUE(reader->Next(absl::Seconds(10)).has_value());
  reader->Cancel();
  ASSERT_TRUE(
      election_.WaitCall("EndCampaign 1 the Campaign stream was cancelled"));
  reader.reset();
  int ends = 0;
  for (const std::string& c : election_.calls()) ends += c.rfind("End", 0) == 0;
  EXPECT_EQ(ends, 1);
}

TEST_F(ServiceTest, AStreamCancelledBeforeTheCoreRegisteredItIsStillEnded) {
  absl::Notification release;
  election_.block_start = &release;
  auto reader = StreamReader::Campaign(stub_.get(), Campaign("lock-a", "me"));
  ASSERT_TRUE(election_.entered_start.WaitForNotificationWithTimeout(
      absl::Seconds(10)));
  reader->Cancel();  // while StartCampaign is still running on a worker
  ASSERT_TRUE(reader->WaitEnd(absl::Seconds(10)).ok());
  release.Notify();
  EXPECT_TRUE(
      election_.WaitCall("EndCampaign 1 the Campaign stream was cancelled"));
}

TEST_F(ServiceTest, CoreErrorsEndTheStreamWithTheirCodeAndMessage) {
  election_.start_error =
      absl::AlreadyExistsError("identity \"me\" already campaigns");
  auto reader = StreamReader::Campaign(stub_.get(), Campaign("lock-a", "me"));
  auto end = reader->WaitEnd(absl::Seconds(10));
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(end->error_message(), "identity \"me\" already campaigns");
}

TEST_F(ServiceTest, InvalidRequestsNeverReachTheCore) {
  election_.default_identity = "";
  struct Case {
    mcl::v1::CampaignRequest req;
    std::string message;
  };
  std::vector<Case> cases = {
      {Campaign(""), "lock.name is empty"},
      {Campaign("lock-a", "two words"), "printable ASCII"},
      {Campaign("lock-a", "me", 1), "[2, 3600]"},
      {Campaign("lock-a"), "identity is empty and this sidecar has no default"},
  };
  for (const Case& c : cases) {
    auto reader = StreamReader::Campaign(stub_.get(), c.req);
    auto end = reader->WaitEnd(absl::Seconds(10));
    ASSERT_TRUE(end.ok());
    EXPECT_EQ(end->error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(end->error_message(), HasSubstr(c.message));
  }
  EXPECT_TRUE(election_.calls().empty());
}

TEST_F(ServiceTest, ObserveStreamsAndCancellingItTellsTheCore) {
  mcl::v1::ObserveRequest req;
  req.mutable_lock()->set_name("lock-a");
  req.mutable_lock()->set_namespace_("team");
  auto reader = StreamReader::Observe(stub_.get(), req);
  ASSERT_TRUE(reader->Next(absl::Seconds(10)).has_value());
  EXPECT_EQ(election_.calls()[0], "StartObserve team/lock-a");
  StreamEvent e;
  e.lock = LockKey{"team", "lock-a"};
  e.event.state = LeaderState::kFollower;
  e.event.grant = Grant{"other", "west", 9, absl::InfinitePast(), ""};
  election_.sink(1)->Send(e);
  auto f = reader->Next(absl::Seconds(10));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->event.state(), mcl::v1::FOLLOWER);
  EXPECT_EQ(f->event.leader().fencing_token(), 9);
  EXPECT_FALSE(f->event.leader().has_acquire_time());
  reader->Cancel();
  EXPECT_TRUE(election_.WaitCall("EndObserve 1"));
}

TEST_F(ServiceTest, ResignAndLeaderMapTheCoresAnswers) {
  mcl::v1::ResignRequest rr;
  rr.mutable_lock()->set_name("lock-a");
  rr.set_identity("me");
  mcl::v1::ResignResponse resp;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->Resign(&ctx, rr, &resp).ok());
    EXPECT_TRUE(resp.was_leader());
  }
  election_.resign_result = absl::FailedPreconditionError("no Campaign");
  {
    grpc::ClientContext ctx;
    grpc::Status s = stub_->Resign(&ctx, rr, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(s.error_message(), "no Campaign");
  }
  mcl::v1::LeaderRequest lr;
  lr.mutable_lock()->set_name("lock-a");
  mcl::v1::LeaderResponse lresp;
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(stub_->Leader(&ctx, lr, &lresp).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  election_.leader_result = Grant{"me", "east", 42, absl::InfinitePast(), ""};
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->Leader(&ctx, lr, &lresp).ok());
    EXPECT_EQ(lresp.leader().identity(), "me");
    EXPECT_EQ(lresp.leader().fencing_token(), 42);
  }
  EXPECT_EQ(election_.calls(),
            (std::vector<std::string>{
                "Resign pod-ns/lock-a me", "Resign pod-ns/lock-a me",
                "Leader pod-ns/lock-a", "Leader pod-ns/lock-a"}));
}

}  // namespace
}  // namespace mcl::sidecar
