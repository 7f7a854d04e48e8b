// testbed_owner: starts a one-cluster test bed and a child process (from a
// thread that then exits), prints every PID they own, and waits to be killed.
// orphan_test kills it and checks that nothing it started survives.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/time/time.h"
#include "testbed/cc/subprocess.h"
#include "testbed/cc/testbed.h"

int main() {
  auto tb = mcl::testbed::Testbed::Start(1);
  if (!tb.ok()) {
    fprintf(stderr, "cannot start the test bed: %s\n",
            tb.status().ToString().c_str());
    return 1;
  }
  // A child forked on behalf of a thread that exits at once: it must live on
  // until this process dies (PR_SET_PDEATHSIG fires on the forking thread's
  // exit, so Subprocess forks on a thread of its own).
  pid_t child = -1;
  std::thread([&] {
    auto p = mcl::testbed::Subprocess::Start({"sleep", "600"},
                                             (*tb)->dir() + "/sleep.log");
    if (p.ok()) {
      child = p->pid();
      static auto* keep = new mcl::testbed::Subprocess(std::move(*p));
      (void)keep;  // never reaped by us: it must die with this process
    }
  }).join();
  if (child < 0) return 1;
  absl::SleepFor(absl::Milliseconds(300));  // the thread is long gone
  printf("PID %d\n", static_cast<int>(child));
  for (const auto& e :
       std::filesystem::directory_iterator((*tb)->dir() + "/pids")) {
    std::ifstream in(e.path());
    int pid = 0;
    if (in >> pid) printf("PID %d\n", pid);
  }
  std::ifstream guard((*tb)->dir() + "/guard.pid");
  int gpid = 0;
  if (guard >> gpid) printf("GUARD %d\n", gpid);
  printf("DIR %s\nREADY\n", (*tb)->dir().c_str());
  fflush(stdout);
  while (true) pause();
}
