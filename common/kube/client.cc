#include "common/kube/client.h"

// KubeClient's unary requests: the client and its TLS config, one request
// with its deadline (RawOnce), the typed calls on a Resource and lists. The
// watch stream lives in client_watch.cc, cpprestsdk's tasks and exceptions
// turned into waits and Statuses in client_transport.cc.
#include <cpprest/http_client.h>

#include <chrono>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/kube/client_transport.h"
#include "common/kube/errors.h"

namespace mcl::kube {
namespace {

using internal::ConfigureTls;
using internal::FromException;
using internal::WaitOutcome;
using web::http::http_request;
using web::http::http_response;
using web::http::client::http_client;
using web::http::client::http_client_config;

bool IsSuccess(int code) { return code >= 200 && code < 300; }

}  // namespace

bool SkipUnusedDefaultCaFile(const Config& config) {
  if (config.ca_pem.empty()) return false;
  return setenv("SSL_CERT_FILE", "/dev/null", /*overwrite=*/1) == 0;
}

std::string QueryString(
    const std::vector<std::pair<std::string, std::string>>& params) {
  std::string q;
  for (const auto& [k, v] : params) {
    if (v.empty()) continue;
    absl::StrAppend(&q, q.empty() ? "?" : "&", k, "=",
                    web::uri::encode_data_string(v));
  }
  return q;
}

KubeClient::KubeClient(Config config, ClientOptions options)
    : config_(std::move(config)), options_(std::move(options)) {}

KubeClient::~KubeClient() = default;

absl::StatusOr<std::unique_ptr<KubeClient>> KubeClient::Create(
    const Config& config, ClientOptions options) {
  if (config.server.empty())
    return absl::InvalidArgumentError("kube config has no server");
  if (!absl::StartsWith(config.server, "https://") &&
      !absl::StartsWith(config.server, "http://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kube server \"", config.server, "\" is not an http(s) URL"));
  }
  // Fail now, with a clear message, on credentials OpenSSL will not load.
  try {
    boost::asio::ssl::context probe(boost::asio::ssl::context::sslv23_client);
    ConfigureTls(probe, config.ca_pem, config.client_cert_pem,
                 config.client_key_pem);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.source,
        ": the CA or client certificate/key cannot be loaded: ", e.what()));
  }
  std::unique_ptr<KubeClient> c(new KubeClient(config, std::move(options)));
  if (!config.token_file.empty()) {
    c->token_ = TokenSource::FromFile(config.token_file, c->options_.clock);
  } else {
    c->token_ = TokenSource::Static(config.token);
  }
  try {
    auto cfg = c->MakeConfig(c->options_.request_timeout);
    c->http_ = std::make_unique<http_client>(web::uri(config.server), *cfg);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("kube server \"", config.server, "\": ", e.what()));
  }
  return c;
}

std::unique_ptr<http_client_config> KubeClient::MakeConfig(
    absl::Duration timeout) const {
  auto cfg = std::make_unique<http_client_config>();
  cfg->set_timeout(
      std::chrono::microseconds(absl::ToInt64Microseconds(timeout)));
  cfg->set_validate_certificates(!config_.insecure_skip_tls_verify);
  cfg->set_max_redirects(0);  // never carry the bearer token elsewhere
  std::string ca = config_.ca_pem, cert = config_.client_cert_pem,
              key = config_.client_key_pem;
  cfg->set_ssl_context_callback(
      [ca, cert, key](boost::asio::ssl::context& ctx) {
        ConfigureTls(ctx, ca, cert, key);
      });
  return cfg;
}

absl::StatusOr<std::string> KubeClient::AuthHeader() {
  auto token = token_->Token();
  if (!token.ok()) return token.status();
  if (token->empty()) return std::string();
  return absl::StrCat("Bearer ", *token);
}

