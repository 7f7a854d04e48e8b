// FakeSidecar: a real gRPC mcl.v1.Election server on 127.0.0.1 whose answers
// the test scripts, for the client library's and the `mcl` command's fault and
// bad-input tests: LEADER events with any validity bound (or none, or one from
// "another clock"), renewals, LOST, stalls (send nothing), stream ends with
// any status, and the death of the whole server (Kill) and its return on the
// same port (Restart). Tests of the real sidecar are in mcl_testbed_test.cc.
//
// Threads: gRPC's callback threads run the RPCs; the test thread scripts the
// streams. Every method is thread-safe.
#ifndef MCL_CLIENT_STUBS_CPP_TESTING_FAKE_SIDECAR_H_
#define MCL_CLIENT_STUBS_CPP_TESTING_FAKE_SIDECAR_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "mcl/v1/election.grpc.pb.h"

namespace mcl::client::testing {

// One Campaign or Observe stream, from the server's side.
class FakeStream : public grpc::ServerWriteReactor<mcl::v1::LeadershipEvent> {
 public:
  FakeStream(Clock* clock, std::string kind, mcl::v1::CampaignRequest request);
  const std::string& kind() const { return kind_; }  // "Campaign", "Observe"
  const mcl::v1::CampaignRequest& request() const { return request_; }

  // Queues an event (sent in order; dropped once the stream is over).
  void Send(const mcl::v1::LeadershipEvent& event);
  // Ends the RPC with `status` after the queued events.
  void End(const grpc::Status& status);
  // Waits until the client cancelled the stream (the library's resign) or the
  // stream is over; returns whether the client cancelled, and when (CLOCK_
  // MONOTONIC of the test's clock).
  bool WaitCancelled(absl::Duration timeout);
  std::optional<absl::Duration> cancelled_at();
  // Waits until every queued event was written to the transport.
  bool WaitFlushed(absl::Duration timeout);
  bool over();
  // The state of the last event queued (STATE_UNSPECIFIED before any).
  mcl::v1::State last_state();

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // Starts the next write, or the finish once the queue is empty.
  void Pump();

  Clock* const clock_;
  const std::string kind_;
  const mcl::v1::CampaignRequest request_;
  absl::Mutex mu_;
  std::deque<mcl::v1::LeadershipEvent> queue_ ABSL_GUARDED_BY(mu_);
  mcl::v1::LeadershipEvent current_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Duration> cancelled_at_ ABSL_GUARDED_BY(mu_);
  mcl::v1::State last_state_ ABSL_GUARDED_BY(mu_) = mcl::v1::STATE_UNSPECIFIED;
};

class FakeSidecar final : public mcl::v1::Election::CallbackService {
 public:
  // Serves on a free loopback port. `clock` stamps events (sent / valid_until)
  // and cancellations.
  static absl::StatusOr<std::unique_ptr<FakeSidecar>> Start(
      Clock* clock = Clock::Real());
  ~FakeSidecar() override;

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  // The n-th stream of `kind` ("Campaign" or "Observe", 0-based, in arrival
  // order) once it has started, or nullptr after `timeout`.
  FakeStream* WaitForStream(const std::string& kind, int n,
                            absl::Duration timeout);
  int streams(const std::string& kind);

  // The sidecar dies: every open stream ends (the client sees its connection
  // drop) and nothing answers until Restart, which serves again on the port.
  void Kill();
  absl::Status Restart();

  // Leader answers this, or NOT_FOUND when unset.
  void SetLeader(std::optional<mcl::v1::Leader> leader);
  // Resign calls received. Each ends the matching open Campaign streams (same
  // lock name; same identity unless the request's is empty) with LOST and OK,
  // as the sidecar does, and answers was_leader = whether one of them was last
  // sent LEADER; FAILED_PRECONDITION when none matches.
  std::vector<mcl::v1::ResignRequest> resigns();

  // A LEADER event for `token` stamped now: sent = clock now, valid until
  // now + `valid_for`.
  mcl::v1::LeadershipEvent LeaderEvent(int64_t token, absl::Duration valid_for,
                                       const std::string& identity = "me");
  static mcl::v1::LeadershipEvent Event(mcl::v1::State state,
                                        const std::string& identity = "",
                                        int64_t token = 0,
                                        const std::string& reason = "");

  // mcl.v1.Election.
  grpc::ServerWriteReactor<mcl::v1::LeadershipEvent>* Campaign(
      grpc::CallbackServerContext* ctx,
      const mcl::v1::CampaignRequest* request) override;
  grpc::ServerWriteReactor<mcl::v1::LeadershipEvent>* Observe(
      grpc::CallbackServerContext* ctx,
      const mcl::v1::ObserveRequest* request) override;
  grpc::ServerUnaryReactor* Resign(grpc::CallbackServerContext* ctx,
                                   const mcl::v1::ResignRequest* request,
                                   mcl::v1::ResignResponse* response) override;
  grpc::ServerUnaryReactor* Leader(grpc::CallbackServerContext* ctx,
                                   const mcl::v1::LeaderRequest* request,
                                   mcl::v1::LeaderResponse* response) override;

 private:
  explicit FakeSidecar(Clock* clock) : clock_(clock) {}
  absl::Status Serve();
  FakeStream* AddStream(const std::string& kind,
                        const mcl::v1::CampaignRequest& request);

  Clock* const clock_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  absl::Mutex mu_;
  // Streams live until the FakeSidecar goes (after its servers shut down).
  std::vector<std::unique_ptr<FakeStream>> streams_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<grpc::Server>> dead_servers_;
  std::optional<mcl::v1::Leader> leader_ ABSL_GUARDED_BY(mu_);
  std::vector<mcl::v1::ResignRequest> resigns_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mcl::client::testing

#endif  // MCL_CLIENT_STUBS_CPP_TESTING_FAKE_SIDECAR_H_
