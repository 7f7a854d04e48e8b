// The CMD that `mcl run` tests run: it appends what it saw to the file named
// by its first argument, one line per happening, with CLOCK_MONOTONIC in ns:
//   start pid=P pgid=G mono=NS token=... lock=... namespace=... identity=...
//         until=... until_wall=...
//   term mono=NS            (SIGTERM arrived; exits 0 unless told otherwise)
// Flags after the file: --ignore-term (keep running after SIGTERM; only
// SIGKILL ends it), --exit=N (exit N right after the start line).
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

long long MonoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

std::string Env(const char* k) {
  const char* v = std::getenv(k);
  return v == nullptr ? "<unset>" : v;
}

void Append(const char* file, const std::string& line) {
  const int fd = open(file, O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd < 0) return;
  const std::string l = line + "\n";
  (void)!write(fd, l.data(), l.size());
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  bool ignore_term = false;
  int exit_code = -1;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--ignore-term") == 0) ignore_term = true;
    if (std::strncmp(argv[i], "--exit=", 7) == 0)
      exit_code = std::atoi(argv[i] + 7);
  }
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, nullptr);
  Append(argv[1], "start pid=" + std::to_string(getpid()) +
                      " pgid=" + std::to_string(getpgrp()) +
                      " mono=" + std::to_string(MonoNs()) + " token=" +
                      Env("MCL_FENCING_TOKEN") + " lock=" + Env("MCL_LOCK") +
                      " namespace=" + Env("MCL_NAMESPACE") +
                      " identity=" + Env("MCL_LEADER_IDENTITY") +
                      " until=" + Env("MCL_VALID_UNTIL_MONOTONIC_NS") +
                      " until_wall=" + Env("MCL_VALID_UNTIL"));
  if (exit_code >= 0) return exit_code;
  for (;;) {
    int sig = 0;
    sigwait(&term, &sig);
    Append(argv[1], "term mono=" + std::to_string(MonoNs()));
    if (!ignore_term) return 0;
  }
}
