// mcl-recorder: the fault campaign's app. It campaigns for one lock through
// its sidecar with the C++ client library (client-stubs/cpp/leadership.h) and
// writes what it did, and what it was told, as JSON lines on stdout, each
// stamped with CLOCK_MONOTONIC in nanoseconds (every process of the campaign
// shares this machine's kernel, so these stamps compare across processes):
//
//   {"t":T,"app":A,"stream":K,"ev":"leader","token":N,"valid_until":V}
//   ev: start | leader | renewal | lost | end | disconnect | observe |
//       told_lost | told_leader | told_follower | told_no_leader
//
// "leader" is logged when the library starts the leader work (the app acts
// from then), "lost" when the library cancels it (LOST, stream end, or the
// validity bound on its own monotonic clock), "renewal" when a LEADER with the
// acting token moves the bound; the checker ends the app's leadership at the
// first of "lost", "end", its death, or the latest bound. "told_*" lines are
// the sidecar's events as the library applied them, for reading. When the
// library ends a campaign (a second candidacy of an identity refused, a clock
// error, the sidecar's shutdown) the recorder campaigns again after a
// backoff, as a long-running app would.
//
// With --observe it also holds an Observe stream and logs every view
// ("observe", with the identity and token it names; the observer is
// "<app>/o<K>", one per stream).
//
// SIGTERM or SIGINT: stops the campaign (a resign) and exits 0.
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
#include "client-stubs/cpp/leadership.h"
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
    std::thread observer;
    if (o_.observe) observer = std::thread([this] { ObserveLoop(); });
    CampaignLoop();
    if (observer.joinable()) observer.join();
  }

  void Stop() {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    if (leadership_ != nullptr) leadership_->Stop();
    if (observe_ctx_ != nullptr) observe_ctx_->TryCancel();
    stop_wake_.Notify();
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

  // Campaigns through the C++ client library until stopped; a campaign the
  // library ends (ALREADY_EXISTS for a second candidacy of an identity, a
  // clock error, the sidecar's shutdown) starts again after a backoff, as a
  // long-running app would.
  void CampaignLoop() {
    absl::Duration backoff = absl::Milliseconds(100);
    for (int stream = 1; !stopping(); ++stream) {
      mcl::client::LeadershipOptions lo;
      lo.sidecar_address = o_.sidecar;
      lo.lock = o_.lock;
      lo.lock_namespace = o_.lock_namespace;
      lo.identity = o_.identity;
      lo.lease_duration_seconds = o_.lease_duration_seconds;
      lo.on_event = [this, stream](const mcl::v1::LeadershipEvent& ev) {
        OnEvent(stream, ev);
      };
      lo.on_disconnect = [this, stream](const absl::Status& st,
                                        absl::Duration retry_in) {
        Log("disconnect",
            absl::StrCat(",\"stream\":", stream,
                         ",\"code\":", static_cast<int>(st.code()),
                         ",\"msg\":", JsonString(std::string(st.message()))));
      };
      Log("start", absl::StrCat(",\"stream\":", stream,
                                ",\"identity\":", JsonString(o_.identity)));
      auto leadership = mcl::client::Leadership::Start(
          lo, [this, stream](const mcl::client::LeaderContext& ctx) {
            return Lead(stream, ctx);
          });
      absl::Status st = leadership.status();
      if (leadership.ok()) {
        {
          absl::MutexLock l(&mu_);
          leadership_ = leadership->get();
        }
        if (stopping()) (*leadership)->Stop();
        st = (*leadership)->Wait();
        absl::MutexLock l(&mu_);
        leadership_ = nullptr;
      }
      Log("end",
          absl::StrCat(",\"stream\":", stream,
                       ",\"code\":", static_cast<int>(st.code()),
                       ",\"msg\":", JsonString(std::string(st.message()))));
      backoff = st.ok() ? absl::Milliseconds(100)
                        : std::min(backoff * 2, absl::Seconds(1));
      if (!Backoff(backoff)) return;
    }
  }

  // The leader work, run by the library while this app leads: it logs when
  // the app starts and stops acting as leader; the library cancels it at LOST,
  // stream end or the validity bound.
  absl::Status Lead(int stream, const mcl::client::LeaderContext& ctx) {
    {
      absl::MutexLock l(&mu_);
      acting_token_ = ctx.fencing_token();
      bound_ns_ = absl::ToInt64Nanoseconds(ctx.valid_until());
    }
    Log("leader",
        absl::StrCat(
            ",\"stream\":", stream, ",\"token\":", ctx.fencing_token(),
            ",\"valid_until\":", absl::ToInt64Nanoseconds(ctx.valid_until()),
            ",\"identity\":", JsonString(ctx.grant().identity())));
    ctx.WaitForCancel(absl::InfiniteDuration());
    {
      absl::MutexLock l(&mu_);
      acting_token_ = 0;
    }
    Log("lost",
        absl::StrCat(",\"stream\":", stream, ",\"token\":", ctx.fencing_token(),
                     ",\"reason\":", JsonString(ctx.cancel_reason())));
    return absl::OkStatus();
  }

  // What the sidecar said, as the library applied it. A renewal (LEADER with
  // the acting token, before the bound) moves the bound the checker uses;
  // everything else is logged for reading only ("told_*"): the app's
  // leadership ends when the library cancels Lead, not when an event arrives.
  void OnEvent(int stream, const mcl::v1::LeadershipEvent& ev) {
    const int64_t now = MonoNs();
    const int64_t token = ev.leader().fencing_token();
    if (ev.state() == mcl::v1::LEADER && ev.has_validity()) {
      bool renewal;
      {
        absl::MutexLock l(&mu_);
        renewal = token == acting_token_ && now < bound_ns_;
        if (renewal) bound_ns_ = ev.validity().valid_until_monotonic_ns();
      }
      if (renewal) {
        Log("renewal",
            absl::StrCat(
                ",\"stream\":", stream, ",\"token\":", token,
                ",\"valid_until\":", ev.validity().valid_until_monotonic_ns(),
                ",\"sent\":", ev.validity().sent_monotonic_ns()));
        return;
      }
    }
    const char* name = ev.state() == mcl::v1::LOST        ? "told_lost"
                       : ev.state() == mcl::v1::LEADER    ? "told_leader"
                       : ev.state() == mcl::v1::FOLLOWER  ? "told_follower"
                       : ev.state() == mcl::v1::NO_LEADER ? "told_no_leader"
                                                          : "told_unknown";
    Log(name, absl::StrCat(",\"stream\":", stream, ",\"token\":", token,
                           ",\"identity\":", JsonString(ev.leader().identity()),
                           ",\"reason\":", JsonString(ev.reason())));
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
  mcl::Wakeup stop_wake_;  // backoffs: stopping
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  mcl::client::Leadership* leadership_ ABSL_GUARDED_BY(mu_) = nullptr;
  grpc::ClientContext* observe_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  int64_t acting_token_ ABSL_GUARDED_BY(mu_) = 0;  // 0: not acting
  int64_t bound_ns_ ABSL_GUARDED_BY(mu_) = 0;      // the acting term's bound
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
