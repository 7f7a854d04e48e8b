#include "client-stubs/cpp/run_command.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "client-stubs/cpp/child_process.h"
#include "client-stubs/cpp/leadership.h"
#include "common/backoff.h"
#include "common/clock.h"
#include "common/stop_signals.h"

extern char** environ;

namespace mcl::cli {
namespace {

using ::mcl::client::LeaderContext;

void Log(const std::string& line) {
  std::fprintf(stderr, "mcl: %s\n", line.c_str());
  std::fflush(stderr);
}

// The environment CMD gets: ours, with the MCL_* grant variables replaced.
std::vector<std::string> GrantEnvironment(const Flags& f,
                                          const LeaderContext& ctx) {
  static const char* const kOwn[] = {"MCL_FENCING_TOKEN=",
                                     "MCL_LOCK=",
                                     "MCL_NAMESPACE=",
                                     "MCL_LEADER_IDENTITY=",
                                     "MCL_VALID_UNTIL_MONOTONIC_NS=",
                                     "MCL_VALID_UNTIL="};
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    bool own = false;
    for (const char* p : kOwn) own = own || absl::StartsWith(*e, p);
    if (!own) env.emplace_back(*e);
  }
  const absl::Duration until = ctx.valid_until();
  // For people reading it: the bound as a wall-clock time (the clock may be
  // stepped; MCL_VALID_UNTIL_MONOTONIC_NS is the exact one).
  const absl::Time wall = absl::Now() + (until - Clock::Real()->Monotonic());
  env.push_back(absl::StrCat("MCL_FENCING_TOKEN=", ctx.fencing_token()));
  env.push_back(absl::StrCat("MCL_LOCK=", f.lock));
  if (!f.lock_namespace.empty()) {
    env.push_back(absl::StrCat("MCL_NAMESPACE=", f.lock_namespace));
  }
  env.push_back(absl::StrCat("MCL_LEADER_IDENTITY=", ctx.grant().identity()));
  env.push_back(absl::StrCat("MCL_VALID_UNTIL_MONOTONIC_NS=",
                             absl::ToInt64Nanoseconds(until)));
  env.push_back(absl::StrCat(
      "MCL_VALID_UNTIL=",
      absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", wall, absl::UTCTimeZone())));
  return env;
}

// The LeaderFn of `mcl run` and what it learns for the exit code.
class Runner {
 public:
  explicit Runner(const Flags& f) : flags_(f) {}

  absl::Status Lead(const LeaderContext& ctx) {
    ctx.OnCancel([this] { wake_.Notify(); });
    Backoff backoff({absl::Milliseconds(100), absl::Seconds(10), 2});
    for (;;) {
      // The clock, not only the cancellation: the supervisor may not have
      // cancelled a term whose bound passed a moment ago.
      if (!ctx.IsLeaderNow()) return absl::OkStatus();
      auto child =
          ChildProcess::Spawn(flags_.command, GrantEnvironment(flags_, ctx),
                              [this] { wake_.Notify(); });
      if (!child.ok()) {
        spawn_failed_ = true;
        return child.status();
      }
      const absl::Duration started = Clock::Real()->Monotonic();
      Log(absl::StrFormat(
          "leading %s with fencing token %d (bound in %s); started %s, pid "
          "%d",
          flags_.lock, ctx.fencing_token(),
          absl::FormatDuration(
              absl::Trunc(ctx.valid_until() - started, absl::Milliseconds(1))),
          flags_.command[0], (*child)->pid()));
      while (!(*child)->exited() && !ctx.cancelled()) {
        wake_.WaitUntil(absl::InfiniteDuration());
      }
      if (ctx.cancelled()) {
        Stop(**child, ctx.cancel_reason());
        return absl::OkStatus();
      }
      const int code = (*child)->Reap();
      if (!flags_.restart) {
        Log(absl::StrCat(flags_.command[0], " exited with status ", code,
                         " while leading; resigning"));
        cmd_exit_ = code;
        return code == 0
                   ? absl::OkStatus()
                   : absl::AbortedError(absl::StrCat(
                         flags_.command[0], " exited with status ", code));
      }
      if (Clock::Real()->Monotonic() - started >= absl::Seconds(10)) {
        backoff.Reset();
      }
      const absl::Duration delay = backoff.Next();
      Log(absl::StrCat(
          flags_.command[0], " exited with status ", code,
          " while leading; --restart: starting it again in ",
          absl::FormatDuration(absl::Trunc(delay, absl::Milliseconds(1)))));
      if (ctx.WaitForCancel(delay)) return absl::OkStatus();
    }
  }

  // A second SIGTERM/SIGINT: do not wait out the grace.
  void Hurry() {
    hurry_ = true;
    wake_.Notify();
  }
  std::optional<int> cmd_exit() const { return cmd_exit_; }
  bool spawn_failed() const { return spawn_failed_; }

 private:
  // SIGTERM to the group, SIGKILL after the grace (or a second signal), reap.
  void Stop(ChildProcess& child, const std::string& why) {
    Log(absl::StrCat("leadership ended (", why, "): SIGTERM to ",
                     flags_.command[0], "'s process group ", child.pid()));
    child.SignalGroup(SIGTERM);
    const absl::Duration deadline = Clock::Real()->Monotonic() + flags_.grace;
    while (!child.exited() && !hurry_ &&
           Clock::Real()->Monotonic() < deadline) {
      wake_.WaitUntil(deadline);
    }
    if (!child.exited()) {
      Log(absl::StrCat(flags_.command[0], " still runs ",
                       hurry_ ? "after a second signal" : "after --grace",
                       ": SIGKILL to its process group"));
      child.SignalGroup(SIGKILL);
      while (!child.exited()) wake_.WaitUntil(absl::InfiniteDuration());
    }
    Log(absl::StrCat(flags_.command[0], " stopped (status ", child.Reap(),
                     ")"));
  }

  const Flags& flags_;
  Wakeup wake_;  // CMD exited, the term was cancelled, Hurry()
  std::atomic<bool> hurry_{false};
  // Written by the fn thread before Lead returns; read after Wait().
  std::optional<int> cmd_exit_;
  bool spawn_failed_ = false;
};

// Logs state changes, not renewals.
class EventLog {
 public:
  explicit EventLog(std::string lock) : lock_(std::move(lock)) {}
  void Event(const mcl::v1::LeadershipEvent& e) {
    const int64_t token = e.leader().fencing_token();
    if (e.state() == last_ && token == last_token_) return;  // renewal
    last_ = e.state();
    last_token_ = token;
    switch (e.state()) {
      case mcl::v1::LEADER:
        Log(absl::StrCat("LEADER of ", lock_, " (fencing token ", token, ")"));
        break;
      case mcl::v1::FOLLOWER:
        Log(absl::StrCat("following ", e.leader().identity(), " of ",
                         e.leader().cluster(), " (fencing token ", token, ")"));
        break;
      case mcl::v1::NO_LEADER:
        Log(absl::StrCat("nobody leads ", lock_, " yet"));
        break;
      case mcl::v1::LOST:
        Log(absl::StrCat("LOST (", e.reason(), ")"));
        break;
      default:
        Log(absl::StrCat("event in state ", static_cast<int>(e.state())));
    }
  }

 private:
  const std::string lock_;
  mcl::v1::State last_ = mcl::v1::STATE_UNSPECIFIED;
  int64_t last_token_ = -1;
};

// What the signal thread may touch; cleared before they go away. Leaked on
// purpose: the detached signal thread may outlive main's locals.
struct Signals {
  absl::Mutex mu;
  client::Leadership* leadership ABSL_GUARDED_BY(mu) = nullptr;
  Runner* runner ABSL_GUARDED_BY(mu) = nullptr;
  bool stopped ABSL_GUARDED_BY(mu) = false;
};

int ExitFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return kOk;
    case absl::StatusCode::kUnavailable:
      return kUnreachable;
    case absl::StatusCode::kInvalidArgument:
      return kUsage;
    default:
      return kRefused;
  }
}

}  // namespace

