// mcl C++ client library: run code only while this process leads an mcl lock.
//
//   #include "client-stubs/cpp/leadership.h"
//   mcl::client::LeadershipOptions o;
//   o.lock = "my-app.leader";
//   absl::Status s = mcl::client::RunWhileLeader(o,
//       [](const mcl::client::LeaderContext& ctx) -> absl::Status {
//         while (ctx.IsLeaderNow()) {
//           DoOneUnitOfLeaderWork(ctx.fencing_token());  // pass the token on
//           ctx.WaitForCancel(absl::Seconds(1));
//         }
//         return absl::OkStatus();  // returning while still leader = done
//       });
//
// The stable API (the fault campaign's recorder and the `mcl` command use
// it; changes to it are additions only):
//   LeadershipOptions                           what to campaign for, where
//   Leadership::Start(options, fn) / Stop() / Wait() / IsLeaderNow() /
//     Current()
//   RunWhileLeader(options, fn)                 Start + Wait
//   LeaderContext: fencing_token() lock() valid_until() IsLeaderNow()
//                  cancelled() WaitForCancel() OnCancel()
//   SidecarAddress(), ValidateLockName()        the defaults the stubs use
//
// What it does. Campaigns for `options.lock` through the mcl sidecar
// (proto/mcl/v1/election.proto) and runs `fn` on a thread of its own while this
// candidate leads. `fn`'s LeaderContext is cancelled — its cancellation flag is
// set and its OnCancel callbacks run — at the first of:
//   - LOST (or any event other than a renewal of the same grant);
//   - the end of the Campaign stream (sidecar restart, connection loss);
//   - the local deadline: the `validity` bound of the latest LEADER, on this
//     node's CLOCK_MONOTONIC, when no renewal moved it (a frozen sidecar, a
//     stalled connection). It is waited for with mcl::Wakeup (steady_clock),
//     never with abseil's timed waits, which follow wall-clock steps;
//   - Stop().
// `fn` must then return promptly; the next LEADER (a new grant, or the same
// grant confirmed again after a lapse) runs it again with a new context. A
// renewal (LEADER with the same token before the bound) only moves the bound.
// `fn` returning *while still leader* means the leader work is done: the
// campaign ends (resigns) and Wait() returns fn's status.
//
// Safety: the context's IsLeaderNow() is true only before the latest bound of
// an unbroken term, and the bound is the sidecar's own LOST deadline, which
// comes before any other candidate can be granted the lock (leader_state.h
// has the argument). Leader work that checks IsLeaderNow() (or that stops at
// the cancellation) therefore never overlaps another candidate's, as long as
// each unit of work is short compared with the bound's slack; pass
// fencing_token() to storage so it can reject a deposed leader's writes
// (pauses of this process, e.g. a GC or SIGSTOP, are what tokens defend
// against). Stop() resigns only after fn has returned.
//
// Safe defaults, decided here:
//   - A LEADER without a validity bound (a sidecar older than the bound) is
//     never acted on: the campaign fails with FAILED_PRECONDITION.
//   - A LEADER whose `sent_monotonic_ns` is later than our CLOCK_MONOTONIC on
//     receipt (we do not share the sidecar's clock) fails the campaign with
//     FAILED_PRECONDITION (the clock check of the proto's Validity).
//   - A reconnect never carries leadership over: after the stream ends the
//     app leads again only on a fresh LEADER of the new stream.
//
// Reconnects: when the stream ends with OK (the campaign was resigned through
// the Resign RPC, e.g. `mcl resign`: a step-down, as in every mcl client
// library), UNAVAILABLE (the sidecar shut down — "the sidecar is shutting
// down" — restarted, or is not up yet) or any code not listed below, the
// current term ends at once (the context is cancelled) and the library
// campaigns again after a jittered exponential backoff (common/backoff.h).
// Wait() returns, and the campaign is over, on:
//   OK                   Stop() was called, or fn returned OK while leader;
//   fn's error           fn returned an error while leader;
//   INVALID_ARGUMENT     bad options (from Start) or a request the sidecar
//                        refused (the message names the field);
//   NOT_FOUND            the lock's namespace does not exist;
//   ALREADY_EXISTS       this identity already campaigns for the lock (on
//                        the first stream only: after a stream that worked,
//                        it may be our own previous candidacy, and is
//                        retried with backoff);
//   FAILED_PRECONDITION  see "Safe defaults";
//   PERMISSION_DENIED, UNAUTHENTICATED, UNIMPLEMENTED  from the sidecar;
//   UNAVAILABLE          the sidecar was not reached within
//                        `connect_timeout` of Start (default: never give up).
//
// Threads: one reads the Campaign stream (and reconnects), one supervises the
// terms and the deadline, and fn runs on a third, started per term. Options'
// callbacks run on the stream thread and must not block.
#ifndef MCL_CLIENT_STUBS_CPP_LEADERSHIP_H_
#define MCL_CLIENT_STUBS_CPP_LEADERSHIP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/backoff.h"
#include "common/clock.h"
#include "mcl/v1/election.pb.h"

