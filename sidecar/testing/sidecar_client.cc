#include "sidecar/testing/sidecar_client.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace mcl::sidecar::testing {

std::string SidecarBinary() { return testbed::Runfile("sidecar/mcl-sidecar"); }

std::pair<StreamReader*, StreamReader*> FirstToEnd(StreamReader* a,
                                                   StreamReader* b,
                                                   absl::Duration timeout) {
  std::pair<StreamReader*, StreamReader*> out{nullptr, nullptr};
  testbed::WaitUntil(
      [&] {
        if (a->WaitEnd(absl::ZeroDuration()).ok()) {
          out = {a, b};
        } else if (b->WaitEnd(absl::ZeroDuration()).ok()) {
          out = {b, a};
        }
        return out.first != nullptr;
      },
      timeout);
  return out;
}

mcl::v1::LockRef Lock(const std::string& name, const std::string& ns) {
  mcl::v1::LockRef l;
  l.set_name(name);
  l.set_namespace_(ns);
  return l;
}

std::unique_ptr<StreamReader> StreamReader::Campaign(
    mcl::v1::Election::Stub* stub, const mcl::v1::CampaignRequest& req) {
  std::unique_ptr<StreamReader> r(new StreamReader());
  r->reader_ = stub->Campaign(&r->ctx_, req);
  r->thread_ = std::thread([p = r.get()] { p->Run(); });
  return r;
}

std::unique_ptr<StreamReader> StreamReader::Observe(
    mcl::v1::Election::Stub* stub, const mcl::v1::ObserveRequest& req) {
  std::unique_ptr<StreamReader> r(new StreamReader());
  r->reader_ = stub->Observe(&r->ctx_, req);
  r->thread_ = std::thread([p = r.get()] { p->Run(); });
  return r;
}

StreamReader::~StreamReader() {
  ctx_.TryCancel();
  thread_.join();
}

void StreamReader::Run() {
  mcl::v1::LeadershipEvent e;
  while (reader_->Read(&e)) {
    // Read first: the test compares it with the event's monotonic stamps.
    const int64_t mono_ns =
        absl::ToInt64Nanoseconds(Clock::Real()->Monotonic());
    absl::MutexLock l(&mu_);
    ReceivedEvent r{e, absl::Now(), mono_ns};
    queue_.push_back(r);
    history_.push_back(r);
  }
  grpc::Status s = reader_->Finish();
  absl::MutexLock l(&mu_);
  status_ = s;
  ended_ = true;
}

std::optional<ReceivedEvent> StreamReader::Next(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || ended_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (queue_.empty()) return std::nullopt;
  ReceivedEvent r = queue_.front();
  queue_.pop_front();
  return r;
}

std::optional<ReceivedEvent> StreamReader::WaitFor(mcl::v1::State state,
                                                   absl::Duration timeout) {
  absl::Time until = absl::Now() + timeout;
  for (;;) {
    auto e = Next(until - absl::Now());
    if (!e) return std::nullopt;
    if (e->event.state() == state) return e;
  }
}

absl::StatusOr<grpc::Status> StreamReader::WaitEnd(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ended_; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ended), timeout)) {
    return absl::DeadlineExceededError("the stream did not end");
  }
  return status_;
}

std::vector<ReceivedEvent> StreamReader::History() {
  absl::MutexLock l(&mu_);
  return history_;
}

absl::StatusOr<std::unique_ptr<Sidecar>> Sidecar::Start(
    const std::string& name, const std::string& dir,
    std::vector<std::string> args,
    const std::map<std::string, std::string>& env) {
  std::string target;
  for (const std::string& a : args) {
    if (a.rfind("--listen=", 0) == 0) target = a.substr(9);
  }
  if (target.empty()) {
    target = absl::StrCat("unix://", dir, "/", name, ".sock");
    args.push_back("--listen=" + target);
  }
  std::vector<std::string> argv = {SidecarBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = testbed::Subprocess::Start(
      argv, absl::StrCat(dir, "/", name, ".log"), env);
  if (!p.ok()) return p.status();
  std::unique_ptr<Sidecar> s(new Sidecar(std::move(*p)));
  s->target_ = target;
  s->channel_ = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  if (!s->channel_->WaitForConnected(std::chrono::system_clock::now() +
                                     std::chrono::seconds(15))) {
    return absl::UnavailableError(
        absl::StrCat("sidecar ", name, " did not accept connections; log:\n",
                     s->proc_.Log()));
  }
  s->stub_ = mcl::v1::Election::NewStub(s->channel_);
  return s;
}

}  // namespace mcl::sidecar::testing
