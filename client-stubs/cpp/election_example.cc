// Campaigns for an mcl lock through the sidecar and does leader work only while
// leading, with the C++ client library (leadership.h), which also stops the
// work at the validity bound if the sidecar goes silent. The reference example
// for C++ (client-stubs/test/run.sh runs it against a real sidecar).
//   MCL_SIDECAR_ADDR  the sidecar (default 127.0.0.1:7400)
//   MCL_LOCK          lock name (default example-lock); MCL_NAMESPACE (default:
//                     the sidecar's)
//   MCL_IDENTITY      candidate identity (default: the sidecar's, i.e. pod
//                     name + uid)
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "client-stubs/cpp/leadership.h"
#include "common/stop_signals.h"

namespace {

std::string Env(const char* key, const char* def) {
  const char* v = std::getenv(key);
  return v != nullptr && *v != '\0' ? v : def;
}

}  // namespace

int main() {
  // SIGTERM (pod shutdown) and Ctrl-C are blocked in every thread; one thread
  // waits for them and stops the campaign: the leader work is cancelled first,
  // then the Campaign stream ends, which is how we resign.
  mcl::BlockStopSignals();

  // Output lines stay in order: an event line, then leader work lines only
  // while the last event printed was LEADER.
  std::mutex print_mu;
  bool leading = false;
  int64_t printed_token = -1;
  mcl::client::LeadershipOptions options;
  options.lock = Env("MCL_LOCK", "example-lock");
  options.lock_namespace = Env("MCL_NAMESPACE", "");
  options.identity = Env("MCL_IDENTITY", "");
  options.on_event = [&](const mcl::v1::LeadershipEvent& ev) {
    std::lock_guard<std::mutex> l(print_mu);
    const int64_t token = ev.leader().fencing_token();
    if (ev.state() == mcl::v1::LEADER && leading && token == printed_token) {
      return;  // a renewal: the same grant, a later bound
    }
    std::printf("event state=%s leader=%s cluster=%s token=%lld\n",
                mcl::v1::State_Name(ev.state()).c_str(),
                ev.leader().identity().c_str(), ev.leader().cluster().c_str(),
                static_cast<long long>(token));
    std::fflush(stdout);
    leading = ev.state() == mcl::v1::LEADER;
    printed_token = token;
  };

  // Runs on the library's thread while this candidate leads; pass the fencing
  // token to whatever you write.
  auto leader_work = [&](const mcl::client::LeaderContext& ctx) {
    do {
      std::lock_guard<std::mutex> l(print_mu);
      if (!ctx.IsLeaderNow()) break;  // LOST, stream end, or the bound
      if (leading) {
        std::printf("leader work token=%lld\n",
                    static_cast<long long>(ctx.fencing_token()));
        std::fflush(stdout);
      }
    } while (!ctx.WaitForCancel(absl::Seconds(1)));
    return absl::OkStatus();  // after the cancellation: wait for the next term
  };

  auto started = mcl::client::Leadership::Start(options, leader_work);
  if (!started.ok()) {
    std::fprintf(stderr, "%s\n", started.status().ToString().c_str());
    return 2;
  }
  // Shared with the signal thread, which may outlive main's scope.
  std::shared_ptr<mcl::client::Leadership> leadership = std::move(*started);
  static std::mutex stop_mu;
  static bool stopping = false;
  std::thread([leadership] {
    mcl::WaitForStopSignal();
    std::lock_guard<std::mutex> l(stop_mu);
    stopping = true;
    leadership->Stop();
  }).detach();

  const absl::Status status = leadership->Wait();
  std::lock_guard<std::mutex> l(stop_mu);
  if (stopping && status.ok()) {
    std::printf("resigned, bye\n");
    return 0;
  }
  std::fprintf(stderr, "campaign ended: %s\n", status.ToString().c_str());
  return 1;
}