absl::StatusOr<HttpResponse> KubeClient::RawOnce(
    absl::string_view method, const std::string& url_path,
    const std::optional<std::string>& body, absl::string_view content_type,
    absl::Duration timeout, const pplx::cancellation_token& cancel) {
  std::string what = absl::StrCat(method, " ", Url(url_path));
  auto auth = AuthHeader();
  if (!auth.ok())
    return absl::Status(auth.status().code(),
                        absl::StrCat(what, ": ", auth.status().message()));
  pplx::cancellation_token_source cts = internal::LinkedSource(cancel);
  pplx::task<HttpResponse> task;
  try {
    http_request req{web::http::method(std::string(method))};
    req.set_request_uri(web::uri(url_path));
    if (!auth->empty()) req.headers().add("Authorization", *auth);
    req.headers().add("Accept", "application/json");
    req.headers().add("User-Agent", options_.user_agent);
    if (body.has_value()) req.set_body(*body, std::string(content_type));
    task = http_->request(req, cts.get_token()).then([](http_response resp) {
      return resp.extract_utf8string(true).then([resp](std::string b) {
        HttpResponse out;
        out.code = resp.status_code();
        out.content_type = resp.headers().content_type();
        out.body = std::move(b);
        return out;
      });
    });
  } catch (...) {
    return FromException(std::current_exception(), what, false, false, timeout,
                         config_);
  }
  WaitOutcome waited = internal::WaitOrCancel(task, timeout, cts);
  if (waited == WaitOutcome::kAbandoned) {
    return absl::DeadlineExceededError(absl::StrCat(
        what, ": no complete response within ", absl::FormatDuration(timeout)));
  }
  try {
    return task.get();
  } catch (...) {
    return FromException(std::current_exception(), what,
                         waited == WaitOutcome::kDeadlineHit,
                         cancel.is_canceled(), timeout, config_);
  }
}

absl::StatusOr<HttpResponse> KubeClient::Raw(
    absl::string_view method, absl::string_view path_and_query,
    std::optional<std::string> body, absl::string_view content_type,
    absl::Duration timeout, const pplx::cancellation_token& cancel) {
  if (timeout <= absl::ZeroDuration()) timeout = options_.request_timeout;
  std::string path(path_and_query);
  auto r = RawOnce(method, path, body, content_type, timeout, cancel);
  // A rotated token file: re-read it and try once more.
  if (r.ok() && r->code == 401 && token_->Refresh()) {
    r = RawOnce(method, path, body, content_type, timeout, cancel);
  }
  return r;
}

absl::StatusOr<Json> KubeClient::Request(
    absl::string_view method, absl::string_view path_and_query,
    const Json* body, absl::string_view content_type,
    const pplx::cancellation_token& cancel) {
  std::optional<std::string> payload;
  if (body != nullptr) payload = body->serialize();
  auto r = Raw(method, path_and_query, payload, content_type,
               absl::ZeroDuration(), cancel);
  if (!r.ok()) return r.status();
  std::string url = Url(path_and_query);
  if (!IsSuccess(r->code))
    return StatusFromResponse(r->code, r->content_type, r->body, method, url);
  if (r->body.empty()) return Json::null();
  if (!absl::StrContains(r->content_type, "json") && !r->body.empty() &&
      r->body.front() != '{') {
    return absl::InternalError(
        absl::StrCat(method, " ", url, ": HTTP ", r->code,
                     " with a body that is not JSON (content type \"",
                     r->content_type, "\"): ", Snippet(r->body)));
  }
  return ParseJson(r->body, absl::StrCat(method, " ", url, ": HTTP ", r->code));
}

namespace {
absl::StatusOr<std::pair<std::string, std::string>> NamespaceAndName(
    const Resource& r, const Json& object, absl::string_view ns) {
  JsonReader reader(r.kind);
  const Json* md = reader.Object(object, "metadata", "");
  std::string name, object_ns;
  if (md != nullptr) {
    name = reader.String(*md, "name", "metadata").value_or("");
    object_ns = reader.String(*md, "namespace", "metadata").value_or("");
  }
  if (!reader.ok()) return reader.status();
  if (!ns.empty() && !object_ns.empty() && ns != object_ns) {
    return absl::InvalidArgumentError(
        absl::StrCat(r.kind, " ", name, ": namespace \"", ns,
                     "\" differs from metadata.namespace \"", object_ns, "\""));
  }
  std::string use_ns = ns.empty() ? object_ns : std::string(ns);
  if (r.namespaced && use_ns.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(r.kind, " ", name, ": no namespace"));
  }
  return std::make_pair(use_ns, name);
}
}  // namespace

absl::StatusOr<Json> KubeClient::Get(const Resource& r, absl::string_view ns,
                                     absl::string_view name) {
  if (name.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("Get ", r.kind, ": empty name"));
  return Request("GET", r.Path(ns, name));
}

absl::StatusOr<Json> KubeClient::Create(const Resource& r, absl::string_view ns,
                                        const Json& object) {
  auto nn = NamespaceAndName(r, object, ns);
  if (!nn.ok()) return nn.status();
  return Request("POST", r.Path(nn->first), &object);
}

