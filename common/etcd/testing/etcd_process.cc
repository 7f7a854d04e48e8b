#include "common/etcd/testing/etcd_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "testbed/cc/free_port.h"

namespace mcl::etcd::testing {
namespace {

using mcl::testbed::RunCommand;
using mcl::testbed::Subprocess;

absl::Status Run(const std::vector<std::string>& argv) {
  auto r = RunCommand(argv, absl::Seconds(60));
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(absl::StrCat(
        absl::StrJoin(argv, " "), " exited ", r->exit_code, ": ", r->output));
  }
  return absl::OkStatus();
}

bool Connectable(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdProcess>> EtcdProcess::Start(
    EtcdProcessOptions options) {
  std::unique_ptr<EtcdProcess> e(new EtcdProcess());
  e->options_ = std::move(options);
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string templ =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/etcd-XXXXXX");
  if (mkdtemp(templ.data()) == nullptr)
    return absl::InternalError("mkdtemp failed");
  e->dir_ = templ;
  for (int* port : {&e->client_port_, &e->peer_port_}) {
    absl::StatusOr<int> p = testbed::FreeLoopbackPort();
    if (!p.ok()) return p.status();
    *port = *p;
  }
  if (e->options_.tls) {
    if (absl::Status s = e->MakeCerts(); !s.ok()) return s;
  }
  if (absl::Status s = e->Launch(); !s.ok()) return s;
  return e;
}

EtcdProcess::~EtcdProcess() {
  if (process_.has_value()) (void)process_->Stop(absl::Seconds(5));
}

std::string EtcdProcess::address() const {
  return absl::StrCat("127.0.0.1:", client_port_);
}

absl::Status EtcdProcess::MakeCerts() {
  const std::string pki = dir_ + "/pki";
  if (absl::Status s = Run({"mkdir", "-p", pki}); !s.ok()) return s;
  {
    std::ofstream ext(pki + "/server.ext");
    ext << "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,"
           "clientAuth\n";
    std::ofstream cext(pki + "/client.ext");
    cext << "extendedKeyUsage=clientAuth\n";
  }
  auto ec = std::vector<std::string>{"-newkey", "ec", "-pkeyopt",
                                     "ec_paramgen_curve:prime256v1", "-nodes"};
  auto with = [](std::vector<std::string> a,
                 const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  for (const std::string ca : {"ca", "other-ca"}) {
    if (absl::Status s = Run(with(with({"openssl", "req", "-x509"}, ec),
                                  {"-keyout", pki + "/" + ca + ".key", "-out",
                                   pki + "/" + ca + ".crt", "-days", "2",
                                   "-subj", "/CN=mcl-test-" + ca}));
        !s.ok()) {
      return s;
    }
  }
  for (const std::string who : {"server", "client"}) {
    if (absl::Status s = Run(
            with(with({"openssl", "req"}, ec),
                 {"-keyout", pki + "/" + who + ".key", "-out",
                  pki + "/" + who + ".csr", "-subj",
                  "/CN=" + (who == "server" ? std::string("127.0.0.1")
                                            : std::string("mcl-controller"))}));
        !s.ok()) {
      return s;
    }
    if (absl::Status s =
            Run({"openssl", "x509", "-req", "-in", pki + "/" + who + ".csr",
                 "-CA", pki + "/ca.crt", "-CAkey", pki + "/ca.key",
                 "-CAcreateserial", "-out", pki + "/" + who + ".crt", "-days",
                 "2", "-extfile", pki + "/" + who + ".ext"});
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status EtcdProcess::Launch() {
  const std::string scheme = options_.tls ? "https" : "http";
  const std::string client_url =
      absl::StrCat(scheme, "://127.0.0.1:", client_port_);
  const std::string peer_url = absl::StrCat("http://127.0.0.1:", peer_port_);
  std::vector<std::string> argv = {
      "etcd",
      "--name",
      "test",
      "--data-dir",
      dir_ + "/data",
      "--listen-client-urls",
      client_url,
      "--advertise-client-urls",
      client_url,
      "--listen-peer-urls",
      peer_url,
      "--initial-advertise-peer-urls",
      peer_url,
      "--initial-cluster",
      "test=" + peer_url,
      "--initial-cluster-state",
      starts_ == 0 ? "new" : "existing",
      "--listen-metrics-urls",
      "",
  };
  if (options_.tls) {
    argv.insert(argv.end(), {"--cert-file", dir_ + "/pki/server.crt",
                             "--key-file", dir_ + "/pki/server.key"});
    if (options_.client_cert_auth) {
      argv.insert(argv.end(),
                  {"--client-cert-auth", "--trusted-ca-file", ca_file()});
    }
  }
  argv.insert(argv.end(), options_.extra_flags.begin(),
              options_.extra_flags.end());
  ++starts_;
  auto p =
      Subprocess::Start(argv, absl::StrCat(dir_, "/etcd-", starts_, ".log"));
  if (!p.ok()) return p.status();
  process_.emplace(std::move(*p));
  // etcd logs this once it accepts client requests.
  if (!process_->WaitForLog("ready to serve client requests",
                            absl::Seconds(30)) ||
      !Connectable(client_port_)) {
    std::string log = process_->Log();
    process_.reset();
    return absl::InternalError(
        absl::StrCat("etcd did not become ready; log:\n", log));
  }
  return absl::OkStatus();
}

absl::Status EtcdProcess::Stop() {
  if (!process_.has_value())
    return absl::FailedPreconditionError("etcd is not running");
  auto code = process_->Stop(absl::Seconds(10));
  process_.reset();
  return code.status();
}

absl::Status EtcdProcess::Kill() {
  if (!process_.has_value())
    return absl::FailedPreconditionError("etcd is not running");
  process_.reset();  // SIGKILL and reap
  return absl::OkStatus();
}

absl::Status EtcdProcess::Restart() {
  if (process_.has_value())
    return absl::FailedPreconditionError("etcd is still running");
  return Launch();
}

absl::StatusOr<std::string> EtcdProcess::Etcdctl(
    const std::vector<std::string>& args,
    const std::vector<std::string>& auth_flags) const {
  std::vector<std::string> argv = {
      "etcdctl", "--endpoints",
      (options_.tls ? "https://" : "http://") + address()};
  if (options_.tls) {
    argv.insert(argv.end(), {"--cacert", ca_file()});
    if (options_.client_cert_auth) {
      argv.insert(argv.end(),
                  {"--cert", client_cert_file(), "--key", client_key_file()});
    }
  }
  argv.insert(argv.end(), auth_flags.begin(), auth_flags.end());
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv, absl::Seconds(30), "", {{"ETCDCTL_API", "3"}});
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(absl::StrCat(
        absl::StrJoin(argv, " "), " exited ", r->exit_code, ": ", r->output));
  }
  return r->output;
}

absl::StatusOr<ProxiedPath> ProxyTo(const EtcdProcess& etcd) {
  auto proxy = faultproxy::FaultProxy::Start();
  if (!proxy.ok()) return proxy.status();
  auto port = (*proxy)->AddLink(ProxiedPath::kLink, etcd.port());
  if (!port.ok()) return port.status();
  return ProxiedPath{std::move(*proxy), absl::StrCat("127.0.0.1:", *port)};
}

}  // namespace mcl::etcd::testing
