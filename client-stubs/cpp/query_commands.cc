#include "client-stubs/cpp/query_commands.h"

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client-stubs/cpp/leadership.h"
#include "client-stubs/cpp/metrics.h"
#include "client-stubs/cpp/sidecar_channel.h"
#include "common/backoff.h"
#include "common/stop_flag.h"
#include "common/stop_signals.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "mcl/v1/election.grpc.pb.h"

namespace mcl::cli {
namespace {

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "mcl: %s\n", message.c_str());
  return code;
}

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out);
  return out;
}

std::string LockName(const Flags& f) {
  return f.lock_namespace.empty() ? f.lock
                                  : absl::StrCat(f.lock_namespace, "/", f.lock);
}

mcl::v1::LockRef Lock(const Flags& f) {
  mcl::v1::LockRef l;
  l.set_name(f.lock);
  l.set_namespace_(f.lock_namespace);
  return l;
}

std::string LeaderText(const mcl::v1::Leader& l) {
  return absl::StrCat(
      "leader=", l.identity(), " cluster=", l.cluster(),
      " token=", l.fencing_token(),
      l.has_acquire_time()
          ? absl::StrCat(
                " acquired=",
                google::protobuf::util::TimeUtil::ToString(l.acquire_time()))
          : "");
}

// The address and a channel that has connected, or the exit code and message.
struct Connection {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<mcl::v1::Election::Stub> stub;
};

absl::StatusOr<Connection> Connect(const Flags& f) {
  absl::StatusOr<std::string> address = client::SidecarAddress("");
  if (!address.ok()) return address.status();
  Connection c;
  c.address = *address;
  c.channel = client::NewSidecarChannel(c.address, absl::Seconds(2));
  if (!c.channel->WaitForConnected(
          absl::ToChronoTime(absl::Now() + f.timeout))) {
    return absl::UnavailableError(absl::StrCat(
        "cannot reach the mcl sidecar at ", c.address, " within ",
        absl::FormatDuration(f.timeout),
        "; is it running? Set MCL_SIDECAR_ADDR to its address (HOST:PORT or "
        "unix:///path)"));
  }
  c.stub = mcl::v1::Election::NewStub(c.channel);
  return c;
}

// An RPC error as an exit code: bad input 2, unreachable 3, the rest 4.
int RpcFailure(const grpc::Status& s, const std::string& address) {
  switch (s.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
      return Fail(kUsage, s.error_message());
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Fail(kUnreachable,
                  absl::StrCat("the mcl sidecar at ", address,
                               " did not answer: ", s.error_message()));
    default:
      return Fail(kRefused, s.error_message());
  }
}

int FailConnect(const absl::Status& s) {
  return Fail(absl::IsInvalidArgument(s) ? kUsage : kUnreachable,
              std::string(s.message()));
}

std::chrono::system_clock::time_point Deadline(const Flags& f) {
  return absl::ToChronoTime(absl::Now() + f.timeout);
}

}  // namespace

int LeaderMain(const Flags& f) {
  absl::StatusOr<Connection> c = Connect(f);
  if (!c.ok()) return FailConnect(c.status());
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline(f));
  mcl::v1::LeaderRequest req;
  *req.mutable_lock() = Lock(f);
  mcl::v1::LeaderResponse resp;
  grpc::Status s = c->stub->Leader(&ctx, req, &resp);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
    return Fail(kNoLeader, absl::StrCat("nobody leads ", LockName(f), " now"));
  }
  if (!s.ok()) return RpcFailure(s, c->address);
  std::printf("%s\n", f.output == "json" ? Json(resp.leader()).c_str()
                                         : LeaderText(resp.leader()).c_str());
  return kOk;
}

int ResignMain(const Flags& f) {
  absl::StatusOr<Connection> c = Connect(f);
  if (!c.ok()) return FailConnect(c.status());
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline(f));
  mcl::v1::ResignRequest req;
  *req.mutable_lock() = Lock(f);
  req.set_identity(f.identity);
  mcl::v1::ResignResponse resp;
  grpc::Status s = c->stub->Resign(&ctx, req, &resp);
  if (!s.ok()) return RpcFailure(s, c->address);
  std::printf("resigned %s (%s)\n", LockName(f).c_str(),
              resp.was_leader() ? "was the leader" : "was not the leader");
  return kOk;
}

