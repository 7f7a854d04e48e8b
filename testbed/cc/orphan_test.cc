// Killing a test must not orphan its test bed: testbed_owner starts a test bed
// and a child process, then is killed (SIGTERM as `timeout` does, or
// SIGKILL); every process it started must be gone soon after, the test bed's
// servers (stopped by testbed.sh's guard) and its direct children
// (PR_SET_PDEATHSIG) alike.
#include <signal.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "testbed/cc/subprocess.h"

namespace mcl::testbed {
namespace {

// Gone: no such process, or a zombie (it has exited; whoever inherited it
// reaps it).
bool Gone(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat;
  if (!std::getline(in, stat)) return true;
  size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ||
         stat[paren + 2] == 'Z' || stat[paren + 2] == 'X';
}

void KillOwnerAndExpectNothingLeft(int sig) {
  std::string log =
      absl::StrCat(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp",
                   "/owner-", sig, ".log");
  auto owner = Subprocess::Start({Runfile("testbed/cc/testbed_owner")}, log);
  ASSERT_TRUE(owner.ok()) << owner.status();
  ASSERT_TRUE(owner->WaitForLog("READY", absl::Minutes(4)))
      << "testbed_owner did not start its test bed:\n"
      << owner->Log();
  std::set<int> pids;
  int guard = 0;
  for (absl::string_view line : absl::StrSplit(owner->Log(), '\n')) {
    int pid = 0;
    if (absl::ConsumePrefix(&line, "PID ") && absl::SimpleAtoi(line, &pid)) {
      pids.insert(pid);
    } else if (absl::ConsumePrefix(&line, "GUARD ") &&
               absl::SimpleAtoi(line, &guard)) {
      pids.insert(guard);
    }
  }
  // A global etcd, a cluster's etcd and apiserver, the child, the guard.
  ASSERT_GE(pids.size(), 5u) << owner->Log();
  ASSERT_GT(guard, 0) << "no guard was started:\n" << owner->Log();
  for (int pid : pids) {
    ASSERT_FALSE(Gone(pid)) << "pid " << pid << " is gone before the kill";
  }

  ASSERT_TRUE(owner->Signal(sig).ok());
  ASSERT_TRUE(owner->Wait(absl::Seconds(10)).ok());
  // The guard notices within 0.2 s; stopping an apiserver and two etcds takes
  // a few seconds, at most 10 s each before SIGKILL.
  std::set<int> left = pids;
  WaitUntil(
      [&] {
        for (auto it = left.begin(); it != left.end();) {
          it = Gone(*it) ? left.erase(it) : std::next(it);
        }
        return left.empty();
      },
      absl::Seconds(60));
  std::string survivors;
  for (int pid : left) {
    std::ifstream cmd(absl::StrCat("/proc/", pid, "/cmdline"));
    std::string c;
    std::getline(cmd, c);
    absl::StrAppend(&survivors, pid, " (", c, ") ");
  }
  EXPECT_TRUE(left.empty())
      << "still running after the owner's death: " << survivors;
}

TEST(OrphanTest, SigtermOfTheOwnerStopsItsWholeTestbed) {
  KillOwnerAndExpectNothingLeft(SIGTERM);
}

TEST(OrphanTest, SigkillOfTheOwnerStopsItsWholeTestbed) {
  KillOwnerAndExpectNothingLeft(SIGKILL);
}

}  // namespace
}  // namespace mcl::testbed
