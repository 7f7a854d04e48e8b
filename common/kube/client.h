// KubeClient: a thin adapter over cpprestsdk's http_client for the Kubernetes
// API. TLS verification is on (see config.h); every request has a deadline; no
// exception crosses this API — failures are absl::Status built as described in
// errors.h (Kubernetes `Status` bodies parsed, transport failures named with
// the URL). A 401 with a file-backed token re-reads the file and retries once.
//
// Generic calls take a Resource and JSON (web::json::value); TypedClient<T>
// (typed_client.h) wraps them for MultiClusterLease and Lease. Watch() is the
// raw stream; use Informer (informer.h) rather than a watch loop of your own.
//
// Thread-safe: one KubeClient serves concurrent calls from any threads (it
// pools connections).
#ifndef MCL_COMMON_KUBE_CLIENT_H_
#define MCL_COMMON_KUBE_CLIENT_H_

#include <pplx/pplxtasks.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/kube/config.h"
#include "common/kube/json.h"
#include "common/kube/objects.h"
#include "common/kube/watch_stream.h"

namespace web::http::client {
class http_client;
class http_client_config;
}  // namespace web::http::client

namespace mcl::kube {

struct ClientOptions {
  // Deadline of each request (connect, TLS, send, and the whole response).
  // Watches use WatchOptions instead.
  absl::Duration request_timeout = absl::Seconds(15);
  std::string user_agent = "mcl";
  Clock* clock = Clock::Real();
};

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  // "": a consistent (quorum) read of the latest state.
  std::string resource_version;
  std::string resource_version_match;  // "", "NotOlderThan", "Exact"
  int64_t limit = 0;                   // page size; 0: no paging
  std::string continue_token;
  // Cancels the list (the informer's Stop uses it).
  pplx::cancellation_token cancel = pplx::cancellation_token::none();
};

struct WatchOptions {
  std::string label_selector;
  std::string field_selector;
  // Start after this version (from a list or the last event).
  std::string resource_version;
  bool allow_bookmarks = true;
  // The server ends the watch after this long (timeoutSeconds); the caller then
  // re-watches.
  absl::Duration timeout = absl::Minutes(5);
  // No byte for this long (not even a bookmark) ends the watch with an error
  // for which IsWatchIdle() holds. 0: timeout + 30 s.
  absl::Duration idle_timeout = absl::ZeroDuration();
};

struct DeleteOptions {
  std::string precondition_uid;               // delete only this incarnation
  std::string precondition_resource_version;  // delete only if unchanged since
  std::optional<int64_t> grace_period_seconds;
  std::string propagation_policy;  // "", "Orphan", "Background", "Foreground"
};

// One page of a list, or all pages of ListAll().
struct JsonList {
  std::vector<Json> items;
  std::string resource_version;
  std::string continue_token;  // "" on the last page
};

// A raw HTTP response (any status code).
struct HttpResponse {
  int code = 0;
  std::string content_type;
  std::string body;
};

class KubeClient {
 public:
  // Fails on a config that cannot work (no server, a CA or client key that is
  // not valid PEM).
  static absl::StatusOr<std::unique_ptr<KubeClient>> Create(
      const Config& config, ClientOptions options = {});
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  const Config& config() const { return config_; }
  const ClientOptions& options() const { return options_; }

  // A request to `path_and_query` ("/api/v1/namespaces"); any HTTP code is
  // returned as a response, only transport failures (connect, TLS, timeout,
  // cancellation) as errors. `timeout` 0: default.
  absl::StatusOr<HttpResponse> Raw(
      absl::string_view method, absl::string_view path_and_query,
      std::optional<std::string> body = std::nullopt,
      absl::string_view content_type = "application/json",
      absl::Duration timeout = absl::ZeroDuration(),
      const pplx::cancellation_token& cancel =
          pplx::cancellation_token::none());
  // A request that must answer 2xx with JSON (an empty 2xx body reads as null).
  absl::StatusOr<Json> Request(
      absl::string_view method, absl::string_view path_and_query,
      const Json* body = nullptr,
      absl::string_view content_type = "application/json",
      const pplx::cancellation_token& cancel =
          pplx::cancellation_token::none());