int ObserveMain(const Flags& f) {
  absl::StatusOr<Connection> c = Connect(f);
  if (!c.ok()) return FailConnect(c.status());
  // SIGTERM/SIGINT end the stream; the signal thread cancels the current one.
  static absl::Mutex* mu = new absl::Mutex();
  static grpc::ClientContext* current = nullptr;
  static StopFlag* stop = new StopFlag();
  std::thread([] {
    WaitForStopSignal();
    absl::MutexLock l(mu);
    stop->Set();
    if (current != nullptr) current->TryCancel();
  }).detach();

  mcl::v1::ObserveRequest req;
  *req.mutable_lock() = Lock(f);
  Backoff backoff({absl::Milliseconds(100), absl::Seconds(5), 2});
  std::string last;  // the last line printed, to print changes only
  for (;;) {
    grpc::ClientContext ctx;
    {
      absl::MutexLock l(mu);
      if (stop->IsSet()) return kOk;
      current = &ctx;
    }
    auto stream = c->stub->Observe(&ctx, req);
    mcl::v1::LeadershipEvent e;
    while (stream->Read(&e)) {
      backoff.Reset();
      std::string key = absl::StrCat(mcl::v1::State_Name(e.state()), " ",
                                     LeaderText(e.leader()));
      if (e.state() == mcl::v1::NO_LEADER) key = "NO_LEADER";
      if (key == last) continue;  // the same view again after a reconnect
      last = key;
      const std::string time =
          e.has_time() ? google::protobuf::util::TimeUtil::ToString(e.time())
                       : absl::FormatTime(absl::RFC3339_full, absl::Now(),
                                          absl::UTCTimeZone());
      std::printf("%s\n", f.output == "json"
                              ? Json(e).c_str()
                              : absl::StrCat(time, " ", key).c_str());
      std::fflush(stdout);
    }
    grpc::Status s = stream->Finish();
    {
      absl::MutexLock l(mu);
      current = nullptr;
      if (stop->IsSet()) return kOk;
    }
    if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      return Fail(kUsage, s.error_message());
    }
    const absl::Duration delay = backoff.Next();
    std::fprintf(stderr, "mcl: the Observe stream ended (%s); again in %s\n",
                 client::FromGrpc(s).ToString().c_str(),
                 absl::FormatDuration(absl::Trunc(delay, absl::Milliseconds(1)))
                     .c_str());
    if (stop->WaitFor(delay)) return kOk;
  }
}

int StatusMain(const Flags& f) {
  std::string addr = f.metrics_addr;
  if (addr.empty()) {
    const char* env = std::getenv("MCL_SIDECAR_METRICS_ADDR");
    addr = env != nullptr && *env != '\0' ? env : "127.0.0.1:7401";
  }
  absl::StatusOr<std::string> text = HttpGet(addr, "/metrics", f.timeout);
  if (!text.ok()) {
    return Fail(
        absl::IsInvalidArgument(text.status()) ? kUsage : kUnreachable,
        absl::StrCat(text.status().message(),
                     "; the sidecar serves /metrics only with "
                     "--metrics-address (the Helm chart: port 7401). Set "
                     "MCL_SIDECAR_METRICS_ADDR or --metrics-addr"));
  }
  auto locks = ParseSidecarMetrics(*text);
  if (!locks.ok()) return Fail(kRefused, std::string(locks.status().message()));
  absl::StatusOr<Connection> c = Connect(f);
  if (!c.ok()) return FailConnect(c.status());

  google::protobuf::ListValue list;
  std::string table = "LOCK\tCAMPAIGNS\tLEADING-HERE\tLEADER\tCLUSTER\tTOKEN\n";
  for (const auto& [lock, m] : *locks) {
    // Locks only observed, or whose campaigns all ended, are not listed.
    if (m.campaigns.has_value() && *m.campaigns == 0) continue;
    mcl::v1::LeaderRequest req;
    const size_t slash = lock.find('/');
    req.mutable_lock()->set_namespace_(lock.substr(0, slash));
    req.mutable_lock()->set_name(lock.substr(slash + 1));
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(f));
    mcl::v1::LeaderResponse resp;
    grpc::Status s = c->stub->Leader(&ctx, req, &resp);
    if (!s.ok() && s.error_code() != grpc::StatusCode::NOT_FOUND) {
      return RpcFailure(s, c->address);
    }
    const mcl::v1::Leader& l = resp.leader();
    absl::StrAppend(&table, lock, "\t",
                    m.campaigns.has_value() ? absl::StrCat(*m.campaigns) : "?",
                    "\t", m.is_leader ? "yes" : "no", "\t",
                    s.ok() ? l.identity() : "-", "\t",
                    s.ok() ? l.cluster() : "-", "\t",
                    s.ok() ? absl::StrCat(l.fencing_token()) : "-", "\n");
    google::protobuf::Struct& o = *list.add_values()->mutable_struct_value();
    auto& fields = *o.mutable_fields();
    fields["lock"].set_string_value(lock);
    if (m.campaigns.has_value()) {
      fields["campaigns"].set_number_value(static_cast<double>(*m.campaigns));
    }
    fields["leadingHere"].set_bool_value(m.is_leader);
    fields["leaderTransitions"].set_number_value(
        static_cast<double>(m.transitions));
    fields["renewErrors"].set_number_value(static_cast<double>(m.renew_errors));
    if (s.ok()) {
      auto& leader = *fields["leader"].mutable_struct_value()->mutable_fields();
      leader["identity"].set_string_value(l.identity());
      leader["cluster"].set_string_value(l.cluster());
      leader["fencingToken"].set_string_value(absl::StrCat(l.fencing_token()));
    }
  }
  if (f.output == "json") {
    std::printf("%s\n", Json(list).c_str());
  } else {
    std::printf("%s", table.c_str());
  }
  return kOk;
}

}  // namespace mcl::cli
