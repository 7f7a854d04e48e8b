// mcl-recorder: the fault campaign's app. It campaigns for one lock through
// its sidecar and writes what it was told, and what it did, as JSON lines on
// stdout, each stamped with CLOCK_MONOTONIC in nanoseconds (every process of
// the campaign shares this machine's kernel, so these stamps compare across
// processes):
//
//   {"t":T,"app":A,"stream":K,"ev":"leader","token":N,"valid_until":V,"sent":S}
//   ev: start | leader | renewal | lost | follower | no_leader | deadline |
//       end | clock_error | observe
//
// It acts as its own client library, deliberately small until the C++ client
// library (client-stubs/cpp) can replace it: it is leader from a LEADER until
// the first of LOST (or any other state), the end of the stream, or the
// LEADER's validity bound (valid_until_monotonic_ns) on its own monotonic
// clock. A repeated LEADER with the same token is a renewal (a later bound). A
// LEADER sent, by the sidecar's CLOCK_MONOTONIC, after this process received
// it means the two are not on one clock: the campaign fails (clock_error) and
// the recorder never acts as leader on it. When a stream ends it campaigns
// again after a short backoff, as a long-running app would.
//
// With --observe it also holds an Observe stream and logs every view
// ("observe", with the identity and token it names; the observer is
// "<app>/o<K>", one per stream).
//
// SIGTERM or SIGINT: cancels the streams (a resign) and exits 0.
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/stop_signals.h"
#include "grpcpp/grpcpp.h"
#include "mcl/v1/election.grpc.pb.h"

namespace {

int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

struct Options {
  std::string sidecar;  // host:port
  std::string lock;
  std::string lock_namespace;
  std::string identity;
  std::string name;  // the app's name in the history (unique per process)
  int lease_duration_seconds = 2;
  bool observe = false;
};

class Recorder {
 public:
  explicit Recorder(Options o)
      : o_(std::move(o)),
        stub_(mcl::v1::Election::NewStub(grpc::CreateChannel(
            o_.sidecar, grpc::InsecureChannelCredentials()))) {}

  void Run() {
    std::thread deadline([this] { DeadlineLoop(); });
    std::thread observer;
    if (o_.observe) observer = std::thread([this] { ObserveLoop(); });
    CampaignLoop();
    wake_.Notify();
    deadline.join();
    if (observer.joinable()) observer.join();
  }

  void Stop() {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    if (campaign_ctx_ != nullptr) campaign_ctx_->TryCancel();
    if (observe_ctx_ != nullptr) observe_ctx_->TryCancel();
    wake_.Notify();
  }

 private:
  // One line, one write(2): lines from the threads never interleave.
  void Log(const std::string& ev, const std::string& fields) {
    std::string line =
        absl::StrCat("{\"t\":", MonoNs(), ",\"app\":", JsonString(o_.name),
                     ",\"ev\":\"", ev, "\"", fields, "}\n");
    (void)!write(1, line.data(), line.size());
  }

  bool stopping() {
    absl::MutexLock l(&mu_);
    return stopping_;
  }

  // Sleeps `d` unless stopping; false if stopping.
  bool Backoff(absl::Duration d) {
    absl::Duration until = mcl::Clock::Real()->Monotonic() + d;
    while (!stopping() && mcl::Clock::Real()->Monotonic() < until) {
      stop_wake_.WaitUntil(until);
    }
    return !stopping();
  }

  void CampaignLoop() {
    absl::Duration backoff = absl::Milliseconds(100);
    for (int stream = 1; !stopping(); ++stream) {
      grpc::ClientContext ctx;
      {
        absl::MutexLock l(&mu_);
        if (stopping_) return;
        campaign_ctx_ = &ctx;
      }
      mcl::v1::CampaignRequest req;
      req.mutable_lock()->set_name(o_.lock);
      req.mutable_lock()->set_namespace_(o_.lock_namespace);
      req.set_identity(o_.identity);
      req.set_lease_duration_seconds(o_.lease_duration_seconds);
      Log("start", absl::StrCat(",\"stream\":", stream,
                                ",\"identity\":", JsonString(o_.identity)));
      auto reader = stub_->Campaign(&ctx, req);
      mcl::v1::LeadershipEvent ev;
      bool got_any = false;
      while (reader->Read(&ev)) {
        got_any = true;
        if (!OnEvent(stream, ev)) {
          ctx.TryCancel();
          break;
        }
      }
      grpc::Status st = reader->Finish();
      {
        absl::MutexLock l(&mu_);
        campaign_ctx_ = nullptr;
        leading_ = false;
        deadline_ns_ = 0;
      }
      Log("end", absl::StrCat(",\"stream\":", stream,
                              ",\"code\":", static_cast<int>(st.error_code()),
                              ",\"msg\":", JsonString(st.error_message())));
      backoff = got_any ? absl::Milliseconds(100)
                        : std::min(backoff * 2, absl::Seconds(1));
      if (!Backoff(backoff)) return;
    }
  }

