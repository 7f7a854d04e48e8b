// Controller's lifecycle (controller.h): standby, activation, the wait for a
// reason to stand down, stand-down, and the SIGTERM release. All of it runs on
// the thread that called Run(); Activate() starts the replica Lease's renewer
// thread and, on the first activation, the workers.
#include <malloc.h>

#include <algorithm>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/backoff.h"
#include "common/log.h"
#include "controller/controller.h"

namespace mcl::controller {

const char* Controller::ReasonName(Reason r) {
  switch (r) {
    case Reason::kStop:
      return "stopping";
    case Reason::kLeaseLost:
      return "the replica Lease was lost (its fence passed)";
    case Reason::kDeposed:
      return "deposed: another replica claimed a newer epoch";
    case Reason::kApiserverGone:
      return "the apiserver does not answer, and no local candidate can count "
             "itself leader any more";
    case Reason::kFailed:
      return "could not become active";
  }
  return "?";
}

void Controller::StopRenewer() {
  if (renew_stop_) renew_stop_->Set();
  if (renewer_.joinable()) renewer_.join();
}

bool Controller::Activate(const StopFlag* stop) {
  lease_lost_ = false;
  renew_stop_ = std::make_unique<StopFlag>(clock_);
  renewer_ = std::thread([this, flag = renew_stop_.get()] {
    if (election_->Renew(flag) == ReplicaElection::Outcome::kLost) {
      lease_lost_ = true;
      lifecycle_wake_.Notify();
    }
  });
  auto still_ours = [&] {
    return !stop->IsSet() && !lease_lost_.load() && election_->MayAct();
  };
  // The epoch first (design.md §"Replica epoch"): from its write on, no Txn
  // of an earlier active replica can succeed.
  Backoff backoff({absl::Milliseconds(100), absl::Seconds(5), 2.0});
  while (true) {
    if (!still_ours()) return false;
    auto e = epoch_->Claim();
    if (e.ok()) break;
    LogWarn("cannot claim the replica epoch; retrying",
            {{"error", std::string(e.status().message())}});
    stop->WaitFor(backoff.Next());
  }
  // The session decides whether the previous one is adopted; locks are
  // reconciled only after, so that statuses naming a live session count as
  // announced grants (design.md §Ack).
  backoff.Reset();
  while (true) {
    if (!still_ours()) return false;
    absl::Status st = session_->Establish(true);
    if (st.ok()) break;
    LogWarn("cannot reach etcd for the session; retrying",
            {{"error", std::string(st.message())}});
    stop->WaitFor(backoff.Next());
  }
  session_->Start();
  StartPartsOnce(stop);
  // Another replica may have acted since our last activation: per-lock
  // memory starts over as after a restart.
  table_.Restart();
  acting_ = true;
  state_ = State::kActive;
  session_->Wake();  // publish the session's heartbeat now
  EnqueueAll();
  return true;
}

void Controller::StartPartsOnce(const StopFlag* stop) {
  if (parts_started_) return;
  parts_started_ = true;
  keys_->Start();
  informer_->Start();
  while (!stop->IsSet() && !informer_->WaitForSync(absl::Milliseconds(200))) {
  }
  synced_ = informer_->HasSynced();
  LogInfo("informer synced", {{"locks", absl::StrCat(informer_->Size())}});
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] {
      std::string key;
      while (queue_.Get(&key)) {
        worker_->Reconcile(key);
        queue_.Done(key);
      }
    });
  }
}

Controller::Reason Controller::WaitForStandDown(const StopFlag* stop) {
  absl::Duration next_trim = clock_->Monotonic() + absl::Seconds(30);
  while (true) {
    if (stop->IsSet()) return Reason::kStop;
    if (lease_lost_.load() || !election_->MayAct()) return Reason::kLeaseLost;
    if (epoch_->deposed()) return Reason::kDeposed;
    const absl::Duration now = clock_->Monotonic();
    absl::Duration wake = next_trim;
    // design.md §Stand-down: the apiserver does not answer, so no newer
    // confirmation can reach a sidecar; once the release deadline passes no
    // local candidate can count itself leader, and the keys may go.
    if (std::optional<absl::Duration> u = apiserver_->UnreachableAt()) {
      const absl::Duration at = std::max(*u, session_->ReleaseDeadline());
      if (now >= at) return Reason::kApiserverGone;
      wake = std::min(wake, at);
    }
    wake = std::min(wake, election_->Fence());
    if (now >= next_trim) {
      // Return freed pages after bursts (initial list, mass grants) instead of
      // keeping the peak.
      malloc_trim(0);
      next_trim = now + absl::Seconds(30);
      continue;
    }
    lifecycle_wake_.WaitUntil(wake);
  }
}

