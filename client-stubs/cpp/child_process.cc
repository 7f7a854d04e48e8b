#include "client-stubs/cpp/child_process.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mcl::cli {

absl::StatusOr<std::string> FindExecutable(const std::string& argv0) {
  std::vector<std::string> candidates;
  if (argv0.find('/') != std::string::npos) {
    candidates.push_back(argv0);
  } else {
    const char* path = std::getenv("PATH");
    for (absl::string_view dir :
         absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':')) {
      candidates.push_back(absl::StrCat(dir.empty() ? "." : dir, "/", argv0));
    }
  }
  bool found_not_executable = false;
  for (const std::string& c : candidates) {
    struct stat st {};
    if (stat(c.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;
    if (access(c.c_str(), X_OK) == 0) return c;
    found_not_executable = true;
  }
  if (found_not_executable) {
    return absl::PermissionDeniedError(
        absl::StrCat(argv0, ": found but not executable"));
  }
  return absl::NotFoundError(
      absl::StrCat(argv0, ": command not found",
                   argv0.find('/') == std::string::npos ? " in PATH" : ""));
}

ChildProcess::ChildProcess(pid_t pid, std::function<void()> on_exit)
    : pid_(pid) {
  waiter_ = std::thread([this, on_exit = std::move(on_exit)] {
    siginfo_t info{};
    int r;
    do {
      r = waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT);
    } while (r != 0 && errno == EINTR);
    {
      absl::MutexLock l(&mu_);
      exited_ = true;
    }
    if (on_exit) on_exit();
  });
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(
    const std::vector<std::string>& argv, const std::vector<std::string>& env,
    std::function<void()> on_exit) {
  absl::StatusOr<std::string> path = FindExecutable(argv.at(0));
  if (!path.ok()) return path.status();
  std::vector<char*> cargv, cenv;
  for (const std::string& a : argv)
    cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const std::string& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // mcl blocks SIGTERM/SIGINT (a thread takes them with sigwait) and ignores
  // SIGPIPE; CMD must get the ordinary behaviour of all three.
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGQUIT, SIGCHLD}) {
    sigaddset(&defaults, s);
  }
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);  // a new group, led by CMD
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                      POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, path->c_str(), nullptr, &attr, cargv.data(),
                              cenv.data());
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    return absl::InternalError(
        absl::StrCat("cannot start ", *path, ": ", strerror(err)));
  }
  return std::unique_ptr<ChildProcess>(
      new ChildProcess(pid, std::move(on_exit)));
}

ChildProcess::~ChildProcess() {
  if (!exited()) SignalGroup(SIGKILL);
  Reap();
}

bool ChildProcess::exited() {
  absl::MutexLock l(&mu_);
  return exited_;
}

void ChildProcess::SignalGroup(int sig) {
  absl::MutexLock l(&mu_);
  // Before Reap the group id is still ours (CMD is alive or a zombie).
  if (!reaped_) kill(-pid_, sig);
}

int ChildProcess::Reap() {
  if (waiter_.joinable()) waiter_.join();
  absl::MutexLock l(&mu_);
  if (reaped_) return status_;
  kill(-pid_, SIGKILL);
  int st = 0;
  while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  status_ = WIFEXITED(st)     ? WEXITSTATUS(st)
            : WIFSIGNALED(st) ? 128 + WTERMSIG(st)
                              : 1;
  return status_;
}

}  // namespace mcl::cli
