// ChildProcess: `mcl run`'s CMD, in a process group of its own, so that a
// signal reaches everything CMD started (shell pipelines, workers) and not
// mcl itself. One thread per child waits for its exit with waitid(WNOWAIT):
// the exited child stays a zombie until Reap(), so its pid, and with it the
// process group id, cannot be reused while mcl may still signal the group.
#ifndef MCL_CLIENT_STUBS_CPP_CHILD_PROCESS_H_
#define MCL_CLIENT_STUBS_CPP_CHILD_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace mcl::cli {

class ChildProcess {
 public:
  // Starts argv[0] (searched in PATH) with `env` as its whole environment, in
  // a new process group, with default signal dispositions and an empty signal
  // mask. `on_exit` runs on the waiter thread when the child exits.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(
      const std::vector<std::string>& argv, const std::vector<std::string>& env,
      std::function<void()> on_exit);
  // Kills the group and reaps, if not done yet.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool exited();
  // Signals CMD's whole process group (nothing after Reap).
  void SignalGroup(int sig);
  // Once exited: SIGKILLs whatever is left in the group (a CMD must not leave
  // leader work running behind it), reaps CMD and returns its status as a
  // shell reports it (the exit code, or 128 + the signal that killed it).
  int Reap();

 private:
  ChildProcess(pid_t pid, std::function<void()> on_exit);

  const pid_t pid_;
  absl::Mutex mu_;
  bool exited_ ABSL_GUARDED_BY(mu_) = false;
  bool reaped_ ABSL_GUARDED_BY(mu_) = false;
  int status_ = 0;
  std::thread waiter_;
};

// Where argv0 would be found (PATH search unless it contains '/'), or
// NOT_FOUND / PERMISSION_DENIED (found, not executable) saying so.
absl::StatusOr<std::string> FindExecutable(const std::string& argv0);

}  // namespace mcl::cli

#endif  // MCL_CLIENT_STUBS_CPP_CHILD_PROCESS_H_
