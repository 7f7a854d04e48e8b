// EtcdProcess: a real etcd (Debian's /usr/bin/etcd) for one test binary, on
// free 127.0.0.1 ports with its own data dir, lighter than the whole test bed.
// Optionally serves TLS with certificates made by openssl in its directory (a
// CA, a server cert for IP 127.0.0.1, a client cert, and a second, unrelated CA
// for negative tests). Destroying it kills the process.
#ifndef MCL_COMMON_ETCD_TESTING_ETCD_PROCESS_H_
#define MCL_COMMON_ETCD_TESTING_ETCD_PROCESS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "testbed/cc/subprocess.h"
#include "testbed/faultproxy/faultproxy.h"

namespace mcl::etcd::testing {

struct EtcdProcessOptions {
  bool tls = false;  // serve https with the generated server certificate
  bool client_cert_auth =
      false;  // and require a client certificate signed by the CA (mTLS)
  std::vector<std::string> extra_flags;
};

class EtcdProcess {
 public:
  static absl::StatusOr<std::unique_ptr<EtcdProcess>> Start(
      EtcdProcessOptions options = {});
  ~EtcdProcess();

  // "127.0.0.1:PORT"
  std::string address() const;  // "127.0.0.1:PORT"
  int port() const { return client_port_; }
  const std::string& dir() const { return dir_; }
  // Generated with tls: PEM files in dir().
  std::string ca_file() const { return dir_ + "/pki/ca.crt"; }
  std::string other_ca_file() const { return dir_ + "/pki/other-ca.crt"; }
  std::string client_cert_file() const { return dir_ + "/pki/client.crt"; }
  std::string client_key_file() const { return dir_ + "/pki/client.key"; }

  // SIGTERM and wait; SIGKILL; start again on the same ports and data (waits
  // until it serves).
  absl::Status Stop();
  absl::Status Kill();
  absl::Status Restart();
  bool running() const { return process_.has_value(); }

  // Runs etcdctl against this etcd (TLS flags added), bounded; the output or an
  // error with it.
  absl::StatusOr<std::string> Etcdctl(
      const std::vector<std::string>& args,
      const std::vector<std::string>& auth_flags = {}) const;

 private:
  EtcdProcess() = default;
  absl::Status Launch();
  absl::Status MakeCerts();

  EtcdProcessOptions options_;
  std::string dir_;
  int client_port_ = 0;
  int peer_port_ = 0;
  int starts_ = 0;
  std::optional<mcl::testbed::Subprocess> process_;
};

// A path to `etcd` that a test can hold or reset: a loopback FaultProxy with
// one link, kLink, whose listening end is `address`. Clients dial `address`
// to go through it, or etcd.address() to go around it.
struct ProxiedPath {
  static constexpr const char* kLink = "etcd";
  std::unique_ptr<faultproxy::FaultProxy> proxy;
  std::string address;  // "127.0.0.1:PORT"

  absl::Status Set(faultproxy::FaultProxy::Mode mode) {
    return proxy->Set(kLink, {mode});
  }
};
absl::StatusOr<ProxiedPath> ProxyTo(const EtcdProcess& etcd);

}  // namespace mcl::etcd::testing

#endif  // MCL_COMMON_ETCD_TESTING_ETCD_PROCESS_H_
