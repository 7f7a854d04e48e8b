#include "testbed/cc/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace mcl::testbed {
namespace {

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Builds a NULL-terminated char* array over `strings` (which must outlive it).
std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::vector<std::string> MergedEnv(
    const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : extra) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

// The thread that forks every child of this process. A child asks the kernel
// for a signal when its parent dies (PR_SET_PDEATHSIG), so a test killed by
// SIGTERM or SIGKILL (a `timeout`, Bazel's test timeout) cannot leave its
// sidecars and controllers running. The kernel sends that signal when the
// *thread* that forked the child exits, not the process: a child forked from a
// short-lived thread (a fault injector, a test's helper thread) would be killed
// as soon as that thread returned. So every fork happens on this one thread,
// which lives as long as the process (it is never joined; the process's exit
// ends it, and that is exactly when the children must go).
class Forker {
 public:
  static Forker& Get() {
    static Forker* forker = new Forker();  // never destroyed: see above
    return *forker;
  }

  // Runs `fork_and_exec` (which forks, and in the child execs or _exits) on
  // the forking thread; returns what it returned.
  pid_t Run(const std::function<pid_t()>& fork_and_exec) {
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(
        +[](Request** r) { return *r == nullptr; }, &request_));
    Request req{&fork_and_exec};
    request_ = &req;
    mu_.Await(absl::Condition(&req.done));
    return req.pid;
  }

 private:
  struct Request {
    const std::function<pid_t()>* fork_and_exec;
    pid_t pid = -1;
    bool done = false;
  };

  Forker() {
    std::thread([this] { Loop(); }).detach();
  }

  void Loop() {
    absl::MutexLock l(&mu_);
    while (true) {
      mu_.Await(absl::Condition(
          +[](Request** r) { return *r != nullptr && !(*r)->done; },
          &request_));
      request_->pid = (*request_->fork_and_exec)();
      request_->done = true;
      request_ = nullptr;
    }
  }

  absl::Mutex mu_;
  Request* request_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// Forks and execs; the child's stdout+stderr go to `out_fd`, stdin from `in_fd`
// (-1: /dev/null). The child gets `death_signal` when this process dies.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                            const std::map<std::string, std::string>& env,
                            int in_fd, int out_fd, int death_signal) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  std::vector<std::string> args = argv;
  std::vector<std::string> envs = MergedEnv(env);
  std::vector<char*> cargs = CStrings(args);
  std::vector<char*> cenv = CStrings(envs);
  const pid_t parent = getpid();
  int fork_errno = 0;
  pid_t pid = Forker::Get().Run([&]() -> pid_t {
    pid_t p = fork();
    if (p < 0) fork_errno = errno;
    if (p != 0) return p;
    // Child: only async-signal-safe calls from here to exec.
    // A new process group, so a test can stop the process and anything it
    // started.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, death_signal);
    // The parent may have died between fork and prctl: then nobody will send
    // the signal, so leave now.
    if (getppid() != parent) _exit(126);
    int in = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    execvpe(cargs[0], cargs.data(), cenv.data());
    dprintf(2, "exec %s: %s\n", cargs[0], strerror(errno));
    _exit(127);
  });
  if (pid < 0)
    return absl::InternalError(absl::StrCat("fork: ", strerror(fork_errno)));
  return pid;
}

}  // namespace

absl::StatusOr<CommandResult> RunCommand(
    const std::vector<std::string>& argv, absl::Duration timeout,
    const std::string& stdin_data,
    const std::map<std::string, std::string>& env) {
  char out_path[] = "/tmp/mcl-cmd-XXXXXX";
  int out_fd = mkstemp(out_path);
  if (out_fd < 0)
    return absl::InternalError(absl::StrCat("mkstemp: ", strerror(errno)));
  unlink(out_path);
  int in_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0)
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  // Scripts (testbed.sh) get SIGTERM, so their traps can stop what they
  // started; the test bed's guard (testbed.sh up --owner) covers the rest.
  auto pid = Spawn(argv, env, in_pipe[0], out_fd, SIGTERM);
  close(in_pipe[0]);
  if (!pid.ok()) {
    close(in_pipe[1]);
    close(out_fd);
    return pid.status();
  }
  // Small inputs (manifests) fit in the pipe buffer; write then close so the
  // child sees EOF.
  size_t written = 0;
  while (written < stdin_data.size()) {
    ssize_t n = write(in_pipe[1], stdin_data.data() + written,
                      stdin_data.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  close(in_pipe[1]);
  absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  bool timed_out = false;
  while (true) {
    pid_t r = waitpid(*pid, &status, WNOHANG);
    if (r == *pid) break;
    if (absl::Now() > deadline) {
      kill(-*pid, SIGKILL);
      waitpid(*pid, &status, 0);
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CommandResult result;
  result.exit_code = DecodeWaitStatus(status);
  lseek(out_fd, 0, SEEK_SET);
  char buf[4096];
  ssize_t n;
  while ((n = read(out_fd, buf, sizeof buf)) > 0)
    result.output.append(buf, static_cast<size_t>(n));
  close(out_fd);
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(
        argv[0], " did not finish within ", absl::FormatDuration(timeout),
        "; output:\n", result.output));
  }
  return result;
}

absl::StatusOr<Subprocess> Subprocess::Start(
    const std::vector<std::string>& argv, const std::string& log_file,
    const std::map<std::string, std::string>& env) {
  int fd =
      open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return absl::InternalError(
        absl::StrCat("open ", log_file, ": ", strerror(errno)));
  auto pid = Spawn(argv, env, -1, fd, SIGKILL);
  close(fd);
  if (!pid.ok()) return pid.status();
  return Subprocess(*pid, log_file);
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(other.pid_),
      exit_code_(other.exit_code_),
      log_file_(std::move(other.log_file_)) {
  other.pid_ = -1;
}

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0) (void)Stop(absl::ZeroDuration());
    pid_ = other.pid_;
    exit_code_ = other.exit_code_;
    log_file_ = std::move(other.log_file_);
    other.pid_ = -1;
  }
  return *this;
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && exit_code_ < 0) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
}

bool Subprocess::running() {
  if (pid_ <= 0 || exit_code_ >= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = DecodeWaitStatus(status);
    return false;
  }
  return true;
}

absl::Status Subprocess::Signal(int sig) {
  if (!running())
    return absl::FailedPreconditionError("process is not running");
  if (kill(pid_, sig) != 0)
    return absl::InternalError(absl::StrCat("kill: ", strerror(errno)));
  return absl::OkStatus();
}

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (running()) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("pid ", pid_, " still running after ",
                       absl::FormatDuration(timeout)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return exit_code_;
}

absl::StatusOr<int> Subprocess::Stop(absl::Duration grace) {
  if (!running()) return exit_code_;
  kill(pid_, SIGTERM);
  auto code = Wait(grace);
  if (code.ok()) return code;
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  return Wait(absl::Seconds(10));
}

std::string Subprocess::Log() const {
  std::ifstream in(log_file_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Subprocess::WaitForLog(const std::string& needle,
                            absl::Duration timeout) const {
  return WaitUntil([&] { return Log().find(needle) != std::string::npos; },
                   timeout);
}

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  if (srcdir == nullptr) return path;  // run by hand from the repo root
  return absl::StrCat(srcdir, "/", ws != nullptr ? ws : "mcl", "/", path);
}

bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace mcl::testbed
