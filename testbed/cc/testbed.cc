#include "testbed/cc/testbed.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace mcl::testbed {
namespace {

std::map<std::string, std::string> ReadEnvFile(const std::string& path) {
  std::map<std::string, std::string> env;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return env;
}

// MCL_TESTBED_ROOT keeps a test bed's directory (logs of every process) after
// the test, for debugging: bazel test --test_env=MCL_TESTBED_ROOT=/tmp/keep ...
std::string TempRoot() {
  if (const char* keep = std::getenv("MCL_TESTBED_ROOT")) return keep;
  const char* t = std::getenv("TEST_TMPDIR");
  return t != nullptr ? t : "/tmp";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Testbed>> Testbed::Start(int clusters) {
  TestbedOptions options;
  options.clusters = clusters;
  return Start(options);
}

absl::StatusOr<std::unique_ptr<Testbed>> Testbed::Start(
    const TestbedOptions& options) {
  const int clusters = options.clusters;
  std::unique_ptr<Testbed> tb(new Testbed());
  std::string tmpl = TempRoot() + "/mcl-testbed-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr)
    return absl::InternalError("mkdtemp failed");
  tb->dir_ = tmpl;
  absl::Status started =
      tb->Script({"up", "--clusters", std::to_string(clusters),
                  "--etcd-members", std::to_string(options.etcd_members),
                  "--owner", std::to_string(getpid())},
                 absl::Minutes(4));
  if (!started.ok()) return started;
  auto env = ReadEnvFile(tb->dir_ + "/testbed.env");
  tb->global_etcd_ = env["MCL_GLOBAL_ETCD"];
  for (absl::string_view url : absl::StrSplit(env["MCL_GLOBAL_ETCD_ENDPOINTS"],
                                              ',', absl::SkipEmpty())) {
    tb->global_members_.emplace_back(absl::StripPrefix(url, "http://"));
  }
  tb->ca_file_ = env["MCL_CA"];
  tb->kubectl_ = env["MCL_KUBECTL"];
  for (int i = 0; i < clusters; ++i) {
    std::string p = absl::StrCat("MCL_CLUSTER_", i, "_");
    Cluster c;
    c.index = i;
    c.name = env[p + "NAME"];
    c.apiserver = env[p + "APISERVER"];
    c.etcd = env[p + "ETCD"];
    c.kubeconfig_admin = env[p + "KUBECONFIG_ADMIN"];
    c.kubeconfig_sidecar = env[p + "KUBECONFIG_SIDECAR"];
    c.kubeconfig_controller = env[p + "KUBECONFIG_CONTROLLER"];
    c.token_admin = env[p + "TOKEN_ADMIN"];
    c.token_sidecar = env[p + "TOKEN_SIDECAR"];
    c.token_controller = env[p + "TOKEN_CONTROLLER"];
    if (c.apiserver.empty())
      return absl::InternalError("testbed.env lacks " + p + "APISERVER");
    tb->clusters_.push_back(std::move(c));
  }
  return tb;
}

Testbed::~Testbed() {
  absl::Status s = Script({"down"}, absl::Minutes(2));
  if (!s.ok()) {
    // The PID files stay, so `testbed.sh down --dir` can be run again.
    fprintf(stderr, "testbed down: %s (its directory %s is kept)\n",
            s.ToString().c_str(), dir_.c_str());
    return;
  }
  // Each test bed holds ~120 MiB of etcd data; benchmarks run outside Bazel's
  // TEST_TMPDIR would otherwise leave that in /tmp on every run.
  if (std::getenv("MCL_TESTBED_ROOT") == nullptr) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

absl::Status Testbed::Script(const std::vector<std::string>& args,
                             absl::Duration timeout) const {
  std::vector<std::string> argv = {"bash", Runfile("testbed/testbed.sh")};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--dir");
  argv.push_back(dir_);
  auto r = RunCommand(argv, timeout);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(absl::StrCat("testbed.sh ", args[0],
                                            " failed (exit ", r->exit_code,
                                            "):\n", r->output));
  }
  return absl::OkStatus();
}

std::string Testbed::global_etcd_address() const {
  return std::string(absl::StripPrefix(global_etcd_, "http://"));
}

std::string Testbed::kubeconfig(int i, Identity who) const {
  const Cluster& c = cluster(i);
  switch (who) {
    case Identity::kAdmin:
      return c.kubeconfig_admin;
    case Identity::kSidecar:
      return c.kubeconfig_sidecar;
    case Identity::kController:
      return c.kubeconfig_controller;
  }
  return c.kubeconfig_admin;
}

std::string Testbed::GlobalEtcdMember(int j) {
  return j == 0 ? "global-etcd" : absl::StrCat("global-etcd-", j);
}

absl::StatusOr<pid_t> Testbed::Pid(const std::string& component) const {
  std::ifstream in(dir_ + "/pids/" + component);
  pid_t pid = 0;
  if (!(in >> pid) || pid <= 0) {
    return absl::NotFoundError(absl::StrCat(component, " is not running (no ",
                                            dir_, "/pids/", component, ")"));
  }
  return pid;
}

absl::Status Testbed::Stop(const std::string& component) {
  return Script({"stop", component}, absl::Minutes(1));
}
absl::Status Testbed::Kill(const std::string& component) {
  return Script({"kill", component}, absl::Minutes(1));
}
absl::Status Testbed::StartAgain(const std::string& component) {
  return Script({"start", component}, absl::Minutes(2));
}

absl::StatusOr<std::string> Testbed::Kubectl(
    int i, const std::vector<std::string>& args, const std::string& stdin_data,
    Identity who) const {
  std::vector<std::string> argv = {kubectl_, "--kubeconfig",
                                   kubeconfig(i, who)};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv, absl::Minutes(1), stdin_data);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("kubectl exit ", r->exit_code, ": ", r->output));
  }
  return r->output;
}

namespace {

class SharedTestbedEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { testbed.reset(); }
  std::unique_ptr<Testbed> testbed;
};

absl::Mutex shared_mu;
SharedTestbedEnvironment* shared_env ABSL_GUARDED_BY(shared_mu) = nullptr;

}  // namespace

Testbed& SharedTestbed(int clusters) {
  absl::MutexLock lock(&shared_mu);
  if (shared_env == nullptr) {
    shared_env = new SharedTestbedEnvironment();
    ::testing::AddGlobalTestEnvironment(
        shared_env);  // gtest owns and tears it down
  }
  if (shared_env->testbed == nullptr ||
      shared_env->testbed->clusters() < clusters) {
    shared_env->testbed.reset();
    auto tb = Testbed::Start(clusters);
    if (!tb.ok()) {
      fprintf(stderr, "cannot start the test bed: %s\n",
              tb.status().ToString().c_str());
      std::abort();
    }
    shared_env->testbed = std::move(*tb);
  }
  return *shared_env->testbed;
}

std::string UniqueName(const std::string& prefix) {
  static std::mt19937_64 rng{std::random_device{}()};
  static absl::Mutex mu;
  absl::MutexLock lock(&mu);
  return absl::StrCat(prefix, "-", absl::Hex(rng() & 0xffffffffffULL));
}

}  // namespace mcl::testbed
