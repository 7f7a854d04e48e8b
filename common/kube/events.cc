#include "common/kube/events.h"

#include <pthread.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/kube/errors.h"

namespace mcl::kube {
namespace {

std::string ObjectId(const ObjectReference& o) {
  return absl::StrCat(o.kind, "/", o.namespace_, "/", o.name, "/", o.uid);
}

const char* TypeName(EventType t) {
  return t == EventType::kWarning ? "Warning" : "Normal";
}

// A new Event's name: the object's name, then a suffix unique to this time and
// recorder. Object names may be 253 characters, the limit of an Event's name
// too: keep room for the suffix (at most 33 characters). A cut must not leave
// a label ending in '-' or '.'.
std::string EventName(const std::string& object_name, absl::Time at,
                      uint64_t seq) {
  std::string prefix = object_name.substr(0, 219);
  while (!prefix.empty() && !absl::ascii_isalnum(prefix.back())) {
    prefix.pop_back();
  }
  return absl::StrCat(prefix.empty() ? "object" : prefix, ".",
                      absl::Hex(absl::ToUnixNanos(at)), absl::Hex(seq));
}

// What a new Event says, apart from where it lives (metadata).
struct EventBody {
  const ObjectReference& object;
  EventType type;
  const std::string& reason;
  const std::string& message;
  const std::string& timestamp;  // first and last seen
};

// A core/v1 Event `name` in `ns`, seen once.
Json NewEvent(const EventBody& b, const std::string& ns,
              const std::string& name, const EventRecorderOptions& options) {
  Json ev = Json::object();
  ev["apiVersion"] = Json::string("v1");
  ev["kind"] = Json::string("Event");
  // (References into a cpprestsdk JSON object die when the object grows: set,
  // then move on.)
  Json& md = ChildObject(ev, "metadata");
  md["name"] = Json::string(name);
  md["namespace"] = Json::string(ns);
  Json& io = ChildObject(ev, "involvedObject");
  SetOrEraseNonEmpty(io, "apiVersion", b.object.api_version);
  SetOrEraseNonEmpty(io, "kind", b.object.kind);
  SetOrEraseNonEmpty(io, "namespace", b.object.namespace_);
  SetOrEraseNonEmpty(io, "name", b.object.name);
  SetOrEraseNonEmpty(io, "uid", b.object.uid);
  SetOrEraseNonEmpty(io, "resourceVersion", b.object.resource_version);
  ev["type"] = Json::string(TypeName(b.type));
  ev["reason"] = Json::string(b.reason);
  // events.k8s.io caps a note at 1 kB; stay within it for either API.
  ev["message"] = Json::string(b.message.substr(0, 1024));
  Json& src = ChildObject(ev, "source");
  src["component"] = Json::string(options.component);
  SetOrEraseNonEmpty(src, "host", options.instance);
  ev["reportingComponent"] = Json::string(options.component);
  // reportingInstance is limited to 128 characters.
  ev["reportingInstance"] = Json::string(
      (options.instance.empty() ? options.component : options.instance)
          .substr(0, 128));
  ev["firstTimestamp"] = Json::string(b.timestamp);
  ev["lastTimestamp"] = Json::string(b.timestamp);
  ev["count"] = Json::number(1);
  return ev;
}

}  // namespace

EventRecorder::EventRecorder(KubeClient* client, EventRecorderOptions options)
    : client_(client), options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

EventRecorder::~EventRecorder() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    flush_until_ = options_.clock->Monotonic() + options_.shutdown_flush;
  }
  thread_.join();
}

