// Private to the client (client.cc, client_watch.cc): turning cpprestsdk's
// tasks and exceptions into bounded waits and Statuses. Not part of the
// library's API (listed in the target's srcs, not hdrs).
#ifndef MCL_COMMON_KUBE_CLIENT_TRANSPORT_H_
#define MCL_COMMON_KUBE_CLIENT_TRANSPORT_H_

#include <cpprest/http_client.h>

#include <exception>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/kube/config.h"

namespace mcl::kube::internal {

// How long to wait for a cancelled request to wind down before giving up on it.
inline constexpr absl::Duration kCancelGrace = absl::Seconds(5);

// Waits for `t` up to `timeout`; false if it is still running. On the
// monotonic clock: abseil's timed waits follow wall-clock steps
// (common/clock.h), and a request deadline must not stretch with them.
//
// Every task the client starts goes through here, and the continuation reads
// its outcome: pplx kills the process (SIGTRAP, then std::terminate) when a
// task's exception is destroyed unread, and a caller that gives up on a
// request (its cancellation missed the grace) never calls get() on it, while
// the request still fails later. Reading it here as well is harmless: get()
// rethrows the same exception to every reader.
template <typename T>
bool WaitFor(const pplx::task<T>& t, absl::Duration timeout) {
  // Shared with the continuation, which may run after we gave up.
  auto done = std::make_shared<Wakeup>(Clock::Real());
  t.then([done](pplx::task<T> finished) {
    try {
      finished.get();
    } catch (...) {
      // The caller reports it, or has already reported giving up.
    }
    done->Notify();
  });
  return done->WaitFor(timeout);
}

// How a bounded wait on a request ended.
enum class WaitOutcome {
  kDone,         // finished in time
  kDeadlineHit,  // past the deadline; cancelled, and wound down in the grace
  kAbandoned,    // past the deadline and still running after the grace
};

// Waits for `t` up to `timeout`; past it, cancels `cts` and waits kCancelGrace
// more so the task's outcome can still be read (and reported as the deadline).
template <typename T>
WaitOutcome WaitOrCancel(const pplx::task<T>& t, absl::Duration timeout,
                         pplx::cancellation_token_source& cts) {
  if (WaitFor(t, timeout)) return WaitOutcome::kDone;
  cts.cancel();
  return WaitFor(t, kCancelGrace) ? WaitOutcome::kDeadlineHit
                                  : WaitOutcome::kAbandoned;
}

// A source of our own, linked to the caller's token when it can be cancelled,
// so the client can cancel a request (on its deadline) without cancelling the
// caller's token. By value: create_linked_source wants a mutable token.
pplx::cancellation_token_source LinkedSource(pplx::cancellation_token outer);

// The server's trust and our client certificate, applied to each new TLS
// connection.
void ConfigureTls(boost::asio::ssl::context& ctx, const std::string& ca,
                  const std::string& cert, const std::string& key);

// Turns whatever cpprestsdk threw into a Status naming the request (`what`):
// our deadline, the caller's cancellation, cpprestsdk's own timeout, TLS trust
// (naming the config that set it), a closed connection, a refused connect.
absl::Status FromException(std::exception_ptr e, const std::string& what,
                           bool deadline_hit, bool cancelled,
                           absl::Duration timeout, const Config& config);

}  // namespace mcl::kube::internal

#endif  // MCL_COMMON_KUBE_CLIENT_TRANSPORT_H_