  // Applies one Campaign event; false ends the stream (clock error).
  bool OnEvent(int stream, const mcl::v1::LeadershipEvent& ev) {
    const int64_t now = MonoNs();
    const std::string where = absl::StrCat(",\"stream\":", stream);
    if (ev.state() != mcl::v1::LEADER) {
      bool was;
      {
        absl::MutexLock l(&mu_);
        was = leading_;
        leading_ = false;
        deadline_ns_ = 0;
      }
      const char* name = ev.state() == mcl::v1::LOST        ? "lost"
                         : ev.state() == mcl::v1::FOLLOWER  ? "follower"
                         : ev.state() == mcl::v1::NO_LEADER ? "no_leader"
                                                            : "unknown";
      // A state other than LEADER ends leadership, LOST or not.
      Log(was && ev.state() != mcl::v1::LOST ? "lost" : name,
          absl::StrCat(where, ",\"state\":\"", name,
                       "\",\"token\":", ev.leader().fencing_token(),
                       ",\"identity\":", JsonString(ev.leader().identity()),
                       ",\"reason\":", JsonString(ev.reason())));
      return true;
    }
    const int64_t token = ev.leader().fencing_token();
    const bool has_bound = ev.has_validity();
    const int64_t valid_until =
        has_bound ? ev.validity().valid_until_monotonic_ns() : 0;
    const int64_t sent = has_bound ? ev.validity().sent_monotonic_ns() : 0;
    if (has_bound && now < sent) {
      Log("clock_error",
          absl::StrCat(where, ",\"token\":", token, ",\"sent\":", sent,
                       ",\"msg\":\"LEADER sent at a later CLOCK_MONOTONIC "
                       "than it was received: not on the sidecar's clock\""));
      absl::MutexLock l(&mu_);
      leading_ = false;
      deadline_ns_ = 0;
      return false;
    }
    bool renewal;
    {
      absl::MutexLock l(&mu_);
      renewal = leading_ && token == token_;
      leading_ = true;
      token_ = token;
      deadline_ns_ = valid_until;
    }
    Log(renewal ? "renewal" : "leader",
        absl::StrCat(where, ",\"token\":", token,
                     ",\"valid_until\":", valid_until, ",\"sent\":", sent,
                     ",\"identity\":", JsonString(ev.leader().identity())));
    wake_.Notify();
    return true;
  }

  // Stops acting as leader at the bound when no later LEADER moved it.
  void DeadlineLoop() {
    while (true) {
      int64_t deadline;
      {
        absl::MutexLock l(&mu_);
        if (stopping_) return;
        deadline = leading_ ? deadline_ns_ : 0;
      }
      if (deadline <= 0) {
        wake_.WaitUntil(absl::InfiniteDuration());
        continue;
      }
      if (MonoNs() < deadline) {
        wake_.WaitUntil(absl::Nanoseconds(deadline));
        continue;
      }
      bool fired = false;
      int64_t token = 0;
      {
        absl::MutexLock l(&mu_);
        if (leading_ && deadline_ns_ == deadline) {
          leading_ = false;
          deadline_ns_ = 0;
          fired = true;
          token = token_;
        }
      }
      if (fired) {
        Log("deadline",
            absl::StrCat(",\"token\":", token, ",\"valid_until\":", deadline));
      }
    }
  }

  void ObserveLoop() {
    for (int stream = 1; !stopping(); ++stream) {
      grpc::ClientContext ctx;
      {
        absl::MutexLock l(&mu_);
        if (stopping_) return;
        observe_ctx_ = &ctx;
      }
      mcl::v1::ObserveRequest req;
      req.mutable_lock()->set_name(o_.lock);
      req.mutable_lock()->set_namespace_(o_.lock_namespace);
      auto reader = stub_->Observe(&ctx, req);
      mcl::v1::LeadershipEvent ev;
      const std::string observer =
          JsonString(absl::StrCat(o_.name, "/o", stream));
      while (reader->Read(&ev)) {
        const bool named =
            ev.state() == mcl::v1::FOLLOWER || ev.state() == mcl::v1::LEADER;
        Log("observe",
            absl::StrCat(
                ",\"observer\":", observer, ",\"identity\":",
                JsonString(named ? ev.leader().identity() : ""),
                ",\"token\":", named ? ev.leader().fencing_token() : 0));
      }
      reader->Finish();
      {
        absl::MutexLock l(&mu_);
        observe_ctx_ = nullptr;
      }
      if (!Backoff(absl::Milliseconds(200))) return;
    }
  }

  const Options o_;
  std::unique_ptr<mcl::v1::Election::Stub> stub_;
  mcl::Wakeup wake_;       // the deadline thread: leadership changed
  mcl::Wakeup stop_wake_;  // backoffs: stopping
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* campaign_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  grpc::ClientContext* observe_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool leading_ ABSL_GUARDED_BY(mu_) = false;
  int64_t token_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t deadline_ns_ ABSL_GUARDED_BY(mu_) = 0;  // 0: no bound
};

bool ParseFlags(int argc, char** argv, Options* o) {
  std::map<std::string, std::string> f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--observe") {
      o->observe = true;
      continue;
    }
    auto eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos) {
      fprintf(stderr, "mcl-recorder: expected --flag=value, got '%s'\n",
              a.c_str());
      return false;
    }
    f[a.substr(2, eq - 2)] = a.substr(eq + 1);
  }
  o->sidecar = f["sidecar"];
  o->lock = f["lock"];
  o->lock_namespace = f["namespace"];
  o->identity = f["identity"];
  o->name = f.count("name") != 0 ? f["name"] : o->identity;
  if (f.count("lease-duration") != 0 &&
      !absl::SimpleAtoi(f["lease-duration"], &o->lease_duration_seconds)) {
    fprintf(stderr, "mcl-recorder: --lease-duration is a number of seconds\n");
    return false;
  }
  if (o->sidecar.empty() || o->lock.empty() || o->identity.empty()) {
    fprintf(stderr,
            "usage: mcl-recorder --sidecar=HOST:PORT --lock=NAME "
            "--identity=ID [--namespace=NS] [--name=APP] "
            "[--lease-duration=SECONDS] [--observe]\n");
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseFlags(argc, argv, &o)) return 2;
  mcl::BlockStopSignals();
  Recorder recorder(o);
  std::thread stopper([&] {
    mcl::WaitForStopSignal();
    recorder.Stop();
  });
  stopper.detach();
  recorder.Run();
  return 0;
}
