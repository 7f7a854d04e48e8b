// mcl-uninstall: the chart's post-delete hook. After `helm uninstall` the
// MultiClusterLease CRD and the locks stay (Helm never deletes crds/), and
// each lock the controller served still carries its finalizer mcl.dev/release.
// With no controller left to honour it, deleting such a lock -- or the
// namespace it lives in -- would hang for ever. This waits until the
// controller's pods are gone (they release their etcd keys as they stop;
// a running one could add the finalizer again), then removes that finalizer
// from every lock. Other finalizers are left alone; writes carry the object's
// resourceVersion, so a concurrent change is re-read, never overwritten.
//
// Threads: main only.
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/contract.h"
#include "common/flags.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/kube/errors.h"
#include "common/kube/objects.h"
#include "common/log.h"

ABSL_FLAG(std::string, kubeconfig, "", "kubeconfig; empty: in-cluster");
ABSL_FLAG(std::string, controller_namespace, "",
          "namespace of the controller's pods (the release namespace)");
ABSL_FLAG(std::string, controller_selector, "",
          "label selector of the controller's pods, e.g. "
          "app.kubernetes.io/instance=mcl,app.kubernetes.io/component="
          "controller; empty: do not wait for them");
ABSL_FLAG(absl::Duration, timeout, absl::Minutes(3),
          "give up (exit 1) after this long");

namespace {

using mcl::kube::Json;
using mcl::kube::KubeClient;

// Removes our finalizer from one lock; true when it is gone (or the lock is).
absl::Status RemoveFinalizer(KubeClient& client, const Json& item) {
  Json obj = item;
  for (int attempt = 0; attempt < 5; ++attempt) {
    const Json& meta = obj.at("metadata");
    Json kept = Json::array();
    bool found = false;
    if (meta.has_field("finalizers") && meta.at("finalizers").is_array()) {
      for (const Json& f : meta.at("finalizers").as_array()) {
        if (f.is_string() && f.as_string() == mcl::contract::kFinalizer) {
          found = true;
        } else {
          kept[kept.size()] = f;
        }
      }
    }
    if (!found) return absl::OkStatus();
    obj["metadata"]["finalizers"] = kept;
    auto updated = client.Update(mcl::kube::MultiClusterLeaseResource(), obj);
    if (updated.ok() || absl::IsNotFound(updated.status())) {
      return absl::OkStatus();
    }
    if (!mcl::kube::IsConflict(updated.status())) return updated.status();
    auto fresh = client.Get(mcl::kube::MultiClusterLeaseResource(),
                            meta.at("namespace").as_string(),
                            meta.at("name").as_string());
    if (!fresh.ok()) {
      return absl::IsNotFound(fresh.status()) ? absl::OkStatus()
                                              : fresh.status();
    }
    obj = *fresh;
  }
  return absl::AbortedError("the lock kept changing; try again");
}

}  // namespace

int main(int argc, char** argv) {
  mcl::flags::FlagSet flags;
  flags.names = {"kubeconfig", "controller_namespace", "controller_selector",
                 "timeout"};
  // Exit 0 after --help, 2 for bad input (with what to fix), as mcl-controller.
  if (const int code = mcl::flags::ParseMain(
          flags, argc, argv,
          "mcl-uninstall: removes mcl's finalizer from every "
          "MultiClusterLease once the controller is gone (the chart's "
          "post-delete hook)",
          /*help_code=*/0, /*error_code=*/2);
      code >= 0) {
    return code;
  }
  const absl::Time deadline = absl::Now() + absl::GetFlag(FLAGS_timeout);

  auto config = mcl::kube::LoadConfig(absl::GetFlag(FLAGS_kubeconfig));
  if (!config.ok()) {
    mcl::LogError("no kubeconfig",
                  {{"error", std::string(config.status().message())}});
    return 1;
  }
  auto client = KubeClient::Create(*config);
  if (!client.ok()) {
    mcl::LogError("cannot create the client",
                  {{"error", std::string(client.status().message())}});
    return 1;
  }

  static const mcl::kube::Resource kPods = {"", "v1", "pods", "Pod", true};
  const std::string selector = absl::GetFlag(FLAGS_controller_selector);
  while (!selector.empty()) {
    mcl::kube::ListOptions o;
    o.label_selector = selector;
    auto pods =
        (*client)->List(kPods, absl::GetFlag(FLAGS_controller_namespace), o);
    if (pods.ok() && pods->items.empty()) break;
    if (absl::Now() > deadline) {
      mcl::LogError("the controller's pods did not go away", {});
      return 1;
    }
    if (!pods.ok()) {
      mcl::LogWarn("cannot list the controller's pods",
                   {{"error", std::string(pods.status().message())}});
    }
    absl::SleepFor(absl::Seconds(1));
  }

  for (;;) {
    auto locks = (*client)->ListAll(mcl::kube::MultiClusterLeaseResource(), "");
    if (locks.ok()) {
      int failed = 0, cleared = 0;
      for (const Json& item : locks->items) {
        absl::Status s = RemoveFinalizer(**client, item);
        if (s.ok()) {
          ++cleared;
        } else {
          ++failed;
          mcl::LogWarn("cannot remove the finalizer",
                       {{"error", std::string(s.message())}});
        }
      }
      if (failed == 0) {
        mcl::LogInfo("finalizers removed",
                     {{"locks", absl::StrCat(cleared)},
                      {"finalizer", std::string(mcl::contract::kFinalizer)}});
        return 0;
      }
    } else if (absl::IsNotFound(locks.status())) {
      return 0;  // no CRD: nothing to do
    } else {
      mcl::LogWarn("cannot list MultiClusterLeases",
                   {{"error", std::string(locks.status().message())}});
    }
    if (absl::Now() > deadline) return 1;
    absl::SleepFor(absl::Seconds(1));
  }
}
