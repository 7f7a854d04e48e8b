// Subprocess: start a real process (a server, a controller, a sidecar), capture
// its output in a file, signal it, and wait for it with a bound. Tests use it
// to run the project's binaries for real.
//
// Every child dies with this process, however it ends (SIGTERM from `timeout`,
// SIGKILL, a crash): it is started with PR_SET_PDEATHSIG, from one forking
// thread that lives as long as the process (the kernel sends the signal when
// the thread that forked exits, not the process). Processes that a child
// starts and leaves behind (testbed.sh's servers) are the test bed's guard's
// job: testbed.sh up --owner.
#ifndef MCL_TESTBED_CC_SUBPROCESS_H_
#define MCL_TESTBED_CC_SUBPROCESS_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mcl::testbed {

struct CommandResult {
  int exit_code = -1;  // 128+signal when killed by a signal
  std::string output;  // stdout and stderr, interleaved
};

// Runs argv to completion (bounded by `timeout`, then SIGKILL) and returns its
// output. The command gets SIGTERM if this process dies first (a script's trap
// can then clean up).
absl::StatusOr<CommandResult> RunCommand(
    const std::vector<std::string>& argv, absl::Duration timeout,
    const std::string& stdin_data = "",
    const std::map<std::string, std::string>& env = {});

class Subprocess {
 public:
  // Starts argv with extra environment `env`; stdout and stderr go to
  // `log_file`. The process gets SIGKILL if this process dies first.
  static absl::StatusOr<Subprocess> Start(
      const std::vector<std::string>& argv, const std::string& log_file,
      const std::map<std::string, std::string>& env = {});
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  // Kills (SIGKILL) and reaps the process if still running.
  ~Subprocess();

  pid_t pid() const { return pid_; }
  const std::string& log_file() const { return log_file_; }
  bool running();
  absl::Status Signal(int sig);
  // Waits up to `timeout` for exit; returns the exit code (128+signal if
  // signalled).
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // SIGTERM, then SIGKILL after `grace`.
  absl::StatusOr<int> Stop(absl::Duration grace = absl::Seconds(10));
  // The log so far.
  std::string Log() const;
  // Waits until the log contains `needle`, up to `timeout`.
  bool WaitForLog(const std::string& needle, absl::Duration timeout) const;

 private:
  Subprocess(pid_t pid, std::string log_file)
      : pid_(pid), log_file_(std::move(log_file)) {}
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string log_file_;
};

// Path of a file in this test's runfiles, e.g. Runfile("testbed/testbed.sh").
std::string Runfile(const std::string& workspace_relative_path);

// Polls `condition` every 20 ms until it holds or `timeout` passes. For
// conditions that are not events (a process exited, a file appeared); prefer
// waiting on events where the API has them.
bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout);

}  // namespace mcl::testbed

#endif  // MCL_TESTBED_CC_SUBPROCESS_H_
