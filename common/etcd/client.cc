#include "common/etcd/client.h"

#include <arpa/inet.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/etcd/errors.h"

namespace mcl::etcd {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& what,
                                     const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(
        absl::StrCat("etcd: cannot read TLS ", what, " '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd: TLS ", what, " '", path, "' is empty"));
  }
  return ss.str();
}

// gRPC's own reconnect backoff (channel args below).
constexpr absl::Duration kMaxReconnectBackoff = absl::Seconds(1);

std::chrono::system_clock::time_point ToChrono(absl::Time t) {
  return absl::ToChronoTime(t);
}

// The gRPC target for "host:port": IP literals need no resolver (and so no
// re-resolution churn while reconnecting); names go through DNS.
std::string Target(const std::string& address) {
  const size_t colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(AF_INET, host.c_str(), buf) == 1) return "ipv4:" + address;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']' &&
      inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), buf) == 1) {
    return "ipv6:" + address;
  }
  return "dns:///" + address;
}

const char* StateName(grpc_connectivity_state s) {
  switch (s) {
    case GRPC_CHANNEL_IDLE:
      return "IDLE";
    case GRPC_CHANNEL_CONNECTING:
      return "CONNECTING";
    case GRPC_CHANNEL_READY:
      return "READY";
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
      return "TRANSIENT_FAILURE";
    case GRPC_CHANNEL_SHUTDOWN:
      return "SHUTDOWN";
  }
  return "UNKNOWN";
}

// The checks of Create that need no file or network.
absl::Status CheckConfig(const ClientConfig& config) {
  if (config.endpoints.empty())
    return absl::InvalidArgumentError("etcd: no endpoints given");
  if (config.clock == nullptr)
    return absl::InvalidArgumentError("etcd: no clock given");
  if (config.call_timeout <= absl::ZeroDuration() ||
      config.dial_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "etcd: call_timeout and dial_timeout must be positive");
  }
  if (config.username.empty() != config.password.empty()) {
    return absl::InvalidArgumentError(
        "etcd: username and password must be given together");
  }
  return absl::OkStatus();
}

// "host:port" of each endpoint (the scheme and a trailing '/' dropped). An
// https:// endpoint turns TLS on (with the system's roots) when not configured.
absl::StatusOr<std::vector<std::string>> EndpointAddresses(
    ClientConfig* config) {
  std::vector<std::string> addresses;
  bool any_https = false;
  for (const std::string& raw : config->endpoints) {
    absl::string_view ep = raw;
    bool https = absl::ConsumePrefix(&ep, "https://");
    bool http = !https && absl::ConsumePrefix(&ep, "http://");
    absl::ConsumeSuffix(&ep, "/");
    size_t colon = ep.rfind(':');
    if (ep.empty() || colon == absl::string_view::npos || colon == 0 ||
        colon + 1 == ep.size() || ep.find('/') != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "etcd: endpoint '", raw,
          "' is not host:port, http://host:port or https://host:port"));
    }
    if (http && config->tls.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "etcd: endpoint '", raw, "' is http:// but TLS is configured"));
    }
    any_https |= https;
    addresses.emplace_back(ep);
  }
  if (any_https && !config->tls.has_value()) config->tls = TlsConfig{};
  return addresses;
}

// Plaintext, or TLS with the configured CA and client certificate.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(
    const std::optional<TlsConfig>& config) {
  if (!config.has_value()) return grpc::InsecureChannelCredentials();
  const TlsConfig& tls = *config;
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "etcd: TLS cert_file and key_file must be given together");
  }
  grpc::SslCredentialsOptions ssl;
  if (!tls.ca_file.empty()) {
    auto ca = ReadFile("ca_file", tls.ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
  }
  if (!tls.cert_file.empty()) {
    auto cert = ReadFile("cert_file", tls.cert_file);
    if (!cert.ok()) return cert.status();
    auto key = ReadFile("key_file", tls.key_file);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  return grpc::SslCredentials(ssl);
}

grpc::ChannelArguments ChannelArgs(const ClientConfig& config) {
  grpc::ChannelArguments args;
  // gRPC reconnects on its own after a failure; keep that quick (at most 1 s
  // apart) so that a restarted etcd is used again soon. Our own retries use
  // mcl::Backoff. The minimum also bounds one connection attempt (TCP + TLS
  // handshake) from below.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(
      GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
      static_cast<int>(absl::ToInt64Milliseconds(kMaxReconnectBackoff)));
  // Detect a dead peer under a quiet stream (etcd allows pings every 5 s or
  // more). gRPC stops pinging after two pings without data by default, so a
  // quiet watch on a connection that silently holds bytes would never find
  // out: keep pinging.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Each Client's connections are its own, not shared with other clients in
  // the process.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(-1);
  if (config.tls.has_value() && !config.tls->server_name.empty()) {
    args.SetSslTargetNameOverride(config.tls->server_name);
  }
  return args;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientConfig config) {
  if (absl::Status s = CheckConfig(config); !s.ok()) return s;
  auto addresses = EndpointAddresses(&config);
  if (!addresses.ok()) return addresses.status();
  auto creds = Credentials(config.tls);
  if (!creds.ok()) return creds.status();
  const grpc::ChannelArguments args = ChannelArgs(config);
  std::unique_ptr<Client> client(new Client(std::move(config)));
  for (size_t i = 0; i < addresses->size(); ++i) {
    auto c = std::make_unique<Connection>();
    c->index = i;
    c->address = (*addresses)[i];
    c->channel = grpc::CreateCustomChannel(Target(c->address), *creds, args);
    c->kv = etcdserverpb::KV::NewStub(c->channel);
    c->lease = etcdserverpb::Lease::NewStub(c->channel);
    c->watch = etcdserverpb::Watch::NewStub(c->channel);
    c->auth = etcdserverpb::Auth::NewStub(c->channel);
    c->maintenance = etcdserverpb::Maintenance::NewStub(c->channel);
    client->connections_.push_back(std::move(c));
  }
  return client;
}