int RunMain(const Flags& f) {
  absl::StatusOr<std::string> exe = FindExecutable(f.command[0]);
  if (!exe.ok()) {
    Log(std::string(exe.status().message()));
    return absl::IsNotFound(exe.status()) ? kNotFound : kCannotExec;
  }
  Runner runner(f);
  EventLog events(f.lock_namespace.empty()
                      ? f.lock
                      : absl::StrCat(f.lock_namespace, "/", f.lock));
  client::LeadershipOptions o;
  o.lock = f.lock;
  o.lock_namespace = f.lock_namespace;
  o.identity = f.identity;
  o.lease_duration_seconds =
      static_cast<int>(absl::ToInt64Seconds(f.lease_duration));
  o.connect_timeout = f.connect_timeout;
  o.on_event = [&events](const mcl::v1::LeadershipEvent& e) {
    events.Event(e);
  };
  o.on_disconnect = [](const absl::Status& s, absl::Duration retry) {
    Log(absl::StrCat(
        "the campaign stream broke (", s.ToString(), "); campaigning again in ",
        absl::FormatDuration(absl::Trunc(retry, absl::Milliseconds(1)))));
  };
  auto started = client::Leadership::Start(
      o, [&runner](const LeaderContext& ctx) { return runner.Lead(ctx); });
  if (!started.ok()) {
    Log(std::string(started.status().message()));
    return ExitFor(started.status());
  }
  std::unique_ptr<client::Leadership> leadership = std::move(*started);

  static Signals* signals = new Signals();
  {
    absl::MutexLock l(&signals->mu);
    signals->leadership = leadership.get();
    signals->runner = &runner;
  }
  std::thread([] {
    for (;;) {
      const int sig = WaitForStopSignal();
      absl::MutexLock l(&signals->mu);
      if (signals->leadership == nullptr) return;
      if (!signals->stopped) {
        Log(absl::StrCat(sig == SIGINT ? "SIGINT" : "SIGTERM",
                         ": stopping the command and resigning"));
        signals->stopped = true;
        signals->leadership->Stop();
      } else {
        signals->runner->Hurry();
      }
    }
  }).detach();

  const absl::Status result = leadership->Wait();
  bool stopped;
  {
    absl::MutexLock l(&signals->mu);
    stopped = signals->stopped;
    signals->leadership = nullptr;
    signals->runner = nullptr;
  }
  leadership.reset();
  if (runner.cmd_exit().has_value()) return *runner.cmd_exit();
  if (stopped && result.ok()) {
    Log("resigned");
    return kOk;
  }
  if (!result.ok()) Log(std::string(result.message()));
  if (runner.spawn_failed()) return kCannotExec;
  return ExitFor(result);
}

}  // namespace mcl::cli
