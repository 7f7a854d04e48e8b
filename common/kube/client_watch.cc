// KubeClient::Watch: one watch request and the stream of events it answers,
// apart from the unary requests (client.cc) because its life is different: a
// client of its own (cpprestsdk's timeout is the idle bound here, not the
// request deadline), headers bounded by the request deadline, then a body
// read until the server, the caller or the idle bound ends it.
#include <cpprest/http_client.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/kube/client.h"
#include "common/kube/client_transport.h"
#include "common/kube/errors.h"

namespace mcl::kube {
namespace {

using internal::FromException;
using internal::WaitOutcome;
using web::http::http_request;
using web::http::http_response;
using web::http::client::http_client;

// Marks the end of a watch that went `idle_timeout` without a byte.
constexpr char kWatchIdlePayload[] = "type.mcl.dev/watch-idle";

// What every step of one watch call reports with.
struct WatchCall {
  std::string what;      // "watch <url>": the prefix of every error
  absl::Duration idle;   // no byte for this long ends the stream
  const Config& config;  // names the source of the TLS trust in errors
  pplx::cancellation_token cancel;  // the caller's

  bool cancelled() const { return cancel.is_canceled(); }
  absl::Status Cancelled() const {
    return absl::CancelledError(absl::StrCat(what, ": cancelled"));
  }
  absl::Status Prefixed(const absl::Status& s) const {
    return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
  }
};

std::string WatchPath(const Resource& r, absl::string_view ns,
                      const WatchOptions& o) {
  int64_t timeout_s = std::max<int64_t>(1, absl::ToInt64Seconds(o.timeout));
  return r.Path(ns) +
         QueryString({{"watch", "true"},
                      {"resourceVersion", o.resource_version},
                      {"allowWatchBookmarks", o.allow_bookmarks ? "true" : ""},
                      {"timeoutSeconds", absl::StrCat(timeout_s)},
                      {"labelSelector", o.label_selector},
                      {"fieldSelector", o.field_selector}});
}

// Without an explicit bound, well past the server's own end of the watch.
absl::Duration IdleBound(const WatchOptions& o) {
  return o.idle_timeout > absl::ZeroDuration() ? o.idle_timeout
                                               : o.timeout + absl::Seconds(30);
}

http_request WatchRequest(const std::string& path, const std::string& auth,
                          const std::string& user_agent) {
  http_request req{web::http::methods::GET};
  req.set_request_uri(web::uri(path));
  if (!auth.empty()) req.headers().add("Authorization", auth);
  req.headers().add("Accept", "application/json");
  req.headers().add("User-Agent", user_agent);
  return req;
}

// The response headers, within `timeout` (the idle bound covers the body
// only, and a server that never answers must not hold the caller longer).
absl::StatusOr<http_response> AwaitHeaders(
    const WatchCall& call, const pplx::task<http_response>& resp_task,
    pplx::cancellation_token_source& cts, absl::Duration timeout) {
  WaitOutcome waited = internal::WaitOrCancel(resp_task, timeout, cts);
  if (waited == WaitOutcome::kAbandoned) {
    return absl::DeadlineExceededError(
        absl::StrCat(call.what, ": no response headers within ",
                     absl::FormatDuration(timeout)));
  }
  try {
    return resp_task.get();
  } catch (...) {
    return FromException(std::current_exception(), call.what,
                         waited == WaitOutcome::kDeadlineHit, call.cancelled(),
                         timeout, call.config);
  }
}

// OK when the answer is a JSON watch stream; else the error it means (a
// non-200 answer read from its body, within `timeout`, as any request's).
absl::Status CheckWatchAnswer(const WatchCall& call, http_response& resp,
                              absl::Duration timeout, const std::string& url) {
  int code = resp.status_code();
  std::string content_type = resp.headers().content_type();
  if (code != 200) {
    auto body_task = resp.extract_utf8string(true);
    std::string body;
    if (internal::WaitFor(body_task, timeout)) {
      try {
        body = body_task.get();
      } catch (...) {
      }
    }
    return StatusFromResponse(code, content_type, body, "GET", url);
  }
  if (!content_type.empty() && !absl::StrContains(content_type, "json")) {
    return absl::InternalError(
        absl::StrCat(call.what, ": HTTP 200 with content type \"", content_type,
                     "\", not a JSON watch stream"));
  }
  return absl::OkStatus();
}

// Copies up to `max` bytes that `buf` already holds, without waiting. Through
// acquire/release, which take the buffer's lock: in_avail() reads its size
// without the lock while cpprestsdk's I/O thread writes it (a data race that
// ThreadSanitizer reported, docs/tsan.md).
size_t TakeBuffered(Concurrency::streams::streambuf<uint8_t>& buf, char* out,
                    size_t max) {
  size_t taken = 0;
  while (taken < max) {
    uint8_t* p = nullptr;
    size_t n = 0;
    if (!buf.acquire(p, n) || p == nullptr || n == 0) break;
    n = std::min(n, max - taken);
    std::memcpy(out + taken, p, n);
    buf.release(p, n);
    taken += n;
  }
  return taken;
}

// The status of a body read that threw: the caller's cancellation, or the
// transport's error saying how much of an event was cut off; cpprestsdk's idle
// timer (the only thing that ends a body read with a timeout) marks it idle.
absl::Status StreamBroke(const WatchCall& call, const WatchFramer& framer,
                         std::exception_ptr e) {
  if (call.cancelled()) return call.Cancelled();
  absl::Status s =
      FromException(e, call.what, false, false, call.idle, call.config);
  absl::Status out(
      s.code(), absl::StrCat(s.message(), " (the watch stream broke",
                             framer.pending() > 0
                                 ? absl::StrCat(" with ", framer.pending(),
                                                " bytes of an incomplete event")
                                 : "",
                             ")"));
  if (absl::IsDeadlineExceeded(s)) out.SetPayload(kWatchIdlePayload, {});
  return out;
}

// Frames `bytes` and hands each complete event to `on_event`, in order. The
// watch's final status when it ends here (a bad event, a framing error, or
// `on_event` saying stop: OK); nullopt to keep reading.
std::optional<absl::Status> Deliver(
    const WatchCall& call, WatchFramer& framer, absl::string_view bytes,
    const std::function<bool(WatchEvent)>& on_event,
    std::vector<std::string>& frames) {
  frames.clear();
  // Events framed before a framing error are still delivered, then the error.
  absl::Status fs = framer.Feed(bytes, &frames);
  for (const std::string& frame : frames) {
    auto ev = DecodeWatchEvent(frame);
    if (!ev.ok()) return call.Prefixed(ev.status());
    if (!on_event(std::move(*ev))) return absl::OkStatus();
  }
  if (!fs.ok()) return call.Prefixed(fs);
  return std::nullopt;
}

// Reads the body until it ends, delivering events as they complete.
absl::Status ReadWatchStream(const WatchCall& call, http_response& resp,
                             const std::function<bool(WatchEvent)>& on_event) {
  auto buf = resp.body().streambuf();
  WatchFramer framer;
  std::vector<char> chunk(64 * 1024);
  std::vector<std::string> frames;
  while (true) {
    size_t got = 0;
    try {
      // One byte, waiting for it; then what else has arrived, without waiting.
      got = buf.getn(reinterpret_cast<uint8_t*>(chunk.data()), 1).get();
      if (got > 0) got += TakeBuffered(buf, chunk.data() + 1, chunk.size() - 1);
    } catch (...) {
      return StreamBroke(call, framer, std::current_exception());
    }
    if (got == 0) break;
    std::optional<absl::Status> done = Deliver(
        call, framer, absl::string_view(chunk.data(), got), on_event, frames);
    if (done.has_value()) return *done;
  }
  if (call.cancelled()) return call.Cancelled();
  if (framer.pending() > 0) {
    return absl::InternalError(absl::StrCat(
        call.what, ": the stream ended in the middle of an event (",
        framer.pending(), " bytes: ", Snippet(framer.pending_bytes(), 80),
        ")"));
  }
  return absl::OkStatus();
}

// Cancels the request on every way out, so no connection outlives the call.
struct CancelOnExit {
  pplx::cancellation_token_source& cts;
  ~CancelOnExit() { cts.cancel(); }
};

}  // namespace

bool IsWatchIdle(const absl::Status& s) {
  return s.GetPayload(kWatchIdlePayload).has_value();
}

absl::Status KubeClient::Watch(const Resource& r, absl::string_view ns,
                               const WatchOptions& o,
                               const std::function<bool(WatchEvent)>& on_event,
                               const pplx::cancellation_token& cancel) {
  std::string path = WatchPath(r, ns, o);
  const WatchCall call{absl::StrCat("watch ", Url(path)), IdleBound(o), config_,
                       cancel};
  auto auth = AuthHeader();
  if (!auth.ok()) return call.Prefixed(auth.status());
  pplx::cancellation_token_source cts = internal::LinkedSource(cancel);
  CancelOnExit cancel_on_exit{cts};
  // A client of its own, whose timeout is the idle bound; it must outlive the
  // body stream, hence declared before the response.
  std::unique_ptr<http_client> client;
  pplx::task<http_response> resp_task;
  try {
    client = std::make_unique<http_client>(web::uri(config_.server),
                                           *MakeConfig(call.idle));
    resp_task = client->request(WatchRequest(path, *auth, options_.user_agent),
                                cts.get_token());
  } catch (...) {
    return FromException(std::current_exception(), call.what, false,
                         call.cancelled(), call.idle, config_);
  }
  auto resp = AwaitHeaders(call, resp_task, cts, options_.request_timeout);
  if (!resp.ok()) return resp.status();
  absl::Status answer =
      CheckWatchAnswer(call, *resp, options_.request_timeout, Url(path));
  if (!answer.ok()) {
    if (resp->status_code() == 401)
      token_->Refresh();  // the next attempt uses a rotated token
    return answer;
  }
  return ReadWatchStream(call, *resp, on_event);
}

}  // namespace mcl::kube
