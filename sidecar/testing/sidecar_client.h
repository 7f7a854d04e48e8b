// Test helpers: a real mcl-sidecar process on a unix socket (or loopback port)
// with its gRPC stub, and a reader that drains a server stream on its own
// thread so tests wait on events with deadlines.
#ifndef MCL_SIDECAR_TESTING_SIDECAR_CLIENT_H_
#define MCL_SIDECAR_TESTING_SIDECAR_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "mcl/v1/election.grpc.pb.h"
#include "testbed/cc/subprocess.h"

namespace mcl::sidecar::testing {

struct ReceivedEvent {
  mcl::v1::LeadershipEvent event;
  absl::Time at;  // when the test received it
  // The same moment on CLOCK_MONOTONIC, the clock of a LEADER event's bound.
  int64_t mono_ns = 0;
};

class StreamReader {
 public:
  // Starts Campaign or Observe on `stub`.
  static std::unique_ptr<StreamReader> Campaign(
      mcl::v1::Election::Stub* stub, const mcl::v1::CampaignRequest& req);
  static std::unique_ptr<StreamReader> Observe(
      mcl::v1::Election::Stub* stub, const mcl::v1::ObserveRequest& req);
  ~StreamReader();

  // The next event, or nullopt after `timeout` or when the stream ended.
  std::optional<ReceivedEvent> Next(absl::Duration timeout);
  // Waits for an event with `state` (skipping others); nullopt on timeout /
  // end.
  std::optional<ReceivedEvent> WaitFor(mcl::v1::State state,
                                       absl::Duration timeout);
  // Waits for the stream to end; its status (DEADLINE_EXCEEDED-like error if it
  // does not end).
  absl::StatusOr<grpc::Status> WaitEnd(absl::Duration timeout);
  void Cancel() { ctx_.TryCancel(); }
  // Every event received so far (including ones already returned by Next).
  std::vector<ReceivedEvent> History();

 private:
  StreamReader() = default;
  void Run();
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<mcl::v1::LeadershipEvent>> reader_;
  absl::Mutex mu_;
  std::deque<ReceivedEvent> queue_;
  std::vector<ReceivedEvent> history_;
  bool ended_ = false;
  grpc::Status status_;
  std::thread thread_;
};

class Sidecar {
 public:
  // Starts bazel-bin's mcl-sidecar with `args` (plus
  // --listen=unix://<dir>/<name>.sock unless args contain --listen) and waits
  // until its gRPC channel is ready.
  static absl::StatusOr<std::unique_ptr<Sidecar>> Start(
      const std::string& name, const std::string& dir,
      std::vector<std::string> args,
      const std::map<std::string, std::string>& env = {});
  mcl::v1::Election::Stub* stub() { return stub_.get(); }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  testbed::Subprocess& process() { return proc_; }
  const std::string& target() const { return target_; }

 private:
  Sidecar(testbed::Subprocess p) : proc_(std::move(p)) {}
  testbed::Subprocess proc_;
  std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<mcl::v1::Election::Stub> stub_;
};

// Waits until one of two streams has ended: {the one that ended, the other}.
// {nullptr, nullptr} when neither ends within `timeout`.
std::pair<StreamReader*, StreamReader*> FirstToEnd(StreamReader* a,
                                                   StreamReader* b,
                                                   absl::Duration timeout);

std::string SidecarBinary();
mcl::v1::LockRef Lock(const std::string& name, const std::string& ns = "");

}  // namespace mcl::sidecar::testing

#endif  // MCL_SIDECAR_TESTING_SIDECAR_CLIENT_H_