absl::StatusOr<Json> KubeClient::Update(const Resource& r, const Json& object) {
  auto nn = NamespaceAndName(r, object, "");
  if (!nn.ok()) return nn.status();
  if (nn->second.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("Update ", r.kind, ": no name"));
  return Request("PUT", r.Path(nn->first, nn->second), &object);
}

absl::StatusOr<Json> KubeClient::UpdateStatus(const Resource& r,
                                              const Json& object) {
  auto nn = NamespaceAndName(r, object, "");
  if (!nn.ok()) return nn.status();
  if (nn->second.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("UpdateStatus ", r.kind, ": no name"));
  }
  return Request("PUT", r.Path(nn->first, nn->second, "status"), &object);
}

absl::StatusOr<Json> KubeClient::MergePatch(const Resource& r,
                                            absl::string_view ns,
                                            absl::string_view name,
                                            const Json& patch,
                                            absl::string_view subresource) {
  if (name.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("MergePatch ", r.kind, ": empty name"));
  return Request("PATCH", r.Path(ns, name, subresource), &patch,
                 "application/merge-patch+json");
}

absl::Status KubeClient::Delete(const Resource& r, absl::string_view ns,
                                absl::string_view name,
                                const DeleteOptions& options) {
  if (name.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("Delete ", r.kind, ": empty name"));
  Json body = Json::object();
  body["kind"] = Json::string("DeleteOptions");
  body["apiVersion"] = Json::string("v1");
  if (!options.precondition_uid.empty() ||
      !options.precondition_resource_version.empty()) {
    Json& pre = ChildObject(body, "preconditions");
    SetOrEraseNonEmpty(pre, "uid", options.precondition_uid);
    SetOrEraseNonEmpty(pre, "resourceVersion",
                       options.precondition_resource_version);
  }
  if (options.grace_period_seconds.has_value()) {
    body["gracePeriodSeconds"] = Json::number(*options.grace_period_seconds);
  }
  SetOrEraseNonEmpty(body, "propagationPolicy", options.propagation_policy);
  auto out = Request("DELETE", r.Path(ns, name), &body);
  return out.status();
}

absl::StatusOr<JsonList> KubeClient::List(const Resource& r,
                                          absl::string_view ns,
                                          const ListOptions& o) {
  std::string path =
      r.Path(ns) +
      QueryString({{"labelSelector", o.label_selector},
                   {"fieldSelector", o.field_selector},
                   {"resourceVersion", o.resource_version},
                   {"resourceVersionMatch", o.resource_version_match},
                   {"limit", o.limit > 0 ? absl::StrCat(o.limit) : ""},
                   {"continue", o.continue_token}});
  auto j = Request("GET", path, nullptr, "application/json", o.cancel);
  if (!j.ok()) return j.status();
  std::string what = absl::StrCat("GET ", Url(path));
  if (!j->is_object()) {
    return absl::InternalError(absl::StrCat(what, ": expected a ", r.ListKind(),
                                            " object, got JSON ",
                                            JsonTypeName(*j)));
  }
  JsonReader reader(what);
  auto kind = reader.String(*j, "kind", "");
  if (kind.has_value() && *kind != r.ListKind()) {
    return absl::InternalError(absl::StrCat(
        what, ": expected kind ", r.ListKind(), ", got kind \"", *kind, "\""));
  }
  JsonList out;
  if (const Json* md = reader.Object(*j, "metadata", "")) {
    out.resource_version =
        reader.String(*md, "resourceVersion", "metadata").value_or("");
    out.continue_token =
        reader.String(*md, "continue", "metadata").value_or("");
  }
  const Json* items = reader.Array(*j, "items", "");
  if (!reader.ok()) return reader.status();
  if (items != nullptr) {
    for (const Json& item : items->as_array()) out.items.push_back(item);
  }
  if (out.resource_version.empty()) {
    return absl::InternalError(
        absl::StrCat(what, ": list has no metadata.resourceVersion"));
  }
  return out;
}

absl::StatusOr<JsonList> KubeClient::ListAll(const Resource& r,
                                             absl::string_view ns,
                                             ListOptions options) {
  if (options.limit <= 0) options.limit = 500;
  options.continue_token.clear();
  JsonList all;
  while (true) {
    auto page = List(r, ns, options);
    if (!page.ok()) return page.status();
    for (auto& item : page->items) all.items.push_back(std::move(item));
    all.resource_version = page->resource_version;
    if (page->continue_token.empty()) break;
    options.continue_token = page->continue_token;
    options.resource_version.clear();  // the continue token pins the version
    options.resource_version_match.clear();
  }
  return all;
}

}  // namespace mcl::kube
