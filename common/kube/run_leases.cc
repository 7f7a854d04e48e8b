#include "common/kube/run_leases.h"

#include "absl/strings/str_cat.h"
#include "common/kube/typed_client.h"
#include "testbed/cc/subprocess.h"

namespace mcl::kube::testing {

MultiClusterLease RunLease(const std::string& run, const std::string& name,
                           const std::string& holder) {
  MultiClusterLease l;
  l.metadata.name = name;
  l.metadata.namespace_ = "default";
  l.metadata.labels["run"] = run;
  l.spec.holder_identity = holder;
  l.spec.lease_duration_seconds = 15;
  return l;
}

absl::StatusOr<MultiClusterLease> SetHolder(KubeClient* client,
                                            const std::string& name,
                                            const std::string& holder) {
  Json patch = Json::object();
  patch["spec"] = Json::object();
  patch["spec"]["holderIdentity"] = Json::string(holder);
  return MultiClusterLeaseClient(client).MergePatch("default", name, patch);
}

absl::StatusOr<std::string> Etcdctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"etcdctl"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = mcl::testbed::RunCommand(argv, absl::Seconds(60), "",
                                    {{"ETCDCTL_API", "3"}});
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("etcdctl ", args.empty() ? "" : args[0], ": ", r->output));
  }
  return r->output;
}

}  // namespace mcl::kube::testing