namespace mcl::client {

struct LeadershipOptions {
  // The sidecar: "HOST:PORT" or "unix:///path". Empty: SidecarAddress().
  std::string sidecar_address;
  // The lock's name (a DNS-1123 subdomain); required.
  std::string lock;
  // The lock's namespace; empty: the sidecar's own namespace.
  std::string lock_namespace;
  // The candidate's identity; empty: the sidecar's default (pod name + uid).
  std::string identity;
  // CampaignRequest.lease_duration_seconds: 0 (the sidecar's default) or
  // [2, 3600].
  int lease_duration_seconds = 0;
  // Delay between campaign attempts after a transient failure.
  Backoff::Options reconnect = {absl::Milliseconds(100), absl::Seconds(5), 2};
  // How long Start may go without any event from the sidecar before Wait()
  // returns UNAVAILABLE. Once an event arrived, the library reconnects forever.
  absl::Duration connect_timeout = absl::InfiniteDuration();
  // Informational (logging): every event received, once the library has
  // applied it (after a LEADER, fn may already be starting; after a LOST,
  // IsLeaderNow() is already false) — not one it refused (see "Safe
  // defaults"; Wait() returns why); and every transient stream failure with
  // the delay before the next attempt. Called on the stream thread; must not
  // block or call Wait().
  std::function<void(const mcl::v1::LeadershipEvent&)> on_event;
  std::function<void(const absl::Status&, absl::Duration retry_in)>
      on_disconnect;
  // Tests only: the monotonic clock (must be CLOCK_MONOTONIC's time, or a
  // FakeClock that the test's fake sidecar also reads).
  Clock* clock = Clock::Real();
};

// What fn gets: the grant it leads under, and its cancellation. Valid while fn
// runs. All methods are thread-safe.
class LeaderContext {
 public:
  virtual ~LeaderContext() = default;
  // The grant's fencing token (> 0): pass it to whatever you write.
  virtual int64_t fencing_token() const = 0;
  // The grant as the sidecar reported it (identity, cluster, token, acquire
  // time) and the lock ("namespace/name" as the sidecar named it).
  virtual const mcl::v1::Leader& grant() const = 0;
  virtual const std::string& lock() const = 0;
  // The latest bound (CLOCK_MONOTONIC, as a Duration since its epoch, the
  // value of Validity.valid_until_monotonic_ns); renewals move it later.
  virtual absl::Duration valid_until() const = 0;
  // True while this term lasts: no LOST, stream end or Stop() yet, and the
  // clock is before the latest bound. Consults the clock on each call, so it
  // turns false at the bound even before the cancellation is delivered.
  virtual bool IsLeaderNow() const = 0;
  // True once the context was cancelled (never false again); already true
  // while the OnCancel callbacks run.
  virtual bool cancelled() const = 0;
  // Blocks until cancelled or `timeout` passes (on the monotonic clock);
  // true once cancelled, and then the OnCancel callbacks registered before
  // the cancellation have run.
  virtual bool WaitForCancel(absl::Duration timeout) const = 0;
  // Runs `callback` once when the context is cancelled, on the library's
  // supervisor thread (at once, on this thread, if already cancelled). Keep it
  // short: e.g. signal a process, close a socket, set your own flag.
  virtual void OnCancel(std::function<void()> callback) const = 0;
  // Why it was cancelled ("LOST: <reason>", "validity bound passed", "stream
  // ended: <status>", "stopped"); empty while not cancelled.
  virtual std::string cancel_reason() const = 0;
};

// The leader work. Returning after the context was cancelled is the normal
// end of a term (the status is ignored). Returning before that ends the
// campaign: see the file comment.
using LeaderFn = std::function<absl::Status(const LeaderContext&)>;

class Leadership {
 public:
  // Checks `options` (INVALID_ARGUMENT saying what to fix) and starts
  // campaigning at once. Never blocks on the sidecar.
  static absl::StatusOr<std::unique_ptr<Leadership>> Start(
      LeadershipOptions options, LeaderFn fn);
  // Stop() and Wait(). Not from fn or its callbacks (it waits for fn).
  ~Leadership();
  Leadership(const Leadership&) = delete;
  Leadership& operator=(const Leadership&) = delete;

  // Ends the campaign: cancels fn's context, waits for fn to return, then
  // ends the Campaign stream, which makes the sidecar resign at once. Returns
  // without waiting; idempotent; any thread, fn and callbacks included.
  void Stop();
  // Blocks until the campaign is over (see the file comment for the status).
  // Not from fn or its callbacks.
  absl::Status Wait();
  // Waits at most `timeout`; nullopt if the campaign is not over yet.
  std::optional<absl::Status> WaitFor(absl::Duration timeout);

  // Whether this candidate may act as leader now (a live term: see
  // LeaderContext::IsLeaderNow).
  bool IsLeaderNow() const;
  // The live term's grant and bound, or nullopt.
  struct Grant {
    mcl::v1::Leader leader;
    absl::Duration valid_until;
  };
  std::optional<Grant> Current() const;

  class Impl;

 private:
  explicit Leadership(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// Start + Wait: returns when fn returned while leader, or the campaign failed
// for good (see the file comment).
absl::Status RunWhileLeader(LeadershipOptions options, LeaderFn fn);

// $MCL_SIDECAR_ADDR, or "127.0.0.1:7400" (the Helm chart's default); checked:
// INVALID_ARGUMENT unless "HOST:PORT" or "unix:///absolute/path".
absl::StatusOr<std::string> SidecarAddress(const std::string& explicit_address);

// A lock name is a DNS-1123 subdomain; a namespace a DNS-1123 label (or empty).
// INVALID_ARGUMENT says what to fix. The sidecar checks the same rules; these
// let a client fail before connecting.
absl::Status ValidateLockName(const std::string& name);
absl::Status ValidateNamespace(const std::string& ns);

}  // namespace mcl::client

#endif  // MCL_CLIENT_STUBS_CPP_LEADERSHIP_H_
