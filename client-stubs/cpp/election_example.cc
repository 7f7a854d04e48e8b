// Campaigns for an mcl lock through the sidecar and does leader work only while
// leading. The reference example for C++ (client-stubs/test/run.sh runs it
// against a real sidecar).
//   MCL_SIDECAR_ADDR  the sidecar (default 127.0.0.1:7400)
//   MCL_LOCK          lock name (default example-lock); MCL_NAMESPACE (default:
//   the sidecar's) MCL_IDENTITY      candidate identity (default: the
//   sidecar's, i.e. pod name + uid)
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "mcl/v1/election.grpc.pb.h"

namespace {

std::string Env(const char* key, const char* def) {
  const char* v = std::getenv(key);
  return v != nullptr && *v != '\0' ? v : def;
}

// Stands for what only the leader may do; pass the fencing token to what you
// write. It runs on its own thread from construction; the destructor stops it
// and waits, so no leader work happens after the object is gone.
class LeaderWork {
 public:
  explicit LeaderWork(int64_t token) : thread_([this, token] { Run(token); }) {}
  ~LeaderWork() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Run(int64_t token) {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      std::printf("leader work token=%lld\n", static_cast<long long>(token));
      std::fflush(stdout);
      cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; });
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members above exist
};

}  // namespace

int main() {
  // SIGTERM (pod shutdown) and Ctrl-C are blocked in every thread; one thread
  // waits for them and cancels the Campaign call, which is how we resign.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // The sidecar listens on loopback only, so plaintext is fine.
  auto stub = mcl::v1::Election::NewStub(
      grpc::CreateChannel(Env("MCL_SIDECAR_ADDR", "127.0.0.1:7400"),
                          grpc::InsecureChannelCredentials()));
  mcl::v1::CampaignRequest request;
  request.mutable_lock()->set_namespace_(Env("MCL_NAMESPACE", ""));
  request.mutable_lock()->set_name(Env("MCL_LOCK", "example-lock"));
  request.set_identity(Env("MCL_IDENTITY", ""));

  grpc::ClientContext campaign;
  // The signal thread may cancel `campaign` only while main has not finished
  // with it: main sets `finished` under the same mutex before `campaign` goes
  // out of scope, so a signal that arrives as the stream ends cannot touch a
  // destroyed context. (The mutex and flags are static so that a signal during
  // exit still finds them.)
  static std::mutex cancel_mu;
  static bool stopping = false;
  static bool finished = false;
  std::thread([&campaign, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::lock_guard<std::mutex> lock(cancel_mu);
    if (finished) return;
    stopping = true;
    campaign.TryCancel();
  }).detach();

  auto events = stub->Campaign(&campaign, request);
  std::unique_ptr<LeaderWork> work;  // non-null only between LEADER and LOST
  mcl::v1::LeadershipEvent ev;
  while (events->Read(&ev)) {
    std::printf("event state=%s leader=%s cluster=%s token=%lld\n",
                mcl::v1::State_Name(ev.state()).c_str(),
                ev.leader().identity().c_str(), ev.leader().cluster().c_str(),
                static_cast<long long>(ev.leader().fencing_token()));
    std::fflush(stdout);
    if (ev.state() == mcl::v1::LEADER) {
      work.reset();
      work = std::make_unique<LeaderWork>(ev.leader().fencing_token());
    } else if (ev.state() == mcl::v1::LOST) {
      work.reset();  // stop acting as leader at once
    }
  }
  work.reset();  // the stream is gone: we are certainly not the leader any more
  grpc::Status status = events->Finish();
  {
    std::lock_guard<std::mutex> lock(cancel_mu);
    finished = true;
  }
  if (stopping) {
    std::printf("resigned, bye\n");
    return 0;
  }
  if (!status.ok()) {
    std::fprintf(stderr, "campaign stream ended: %s\n",
                 status.error_message().c_str());
    return 1;
  }
  return 0;
}
