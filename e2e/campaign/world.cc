#include "e2e/campaign/world.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "common/contract.h"
#include "testbed/cc/free_port.h"

namespace mcl::campaign {
namespace world_internal {

int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

int PortOf(absl::string_view url) {
  int port = 0;
  size_t colon = url.rfind(':');
  if (colon != absl::string_view::npos) {
    (void)absl::SimpleAtoi(url.substr(colon + 1), &port);
  }
  return port;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

bool Accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

}  // namespace world_internal

using world_internal::Accepts;
using world_internal::MonoNs;
using world_internal::PortOf;
using world_internal::ReadFile;
using world_internal::WriteFile;

std::string World::Name(int cluster, char kind, int index) {
  return absl::StrCat("c", cluster, std::string(1, kind), index);
}

int World::ClusterOf(const std::string& name) {
  int c = 0;
  if (name.size() >= 2 && name[0] == 'c') {
    (void)absl::SimpleAtoi(name.substr(1, 1), &c);
  }
  return c;
}

absl::StatusOr<std::unique_ptr<World>> World::Start(testbed::Testbed* tb,
                                                    WorldOptions options) {
  std::unique_ptr<World> w(new World(tb, std::move(options)));
  absl::Status s = w->Build();
  if (!s.ok()) return s;
  return w;
}

World::~World() { StopAll(); }

World::Proc* World::AddProc(const std::string& name, const std::string& kind,
                            std::vector<std::string> argv) {
  auto p = std::make_unique<Proc>();
  p->name = name;
  p->kind = kind;
  p->argv = std::move(argv);
  p->log = absl::StrCat(o_.dir, "/", name, ".log");
  if (o_.faketime.count(kind) != 0) {
    p->clock_file = absl::StrCat(o_.dir, "/", name, ".clock");
    (void)WriteFile(p->clock_file, "+0\n");
    p->env = {{"LD_PRELOAD", o_.binaries.faketime},
              {"FAKETIME_TIMESTAMP_FILE", p->clock_file},
              {"FAKETIME_DONT_FAKE_MONOTONIC", "1"},
              {"FAKETIME_CACHE_DURATION", "1"}};
  }
  Proc* raw = p.get();
  procs_[name] = std::move(p);
  return raw;
}

absl::StatusOr<std::string> World::Kubeconfig(int cluster,
                                              testbed::Identity who, int port,
                                              const std::string& name) {
  const std::string& real = tb_->cluster(cluster).apiserver;
  std::string text = ReadFile(tb_->kubeconfig(cluster, who));
  std::string proxied = absl::StrReplaceAll(
      text, {{absl::StrCat("server: ", real),
              absl::StrCat("server: https://127.0.0.1:", port)}});
  if (proxied == text) {
    return absl::InternalError(absl::StrCat("kubeconfig of cluster ", cluster,
                                            " does not name ", real));
  }
  std::string path = absl::StrCat(o_.dir, "/", name, ".kubeconfig");
  absl::Status s = WriteFile(path, proxied);
  if (!s.ok()) return s;
  return path;
}

absl::Status World::CreateNamespaces() {
  for (int c = 0; c < o_.shape.clusters; ++c) {
    auto out = tb_->Kubectl(
        c, {"apply", "-f", "-"},
        absl::StrCat("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ",
                     lock_ns_, "\n---\napiVersion: v1\nkind: Namespace\n",
                     "metadata:\n  name: ", controller_ns_, "\n"));
    if (!out.ok()) return out.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<int> World::AddLink(const std::string& name, int upstream) {
  links_.push_back(name);
  return proxy_->AddLink(name, upstream);
}

absl::Status World::AddController(int c, int r) {
  const std::string name = Name(c, 'r', r);
  auto port = AddLink(name + ">api", PortOf(tb_->cluster(c).apiserver));
  if (!port.ok()) return port.status();
  auto kc = Kubeconfig(c, testbed::Identity::kController, *port, name);
  if (!kc.ok()) return kc.status();
  std::vector<std::string> endpoints;
  const auto& members = tb_->global_etcd_members();
  for (size_t j = 0; j < members.size(); ++j) {
    auto ep = AddLink(absl::StrCat(name, ">etcd", j), PortOf(members[j]));
    if (!ep.ok()) return ep.status();
    endpoints.push_back(absl::StrCat("127.0.0.1:", *ep));
  }
  AddProc(name, "controller",
          {o_.binaries.controller, "--kubeconfig=" + *kc,
           "--cluster-name=" + tb_->cluster(c).name,
           "--etcd-endpoints=" + absl::StrJoin(endpoints, ","),
           "--session-ttl=" + absl::FormatDuration(o_.shape.ttl),
           "--namespace=" + controller_ns_, "--watch-namespaces=" + lock_ns_,
           "--identity=" + name, "--metrics-address=127.0.0.1:0",
           "--key-prefix=/mcl/" + o_.run_id});
  return absl::OkStatus();
}

absl::Status World::AddCandidate(int c, int k) {
  const std::string sc = Name(c, 's', k);
  auto port = AddLink(sc + ">api", PortOf(tb_->cluster(c).apiserver));
  if (!port.ok()) return port.status();
  auto kc = Kubeconfig(c, testbed::Identity::kSidecar, *port, sc);
  if (!kc.ok()) return kc.status();
  auto listen = testbed::FreeLoopbackPort();
  if (!listen.ok()) return listen.status();
  const int64_t ttl_s = absl::ToInt64Seconds(o_.shape.ttl);
  Proc* p = AddProc(
      sc, "sidecar",
      {o_.binaries.sidecar, "--kubeconfig=" + *kc,
       absl::StrCat("--listen=127.0.0.1:", *listen), "--namespace=" + lock_ns_,
       "--cluster-name=" + tb_->cluster(c).name, "--identity=" + sc,
       absl::StrCat("--lease-duration=", ttl_s, "s")});
  p->listen = absl::StrCat("127.0.0.1:", *listen);
  const std::string app = Name(c, 'a', k);
  auto app_port = AddLink(app + ">sc", *listen);
  if (!app_port.ok()) return app_port.status();
  AddProc(
      app, "app",
      {o_.binaries.recorder, absl::StrCat("--sidecar=127.0.0.1:", *app_port),
       std::string("--lock=") + World::kLock, "--namespace=" + lock_ns_,
       "--identity=" + app, "--name=" + app,
       absl::StrCat("--lease-duration=", ttl_s), "--observe"});
  return absl::OkStatus();
}

absl::Status World::Build() {
  lock_ns_ = absl::StrCat("run-", o_.run_id);
  controller_ns_ = absl::StrCat("mcl-", o_.run_id);
  auto proxy = faultproxy::FaultProxy::Start();
  if (!proxy.ok()) return proxy.status();
  proxy_ = std::move(*proxy);
  absl::Status s = CreateNamespaces();
  for (int c = 0; s.ok() && c < o_.shape.clusters; ++c) {
    for (int r = 0; s.ok() && r < o_.shape.replicas; ++r)
      s = AddController(c, r);
    for (int k = 0; s.ok() && k < o_.shape.sidecars; ++k)
      s = AddCandidate(c, k);
  }
  // Controllers first (and their heartbeats), then sidecars, then apps.
  for (const char* kind : {"controller", "sidecar", "app"}) {
    for (auto& [name, p] : procs_) {
      if (!s.ok()) return s;
      if (p->kind != kind) continue;
      absl::MutexLock l(&p->mu);
      s = StartLocked(p.get());
    }
    if (s.ok() && std::string(kind) == "controller") s = WaitForControllers();
  }
  return s;
}

absl::Status World::WaitForControllers() {
  for (int c = 0; c < o_.shape.clusters; ++c) {
    const std::string hb = contract::HeartbeatLeaseName(tb_->cluster(c).name);
    bool ready = testbed::WaitUntil(
        [&] {
          return tb_->Kubectl(c, {"get", "lease", "-n", controller_ns_, hb})
              .ok();
        },
        absl::Seconds(60));
    if (!ready) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no controller of cluster ", c, " wrote its heartbeat Lease ", hb,
          " within 60 s; logs in ", o_.dir));
    }
  }
  return absl::OkStatus();
}

World::Proc* World::Find(const std::string& name) const {
  auto it = procs_.find(name);
  if (it != procs_.end()) return it->second.get();
  auto& self = const_cast<World&>(*this);
  absl::MutexLock l(&self.twins_mu_);
  auto t = self.twins_.find(name);
  return t == self.twins_.end() ? nullptr : t->second.get();
}

bool World::IsTestbedComponent(const std::string& target) const {
  return absl::StartsWith(target, "apiserver-") ||
         absl::StartsWith(target, "global-etcd") ||
         absl::StartsWith(target, "etcd-");
}

std::vector<std::string> World::apps() const {
  std::vector<std::string> out;
  for (const auto& [name, p] : procs_) {
    if (p->kind == "app") out.push_back(name);
  }
  return out;
}

std::string World::SidecarOf(const std::string& app) const {
  return Name(ClusterOf(app), 's', app.back() - '0');
}

std::vector<std::string> World::links() const { return links_; }

std::string World::ActiveReplica(int cluster) {
  auto out = tb_->Kubectl(
      cluster, {"get", "lease", "-n", controller_ns_,
                contract::ElectionLeaseName(tb_->cluster(cluster).name), "-o",
                "jsonpath={.spec.holderIdentity}"});
  std::string holder =
      out.ok() ? std::string(absl::StripAsciiWhitespace(*out)) : "";
  if (Find(holder) != nullptr) return holder;
  return Name(cluster, 'r', 0);
}

std::string World::Leader() {
  RecorderLog log;
  ReadLogs(&log);
  const absl::Duration now = absl::Nanoseconds(MonoNs());
  std::string leader;
  for (const e2e::Interval& i : e2e::IntervalsFromEvents(log.events)) {
    if (i.start <= now && now < i.end) leader = i.app;
  }
  // A twin leads with another app's identity; aim at the app it imitates.
  if (absl::StartsWith(leader, "twin")) leader = "";
  return leader;
}

void World::ReadLogs(RecorderLog* out) const {
  for (const auto& [name, p] : procs_) {
    if (p->kind == "app") ParseRecorderLog(ReadFile(p->log), out);
  }
  auto& self = const_cast<World&>(*this);
  absl::MutexLock l(&self.twins_mu_);
  for (const auto& [name, p] : twins_) ParseRecorderLog(ReadFile(p->log), out);
}

void World::ResumeComponents() {
  std::set<std::string> paused;
  {
    absl::MutexLock l(&paused_mu_);
    paused.swap(paused_components_);
  }
  for (const std::string& c : paused) {
    auto pid = tb_->Pid(c);
    if (pid.ok()) kill(*pid, SIGCONT);
  }
}

absl::Status World::HealAll() {
  absl::Status first;
  auto keep = [&](absl::Status s) {
    if (!s.ok() && first.ok()) first = s;
  };
  for (const std::string& link : links_) keep(SetLink(link, {}));
  ResumeComponents();
  std::vector<std::string> components = {};
  for (int c = 0; c < o_.shape.clusters; ++c) {
    components.push_back(absl::StrCat("apiserver-", c));
  }
  for (int j = 0; j < o_.shape.etcd_members; ++j) {
    components.push_back(testbed::Testbed::GlobalEtcdMember(j));
  }
  for (const std::string& c : components) {
    if (!tb_->Pid(c).ok()) keep(tb_->StartAgain(c));
  }
  for (const char* kind : {"controller", "sidecar", "app"}) {
    for (auto& [name, p] : procs_) {
      if (p->kind != kind) continue;
      if (!p->clock_file.empty()) keep(StepClock(name, 0));
      keep(StartAgain(name));
    }
  }
  absl::MutexLock l(&twins_mu_);
  for (auto& [name, p] : twins_) {
    absl::MutexLock pl(&p->mu);
    keep(StopLocked(p.get(), SIGTERM));
  }
  return first;
}

void World::StopAll() {
  {
    absl::MutexLock l(&twins_mu_);
    for (auto& [name, p] : twins_) {
      absl::MutexLock pl(&p->mu);
      (void)StopLocked(p.get(), SIGKILL);
    }
  }
  for (const char* kind : {"app", "sidecar", "controller"}) {
    for (auto& [name, p] : procs_) {
      if (p->kind != kind) continue;
      absl::MutexLock l(&p->mu);
      (void)StopLocked(p.get(), SIGKILL);
    }
  }
  ResumeComponents();
}

}  // namespace mcl::campaign
