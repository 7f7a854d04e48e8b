// Where the Kubernetes API is and how to authenticate to it: loaded from a
// kubeconfig file (as kubectl writes them) or from the in-cluster
// service-account files.
//
//   // The flag, else $KUBECONFIG, else in-cluster, else ~/.kube/config:
//   auto cfg = kube::LoadConfig(flag_kubeconfig);
//   auto client = kube::KubeClient::Create(*cfg);
//
// TLS verification is on: the server is checked against the configured CA (only
// that CA when one is given) and its host name/IP; it is off only when the
// kubeconfig's cluster says `insecure-skip-tls-verify: true`. A bearer token
// may come from a file (`tokenFile`, the in-cluster projected token);
// TokenSource re-reads it when it changes, so rotated tokens are picked up.
#ifndef MCL_COMMON_KUBE_CONFIG_H_
#define MCL_COMMON_KUBE_CONFIG_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace mcl::kube {

struct Config {
  std::string server;  // "https://127.0.0.1:6443"
  // PEM bundle of the CA(s) that sign the server's certificate. Empty: the
  // system's trust roots.
  std::string ca_pem;
  // Only ever from the kubeconfig itself.
  bool insecure_skip_tls_verify = false;
  std::string token;  // static bearer token
  // Bearer token file, re-read on change (wins over token).
  std::string token_file;
  std::string client_cert_pem;  // client certificate (mTLS), with its key
  std::string client_key_pem;
  std::string namespace_ = "default";  // the context's (or the pod's) namespace
  // Where this came from, for messages: "kubeconfig /x/admin.kubeconfig
  // (context c)", "in-cluster".
  std::string source;
};

// Parses kubeconfig YAML. `context` empty means current-context. Relative file
// paths (certificate-authority, client-certificate, client-key, tokenFile) are
// resolved against `base_dir`, as kubectl does against the kubeconfig's
// directory. Unsupported authentication (exec plugins, auth-provider) is an
// error that says so.
absl::StatusOr<Config> ParseKubeconfig(absl::string_view yaml,
                                       absl::string_view base_dir,
                                       absl::string_view context = "",
                                       absl::string_view source = "kubeconfig");
absl::StatusOr<Config> LoadKubeconfigFile(const std::string& path,
                                          absl::string_view context = "");

struct InClusterOptions {
  // Holds token, ca.crt and namespace. Overridable for tests.
  std::string dir = "/var/run/secrets/kubernetes.io/serviceaccount";
  // Empty: from $KUBERNETES_SERVICE_HOST / $KUBERNETES_SERVICE_PORT.
  std::string host;
  std::string port;
};
absl::StatusOr<Config> LoadInCluster(const InClusterOptions& options = {});

// The usual order: `kubeconfig_flag` if set; else $KUBECONFIG (the first
// existing file of its colon-separated list; files are not merged); else
// in-cluster when $KUBERNETES_SERVICE_HOST is set; else ~/.kube/config.
absl::StatusOr<Config> LoadConfig(const std::string& kubeconfig_flag,
                                  absl::string_view context = "");

// The bearer token for each request. A file-backed source re-reads the file
// when its identity (inode, size, mtime) changes, at least every `max_age`, and
// on Refresh() (the client calls it after a 401). Thread-safe.
class TokenSource {
 public:
  static std::shared_ptr<TokenSource> Static(std::string token);
  static std::shared_ptr<TokenSource> FromFile(
      std::string path, Clock* clock = Clock::Real(),
      absl::Duration max_age = absl::Minutes(1));
  // The current token; "" when the config has no token. A file that cannot be
  // read while a token was read before keeps the old token (and the error is
  // returned only when there is none).
  absl::StatusOr<std::string> Token();
  // Re-reads the file now (no-op for a static token). Returns whether the token
  // changed.
  bool Refresh();

 private:
  TokenSource() = default;
  absl::StatusOr<std::string> ReadLocked(bool force)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::string path_;  // empty: static
  Clock* clock_ = nullptr;
  absl::Duration max_age_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  std::string stat_key_ ABSL_GUARDED_BY(mu_);
  absl::Duration read_at_ ABSL_GUARDED_BY(mu_) = -absl::InfiniteDuration();
};

}  // namespace mcl::kube

#endif  // MCL_COMMON_KUBE_CONFIG_H_
