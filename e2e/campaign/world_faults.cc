// World's fault operations: stopping, starting, pausing and resuming processes
// and test-bed components, links, clocks, and a second candidacy of an
// identity (world.h).
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "e2e/campaign/world.h"

namespace mcl::campaign {

using world_internal::Accepts;
using world_internal::MonoNs;
using world_internal::PortOf;
using world_internal::WriteFile;

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
        std::string("--lock=") + World::kLock,
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

}  // namespace mcl::campaign