Client::~Client() = default;

std::string Client::current_endpoint() const {
  return connections_[current_.load() % connections_.size()]->address;
}

absl::Status Client::Authenticate(absl::Duration timeout) {
  if (timeout < absl::ZeroDuration())
    return absl::InvalidArgumentError("etcd: negative timeout");
  if (config_.username.empty()) return absl::OkStatus();
  absl::Time deadline =
      absl::Now() +
      (timeout == absl::ZeroDuration() ? config_.call_timeout : timeout);
  return Token(deadline).status();
}

absl::Status Client::Call(absl::string_view method, CallKind kind,
                          absl::Duration timeout, const Rpc& rpc) {
  if (timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd ", method, ": negative timeout"));
  }
  absl::Time deadline =
      absl::Now() +
      (timeout == absl::ZeroDuration() ? config_.call_timeout : timeout);
  return CallImpl(method, kind, deadline, rpc, /*with_token=*/true);
}

absl::Status Client::WaitConnected(Connection& c, absl::Time deadline) {
  // gRPC's sync API only makes progress on a connection while some thread waits
  // on it, and a channel whose last attempt failed stays TRANSIENT_FAILURE
  // ("sticky") until an attempt succeeds. So: a channel already failing gets
  // one reconnect cycle (gRPC retries at most kMaxReconnectBackoff apart) while
  // this thread waits; a connect attempt seen failing now fails at once, so a
  // dead endpoint is left quickly.
  grpc_connectivity_state state = c.channel->GetState(/*try_to_connect=*/true);
  absl::Time wait_until = deadline;
  if (state == GRPC_CHANNEL_TRANSIENT_FAILURE) {
    wait_until = std::min(
        deadline, absl::Now() + kMaxReconnectBackoff + absl::Milliseconds(500));
  }
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_SHUTDOWN)
      return absl::UnavailableError("channel shut down");
    const grpc_connectivity_state before = state;
    const bool changed =
        c.channel->WaitForStateChange(before, ToChrono(wait_until));
    state = c.channel->GetState(/*try_to_connect=*/true);
    if (state == GRPC_CHANNEL_READY) break;
    if (!changed || state == GRPC_CHANNEL_TRANSIENT_FAILURE) {
      if (state != GRPC_CHANNEL_TRANSIENT_FAILURE) {
        return absl::DeadlineExceededError(absl::StrCat(
            "not connected before the deadline (", StateName(state), ")"));
      }
      // The channel knows why it failed but only tells an RPC: a fail-fast call
      // on a channel that is not connected is never sent, and its error carries
      // the reason (refused, TLS, ...).
      grpc::ClientContext probe;
      probe.set_deadline(
          ToChrono(std::min(deadline, absl::Now() + absl::Seconds(1))));
      etcdserverpb::StatusRequest req;
      etcdserverpb::StatusResponse resp;
      grpc::Status s = c.maintenance->Status(&probe, req, &resp);
      if (c.channel->GetState(false) == GRPC_CHANNEL_READY) break;
      return absl::UnavailableError(
          s.ok() ? absl::StrCat("not connected (", StateName(state), ")")
                 : s.error_message());
    }
  }
  return absl::OkStatus();
}

void Client::MarkFailed(size_t index) {
  size_t expected = index;
  current_.compare_exchange_strong(expected, (index + 1) % connections_.size());
}

