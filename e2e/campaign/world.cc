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
namespace {

constexpr char kLock[] = "campaign-lock";

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

}  // namespace

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

absl::Status World::Build() {
  lock_ns_ = absl::StrCat("run-", o_.run_id);
  controller_ns_ = absl::StrCat("mcl-", o_.run_id);
  auto proxy = faultproxy::FaultProxy::Start();
  if (!proxy.ok()) return proxy.status();
  proxy_ = std::move(*proxy);
  absl::Status s = CreateNamespaces();
  if (!s.ok()) return s;
  auto link = [&](const std::string& name,
                  int upstream) -> absl::StatusOr<int> {
    links_.push_back(name);
    return proxy_->AddLink(name, upstream);
  };
  const Shape& sh = o_.shape;
  const std::string ttl = absl::FormatDuration(sh.ttl);
  const std::string lease = absl::StrCat(absl::ToInt64Seconds(sh.ttl), "s");
  for (int c = 0; c < sh.clusters; ++c) {
    const int api = PortOf(tb_->cluster(c).apiserver);
    const std::string cluster = tb_->cluster(c).name;
    for (int r = 0; r < sh.replicas; ++r) {
      const std::string name = Name(c, 'r', r);
      auto port = link(name + ">api", api);
      if (!port.ok()) return port.status();
      auto kc = Kubeconfig(c, testbed::Identity::kController, *port, name);
      if (!kc.ok()) return kc.status();
      std::vector<std::string> endpoints;
      const auto& members = tb_->global_etcd_members();
      for (size_t j = 0; j < members.size(); ++j) {
        auto ep = link(absl::StrCat(name, ">etcd", j), PortOf(members[j]));
        if (!ep.ok()) return ep.status();
        endpoints.push_back(absl::StrCat("127.0.0.1:", *ep));
      }
      AddProc(
          name, "controller",
          {o_.binaries.controller, "--kubeconfig=" + *kc,
           "--cluster-name=" + cluster,
           "--etcd-endpoints=" + absl::StrJoin(endpoints, ","),
           "--session-ttl=" + ttl, "--namespace=" + controller_ns_,
           "--watch-namespaces=" + lock_ns_, "--identity=" + name,
           "--metrics-address=127.0.0.1:0", "--key-prefix=/mcl/" + o_.run_id});
    }
    for (int k = 0; k < sh.sidecars; ++k) {
      const std::string sc = Name(c, 's', k);
      auto port = link(sc + ">api", api);
      if (!port.ok()) return port.status();
      auto kc = Kubeconfig(c, testbed::Identity::kSidecar, *port, sc);
      if (!kc.ok()) return kc.status();
      auto listen = testbed::FreeLoopbackPort();
      if (!listen.ok()) return listen.status();
      Proc* p = AddProc(sc, "sidecar",
                        {o_.binaries.sidecar, "--kubeconfig=" + *kc,
                         absl::StrCat("--listen=127.0.0.1:", *listen),
                         "--namespace=" + lock_ns_, "--cluster-name=" + cluster,
                         "--identity=" + sc, "--lease-duration=" + lease});
      p->listen = absl::StrCat("127.0.0.1:", *listen);
      const std::string app = Name(c, 'a', k);
      auto app_port = link(app + ">sc", *listen);
      if (!app_port.ok()) return app_port.status();
      AddProc(app, "app",
              {o_.binaries.recorder,
               absl::StrCat("--sidecar=127.0.0.1:", *app_port),
               std::string("--lock=") + kLock, "--namespace=" + lock_ns_,
               "--identity=" + app, "--name=" + app,
               absl::StrCat("--lease-duration=", absl::ToInt64Seconds(sh.ttl)),
               "--observe"});
    }
  }
  for (const char* kind : {"controller", "sidecar", "app"}) {
    for (auto& [name, p] : procs_) {
      if (p->kind != kind) continue;
      absl::MutexLock l(&p->mu);
      s = StartLocked(p.get());
      if (!s.ok()) return s;
    }
    if (std::string(kind) == "controller") {
      s = WaitForControllers();
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
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

void World::NoteExitLocked(Proc* p) {
  if (p->p == nullptr || p->stopped_by_fault || p->p->running()) return;
  auto code = p->p->Wait(absl::ZeroDuration());
  absl::MutexLock l(&exits_mu_);
  exits_.push_back(absl::StrCat(p->name, " exit ", code.ok() ? *code : -1));
  p->stopped_by_fault = true;  // noted once
}

std::vector<std::string> World::UnexpectedExits() {
  for (auto& [name, p] : procs_) {
    absl::MutexLock l(&p->mu);
    NoteExitLocked(p.get());
  }
  absl::MutexLock l(&exits_mu_);
  return exits_;
}

absl::Status World::StartLocked(Proc* p) {
  if (p->p != nullptr && p->p->running()) return absl::OkStatus();
  NoteExitLocked(p);
  auto sub = testbed::Subprocess::Start(p->argv, p->log, p->env);
  if (!sub.ok()) return sub.status();
  p->p = std::make_unique<testbed::Subprocess>(std::move(*sub));
  p->paused = false;
  p->stopped_by_fault = false;
  if (!p->listen.empty()) {
    const int port = PortOf(p->listen);
    if (!testbed::WaitUntil([&] { return Accepts(port) || !p->p->running(); },
                            absl::Seconds(20)) ||
        !p->p->running()) {
      return absl::DeadlineExceededError(absl::StrCat(
          p->name, " did not listen on ", p->listen, "; log ", p->log));
    }
  }
  return absl::OkStatus();
}

absl::Status World::StopLocked(Proc* p, int sig) {
  NoteExitLocked(p);
  p->stopped_by_fault = true;
  if (p->p == nullptr || !p->p->running()) return absl::OkStatus();
  const pid_t pid = p->p->pid();
  kill(pid, sig);
  const int64_t at = MonoNs();
  if (sig == SIGTERM) kill(pid, SIGCONT);  // a paused process must act on it
  auto code = p->p->Wait(sig == SIGKILL ? absl::Seconds(5) : absl::Seconds(15));
  if (!code.ok()) {
    kill(pid, SIGKILL);
    (void)p->p->Wait(absl::Seconds(5));
  }
  p->paused = false;
  if (p->kind == "app") {
    // The app can do nothing after its death: the checker closes its
    // leadership there. Appended after it died, so no line interleaves.
    int fd = open(p->log.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd >= 0) {
      std::string line = DeathLine(p->name, at);
      (void)!write(fd, line.data(), line.size());
      close(fd);
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

absl::Status World::Signal(const std::string& target, int sig) {
  if (IsTestbedComponent(target)) {
    if (sig == SIGKILL) return tb_->Kill(target);
    if (sig == SIGTERM) return tb_->Stop(target);
    auto pid = tb_->Pid(target);
    if (!pid.ok()) return pid.status();
    absl::MutexLock l(&paused_mu_);
    if (sig == SIGSTOP) paused_components_.insert(target);
    if (sig == SIGCONT) paused_components_.erase(target);
    kill(*pid, sig);
    return absl::OkStatus();
  }
  Proc* p = Find(target);
  if (p == nullptr) return absl::NotFoundError("no process " + target);
  absl::MutexLock l(&p->mu);
  if (sig == SIGKILL || sig == SIGTERM) return StopLocked(p, sig);
  if (p->p == nullptr || !p->p->running()) return absl::OkStatus();
  kill(p->p->pid(), sig);
  p->paused = sig == SIGSTOP;
  return absl::OkStatus();
}

absl::Status World::StartAgain(const std::string& target) {
  if (IsTestbedComponent(target)) {
    if (tb_->Pid(target).ok()) return Signal(target, SIGCONT);
    return tb_->StartAgain(target);
  }
  Proc* p = Find(target);
  if (p == nullptr) return absl::NotFoundError("no process " + target);
  absl::MutexLock l(&p->mu);
  if (p->paused && p->p != nullptr) {
    kill(p->p->pid(), SIGCONT);
    p->paused = false;
  }
  return StartLocked(p);
}

absl::Status World::SetLink(const std::string& link,
                            faultproxy::FaultProxy::Fault f) {
  return proxy_->Set(link, f);
}

absl::Status World::StepClock(const std::string& target, int64_t offset) {
  Proc* p = Find(target);
  if (p == nullptr || p->clock_file.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(target, " does not run under libfaketime"));
  }
  // Written whole, then renamed: libfaketime never reads half a file.
  const std::string tmp = p->clock_file + ".tmp";
  absl::Status s =
      WriteFile(tmp, absl::StrCat(offset >= 0 ? "+" : "", offset, "s\n"));
  if (!s.ok()) return s;
  if (rename(tmp.c_str(), p->clock_file.c_str()) != 0) {
    return absl::InternalError("rename " + tmp);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> World::StartTwin(const std::string& app,
                                             bool other_cluster) {
  const int c = ClusterOf(app);
  const int k = app.back() - '0';
  std::string sidecar = other_cluster
                            ? Name((c + 1) % o_.shape.clusters, 's', k)
                            : Name(c, 's', (k + 1) % o_.shape.sidecars);
  Proc* sc = Find(sidecar);
  if (sc == nullptr) return absl::NotFoundError("no sidecar " + sidecar);
  std::string name;
  Proc* p;
  {
    absl::MutexLock l(&twins_mu_);
    name = absl::StrCat("twin", next_twin_++);
    auto proc = std::make_unique<Proc>();
    p = proc.get();
    p->name = name;
    p->kind = "app";
    p->log = absl::StrCat(o_.dir, "/", name, ".log");
    p->argv = {
        o_.binaries.recorder,
        "--sidecar=" + sc->listen,
        std::string("--lock=") + kLock,
        "--namespace=" + lock_ns_,
        "--identity=" + app,
        "--name=" + name,
        absl::StrCat("--lease-duration=", absl::ToInt64Seconds(o_.shape.ttl))};
    twins_[name] = std::move(proc);
  }
  absl::MutexLock l(&p->mu);
  absl::Status s = StartLocked(p);
  if (!s.ok()) return s;
  return name;
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