// Deletes the current session's keys (epoch-guarded), retrying while etcd
// does not answer, until `give_up_at` (after which the keys go with the
// lease: its keepalive stops next).
void Controller::ReleaseRemaining(absl::Duration give_up_at) {
  const int64_t sid = session_->id();
  if (sid == 0) return;
  Backoff backoff({absl::Milliseconds(50), absl::Seconds(1), 2.0});
  while (true) {
    const absl::Status st = executor_->ReleaseHeld(sid);
    if (st.ok() || absl::IsAborted(st)) {
      if (!st.ok())
        LogWarn("not releasing", {{"why", std::string(st.message())}});
      return;
    }
    if (clock_->Monotonic() + backoff.Next() >= give_up_at) {
      LogWarn("releasing held keys failed; they expire with the session",
              {{"error", std::string(st.message())}});
      return;
    }
    released_.WaitFor(backoff.Next());
  }
}

void Controller::StandDown(Reason why) {
  acting_ = false;  // workers and the executor stop at once (MayAct)
  state_ = State::kStandingDown;
  metrics_.stand_downs++;
  LogWarn("standing down",
          {{"why", ReasonName(why)}, {"held", absl::StrCat(LocksHeld())}});
  StopRenewer();
  if (why != Reason::kDeposed && session_->id() != 0) {
    // No confirmation newer than those already tried: from the release
    // deadline on, no local candidate can count itself leader, and the keys
    // can go without acks (another cluster then leads by watch).
    session_->SetShuttingDown();
    const absl::Duration at = session_->ReleaseDeadline();
    while (clock_->Monotonic() < at) released_.WaitUntil(at);
    ReleaseRemaining(at + options_.session_ttl);
  }
  // A deposed replica's session may be the new active replica's: only our
  // keepalive stops, the lease is never revoked.
  session_->Stop();
  epoch_->Clear();
  state_ = State::kStandby;
  LogInfo("stood down; waiting for the replica Lease again",
          {{"why", ReasonName(why)}});
}

int Controller::Run(const StopFlag* stop) {
  auto http =
      HttpServer::Start(options_.metrics_address, "--metrics-address",
                        [this](absl::string_view path) { return Serve(path); });
  if (!http.ok()) {
    LogError("metrics server",
             {{"error", std::string(http.status().message())}});
    return 2;
  }
  http_ = std::move(*http);
  LogInfo("metrics listening", {{"address", absl::StrJoin(http_->bound(), ",")},
                                {"port", absl::StrCat(http_->port())}});
  LogInfo("starting",
          {{"cluster", options_.cluster},
           {"identity", options_.identity},
           {"etcd", absl::StrJoin(options_.etcd_endpoints, ",")},
           {"key_prefix", options_.key_prefix},
           {"session_ttl", absl::FormatDuration(options_.session_ttl)},
           {"namespace", options_.namespace_}});
  // Wakes the lifecycle when `stop` is set (a StopFlag cannot notify).
  std::thread stop_watch([this, stop] {
    stop->WaitFor(absl::InfiniteDuration());
    lifecycle_wake_.Notify();
  });
  bool shut_down = false;
  while (!stop->IsSet()) {
    state_ = State::kStandby;
    if (!election_->Acquire(stop)) break;
    const Reason why =
        Activate(stop) ? WaitForStandDown(stop) : Reason::kFailed;
    if (why == Reason::kStop && acting_.load()) {
      Shutdown();
      shut_down = true;
      break;
    }
    StandDown(why);
  }
  if (!shut_down) {
    LogInfo("stopped while not active");
    StopRenewer();
    election_->Release();
  }
  stop_watch.join();
  http_.reset();
  return 0;
}

// SIGTERM: revoke every lock (waiting for acks, bounded by the ack timeout),
// then delete what is left.
void Controller::Shutdown() {
  const absl::Duration t0 = clock_->Monotonic();
  LogInfo("shutting down: releasing held locks",
          {{"held", absl::StrCat(LocksHeld())}});
  session_->SetShuttingDown();
  EnqueueAll();
  // Every release and every loss of the session notifies released_; the one
  // change by time alone is the session's loss deadline, so each wait ends at
  // that at the latest.
  const absl::Duration deadline = t0 + options_.shutdown_timeout;
  for (absl::Duration now = clock_->Monotonic(); now < deadline;
       now = clock_->Monotonic()) {
    if (LocksHeld() == 0) break;
    absl::Duration until = deadline;
    if (std::optional<absl::Duration> loss = session_->LossDeadline()) {
      until = std::min(until, *loss);
    }
    released_.WaitUntil(until);
  }
  const int64_t left = LocksHeld();
  // Heartbeats stopped at t0, so the release deadline is past (deadline >=
  // t0 + TTL·(1+rho)+m): what is left goes without acks, epoch-guarded.
  ReleaseRemaining(clock_->Monotonic() + absl::Seconds(2));
  stopping_ = true;
  acting_ = false;
  queue_.ShutDown();
  StopRenewer();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
  keys_->Stop();
  session_->Stop();
  informer_->Stop();
  election_->Release();
  LogInfo("stopped",
          {{"released_after", absl::FormatDuration(clock_->Monotonic() - t0)},
           {"left_to_release_without_ack", absl::StrCat(left)}});
}

}  // namespace mcl::controller