absl::Status Client::CallImpl(absl::string_view method, CallKind kind,
                              absl::Time deadline, const Rpc& rpc,
                              bool with_token) {
  const size_t n = connections_.size();
  const size_t start = current_.load() % n;
  std::vector<std::string> failures;
  bool refreshed = false;
  size_t i = 0;
  while (i < n) {
    Connection& c = *connections_[(start + i) % n];
    absl::Time now = absl::Now();
    if (now >= deadline) {
      failures.push_back(
          absl::StrCat(c.address, ": deadline passed before it was tried"));
      break;
    }
    absl::Status connected =
        WaitConnected(c, std::min(deadline, now + config_.dial_timeout));
    if (!connected.ok()) {
      failures.push_back(absl::StrCat(c.address, ": ", connected.message()));
      if (absl::IsUnavailable(connected)) MarkFailed(c.index);
      ++i;
      continue;
    }
    std::string token;
    if (with_token) {
      auto t = Token(deadline);
      if (!t.ok()) return t.status();
      token = *t;
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(ToChrono(deadline));
    if (!token.empty()) ctx.AddMetadata("token", token);
    grpc::Status s = rpc(c, &ctx);
    if (s.ok()) {
      current_.store(c.index);
      return absl::OkStatus();
    }
    if (with_token && !token.empty() && !refreshed &&
        (IsInvalidAuthToken(s) || IsAuthOldRevision(s))) {
      // Rejected before it was applied; same endpoint, new token.
      InvalidateToken(token);
      refreshed = true;
      continue;
    }
    if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
        c.channel->GetState(false) == GRPC_CHANNEL_READY) {
      // Connected, yet no answer in time: the member is stuck or the path
      // holds bytes. The outcome is unknown (not retried), but the next call
      // goes to the next endpoint.
      MarkFailed(c.index);
    }
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
      MarkFailed(c.index);
      if (kind == CallKind::kRead) {
        failures.push_back(absl::StrCat(c.address, ": ", s.error_message()));
        ++i;
        continue;
      }
      return absl::UnavailableError(
          absl::StrCat("etcd ", method, " on ", c.address,
                       ": UNAVAILABLE: ", s.error_message(),
                       " (the connection broke after the request was sent: it "
                       "may or may not have been applied)"));
    }
    return FromGrpc(s, method, c.address);
  }
  bool late = absl::Now() >= deadline;
  return absl::Status(
      late ? absl::StatusCode::kDeadlineExceeded
           : absl::StatusCode::kUnavailable,
      absl::StrCat("etcd ", method, ": ",
                   late ? "DEADLINE_EXCEEDED" : "UNAVAILABLE",
                   ": no endpoint reachable: ", absl::StrJoin(failures, "; ")));
}

absl::StatusOr<std::string> Client::Token(absl::Time deadline) {
  if (config_.username.empty()) return std::string();
  {
    absl::MutexLock l(&token_mu_);
    if (!token_.empty()) return token_;
  }
  absl::MutexLock fetch(&auth_mu_);
  {
    absl::MutexLock l(&token_mu_);
    if (!token_.empty()) return token_;  // another thread fetched it meanwhile
  }
  etcdserverpb::AuthenticateRequest req;
  req.set_name(config_.username);
  req.set_password(config_.password);
  etcdserverpb::AuthenticateResponse resp;
  absl::Status s = CallImpl(
      "Auth.Authenticate", CallKind::kRead, deadline,
      [&](Connection& c, grpc::ClientContext* ctx) {
        return c.auth->Authenticate(ctx, req, &resp);
      },
      /*with_token=*/false);
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat(s.message(), " (as user '",
                                               config_.username, "')"));
  }
  if (resp.token().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("etcd Auth.Authenticate as user '", config_.username,
                     "': etcd returned no token (is authentication enabled on "
                     "the server?)"));
  }
  token_fetches_.fetch_add(1);
  absl::MutexLock l(&token_mu_);
  token_ = resp.token();
  return token_;
}

void Client::InvalidateToken(const std::string& token) {
  absl::MutexLock l(&token_mu_);
  if (token_ == token) token_.clear();
}

absl::StatusOr<Client::Stream> Client::ConnectStream(absl::string_view method,
                                                     absl::Time deadline) {
  const size_t n = connections_.size();
  const size_t start = current_.load() % n;
  std::vector<std::string> failures;
  for (size_t i = 0; i < n; ++i) {
    Connection& c = *connections_[(start + i) % n];
    absl::Time now = absl::Now();
    if (now >= deadline) break;
    absl::Status connected =
        WaitConnected(c, std::min(deadline, now + config_.dial_timeout));
    if (!connected.ok()) {
      failures.push_back(absl::StrCat(c.address, ": ", connected.message()));
      if (absl::IsUnavailable(connected)) MarkFailed(c.index);
      continue;
    }
    // The connection is up, so a token fetch is one quick round trip; give it a
    // usable deadline even when the caller's connect deadline was short.
    auto token = Token(std::max(deadline, absl::Now() + config_.dial_timeout));
    if (!token.ok()) return token.status();
    current_.store(c.index);
    return Stream{&c, *token};
  }
  return absl::UnavailableError(
      absl::StrCat("etcd ", method, ": UNAVAILABLE: no endpoint reachable: ",
                   failures.empty() ? std::string("deadline passed")
                                    : absl::StrJoin(failures, "; ")));
}

void Client::PrepareContext(const Stream& stream, grpc::ClientContext* ctx) {
  if (!stream.token.empty()) ctx->AddMetadata("token", stream.token);
}

void Client::OnStreamError(const Stream& stream, const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE)
    MarkFailed(stream.connection->index);
  if (IsInvalidAuthToken(status) || IsAuthOldRevision(status))
    InvalidateToken(stream.token);
}

}  // namespace mcl::etcd