  absl::StatusOr<Json> Get(const Resource& r, absl::string_view ns,
                           absl::string_view name);
  // Create in `ns` (or the object's metadata.namespace when `ns` is empty).
  absl::StatusOr<Json> Create(const Resource& r, absl::string_view ns,
                              const Json& object);
  // PUT of the whole object; metadata.resourceVersion (if set) makes it
  // conditional: a stale one fails with IsConflict().
  absl::StatusOr<Json> Update(const Resource& r, const Json& object);
  // PUT to the /status subresource (only status changes; spec is ignored by the
  // server).
  absl::StatusOr<Json> UpdateStatus(const Resource& r, const Json& object);
  // JSON merge patch (RFC 7386) of the object or of a subresource ("status").
  absl::StatusOr<Json> MergePatch(const Resource& r, absl::string_view ns,
                                  absl::string_view name, const Json& patch,
                                  absl::string_view subresource = "");
  absl::Status Delete(const Resource& r, absl::string_view ns,
                      absl::string_view name,
                      const DeleteOptions& options = {});
  // One page. The list's kind is checked ("expected kind FooList").
  absl::StatusOr<JsonList> List(const Resource& r, absl::string_view ns,
                                const ListOptions& options = {});
  // All pages (options.limit per page, 500 when 0), at one resourceVersion.
  absl::StatusOr<JsonList> ListAll(const Resource& r, absl::string_view ns,
                                   ListOptions options = {});

  // Streams a watch: calls `on_event` for each event, in order, on the calling
  // thread, until the server ends the stream (returns OK), `on_event` returns
  // false (OK), `cancel` is cancelled (Cancelled), or an error: a non-200
  // answer (e.g. 410 → IsGone), a transport failure, a malformed or truncated
  // event (InternalError naming it). Objects are not interpreted here.
  absl::Status Watch(const Resource& r, absl::string_view ns,
                     const WatchOptions& options,
                     const std::function<bool(WatchEvent)>& on_event,
                     const pplx::cancellation_token& cancel =
                         pplx::cancellation_token::none());

 private:
  KubeClient(Config config, ClientOptions options);
  absl::StatusOr<HttpResponse> RawOnce(absl::string_view method,
                                       const std::string& url_path,
                                       const std::optional<std::string>& body,
                                       absl::string_view content_type,
                                       absl::Duration timeout,
                                       const pplx::cancellation_token& cancel);
  absl::StatusOr<std::string> AuthHeader();
  std::string Url(absl::string_view path) const {
    return config_.server + std::string(path);
  }
  std::unique_ptr<web::http::client::http_client_config> MakeConfig(
      absl::Duration timeout) const;

  Config config_;
  ClientOptions options_;
  std::shared_ptr<TokenSource> token_;
  std::unique_ptr<web::http::client::http_client> http_;
};

// cpprestsdk loads OpenSSL's default CA file (SSL_CERT_FILE, else the system
// bundle) into every new TLS context, before our callback replaces the trust
// store with the kube config's CA: for Debian's bundle of 144 roots that is
// ~30 ms of CPU per new connection (every re-watch, every reconnect), thrown
// away at once. When `config` names its own CA, this points SSL_CERT_FILE at
// /dev/null so that load is empty; trust is unchanged, since the store is
// replaced either way (the configured CA alone is trusted, as in client-go).
// Returns whether it did. A config without a CA relies on the system roots and
// leaves the environment alone.
//
// Process-wide (an environment variable, read by OpenSSL): for the binaries'
// main path, before the threads that make connections start. Nothing else in
// mcl reads OpenSSL's default paths (gRPC loads its roots itself).
bool SkipUnusedDefaultCaFile(const Config& config);

// Whether a watch ended because it went WatchOptions::idle_timeout without a
// byte (DeadlineExceeded): a quiet stream or a path that holds bytes; the
// stream alone cannot tell which.
bool IsWatchIdle(const absl::Status& s);

// Query string helper: "?a=1&b=x%20y" from pairs with non-empty values ("" if
// none).
std::string QueryString(
    const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace mcl::kube

#endif  // MCL_COMMON_KUBE_CLIENT_H_