bool EventRecorder::Record(const ObjectReference& object, EventType type,
                           const std::string& reason,
                           const std::string& message) {
  absl::Duration now = options_.clock->Monotonic();
  absl::MutexLock l(&mu_);
  if (stopping_ || queue_.size() >= options_.queue_limit) {
    ++stats_.dropped;
    return false;
  }
  if (buckets_.size() > 4096) {  // forget buckets that have refilled completely
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      bool full =
          options_.refill > absl::ZeroDuration() &&
          it->second.tokens + absl::FDivDuration(now - it->second.updated,
                                                 options_.refill) >=
              options_.burst;
      it = full ? buckets_.erase(it) : ++it;
    }
  }
  // Token bucket per object and reason.
  std::string key = absl::StrCat(ObjectId(object), "/", reason);
  auto [it, inserted] = buckets_.try_emplace(
      key, Bucket{static_cast<double>(options_.burst), now});
  Bucket& b = it->second;
  if (!inserted && options_.refill > absl::ZeroDuration()) {
    // Fractional refill: an integer division would lose the partial progress
    // of every call, and a lock recorded more often than once per `refill`
    // would never get a token back.
    b.tokens = std::min<double>(
        options_.burst,
        b.tokens + absl::FDivDuration(now - b.updated, options_.refill));
  }
  b.updated = now;
  if (b.tokens < 1.0 - 1e-9) {  // sums of fractions: 0.4 + 0.6 may be 0.99…
    ++stats_.rate_limited;
    return false;
  }
  b.tokens -= 1.0;
  queue_.push_back(
      Pending{object, type, reason, message, options_.clock->WallNow()});
  return true;
}

bool EventRecorder::Flush(absl::Duration timeout) {
  return idle_.WaitUntil(
      [this] {
        absl::MutexLock l(&mu_);
        return queue_.empty() && !busy_;
      },
      timeout);
}

EventRecorder::Stats EventRecorder::stats() const {
  absl::MutexLock l(&mu_);
  Stats s = stats_;
  s.pending = static_cast<int64_t>(queue_.size()) + (busy_ ? 1 : 0);
  return s;
}

absl::Status EventRecorder::LastError() const {
  absl::MutexLock l(&mu_);
  return last_error_;
}

void EventRecorder::Run() {
  pthread_setname_np(pthread_self(), "kube-events");
  while (true) {
    Pending p;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stopping_;
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_ && options_.clock->Monotonic() >= flush_until_) {
        stats_.dropped += static_cast<int64_t>(queue_.size());
        queue_.clear();
      }
      if (queue_.empty()) break;  // stopping, and everything written
      p = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    Write(p);
    {
      absl::MutexLock l(&mu_);
      busy_ = false;
    }
    idle_.NotifyAll();
  }
  idle_.NotifyAll();  // what was left is dropped: Flush() need not wait
}

void EventRecorder::Write(const Pending& p) {
  const Resource& events = EventResource();
  std::string ns =
      p.object.namespace_.empty() ? "default" : p.object.namespace_;
  std::string ts = FormatKubeTime(p.at);
  std::string agg_key = absl::StrCat(ObjectId(p.object), "/", TypeName(p.type),
                                     "/", p.reason, "/", p.message);
  absl::Duration now = options_.clock->Monotonic();
  Written prior;
  bool repeat = false;
  uint64_t seq;
  {
    absl::MutexLock l(&mu_);
    auto it = written_.find(agg_key);
    if (it != written_.end() &&
        now - it->second.last < options_.aggregate_window) {
      prior = it->second;
      repeat = true;
    }
    seq = ++sequence_;
  }
  absl::Status status;
  if (repeat) {
    Json patch = Json::object();
    patch["count"] = Json::number(prior.count + 1);
    patch["lastTimestamp"] = Json::string(ts);
    auto r = client_->MergePatch(events, prior.namespace_, prior.name, patch);
    if (r.ok()) {
      absl::MutexLock l(&mu_);
      Written& w = written_[agg_key];
      w.count = prior.count + 1;
      w.last = now;
      ++stats_.aggregated;
      return;
    }
    if (!absl::IsNotFound(r.status())) status = r.status();
    // The Event expired (the apiserver keeps them about an hour): create a
    // fresh one.
  }
  if (status.ok()) {
    std::string name = EventName(p.object.name, p.at, seq);
    Json ev = NewEvent({p.object, p.type, p.reason, p.message, ts}, ns, name,
                       options_);
    auto r = client_->Create(events, ns, ev);
    if (r.ok()) {
      absl::MutexLock l(&mu_);
      written_[agg_key] = Written{ns, name, 1, ts, now};
      ++stats_.created;
      // Forget aggregation state that can no longer match, so the map stays
      // bounded.
      for (auto it = written_.begin(); it != written_.end();) {
        it = now - it->second.last >= options_.aggregate_window
                 ? written_.erase(it)
                 : ++it;
      }
      return;
    }
    status = r.status();
  }
  absl::MutexLock l(&mu_);
  ++stats_.failed;
  last_error_ = status;
}

}  // namespace mcl::kube
