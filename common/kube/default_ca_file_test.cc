// SkipUnusedDefaultCaFile: when it empties OpenSSL's default CA file, and that
// trust is the same afterwards (a TLS server on loopback with a throwaway CA).
// Its own binary: it changes the process environment.
#include <cstdlib>
#include <string>

#include "common/kube/client.h"
#include "common/kube/test_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::kube {
namespace {

using testing::Connection;
using ::testing::HasSubstr;
using testing::HttpRequest;
using testing::LoopbackServer;
using testing::TestCa;

std::string CertFileEnv() {
  const char* v = std::getenv("SSL_CERT_FILE");
  return v == nullptr ? "<unset>" : v;
}

absl::Status GetThrough(const std::string& url, const std::string& ca_pem) {
  Config cfg;
  cfg.server = url;
  cfg.ca_pem = ca_pem;
  cfg.token = "t0ken";
  cfg.source = "test config";
  auto c = KubeClient::Create(cfg);
  if (!c.ok()) return c.status();
  return (*c)->Get(MultiClusterLeaseResource(), "default", "x").status();
}

TEST(SkipUnusedDefaultCaFileTest, EmptiesTheLoadOnlyWhenTheConfigHasItsOwnCa) {
  // As on machines that point every TLS client at the system bundle.
  setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt", 1);
  Config no_ca;
  no_ca.server = "https://127.0.0.1:1";
  EXPECT_FALSE(SkipUnusedDefaultCaFile(no_ca));  // it needs those roots
  EXPECT_EQ(CertFileEnv(), "/etc/ssl/certs/ca-certificates.crt");

  Config with_ca = no_ca;
  with_ca.ca_pem = "-----BEGIN CERTIFICATE-----";  // only its presence matters
  EXPECT_TRUE(SkipUnusedDefaultCaFile(with_ca));
  EXPECT_EQ(CertFileEnv(), "/dev/null");

  unsetenv("SSL_CERT_FILE");
  EXPECT_TRUE(SkipUnusedDefaultCaFile(with_ca));
  EXPECT_EQ(CertFileEnv(), "/dev/null");
}

TEST(SkipUnusedDefaultCaFileTest, TrustIsUnchanged) {
  unsetenv("SSL_CERT_FILE");
  auto ca = TestCa::Create("apiserver-ca");
  auto other = TestCa::Create("some-other-ca");
  ASSERT_TRUE(ca.ok() && other.ok());
  auto leaf = ca->Issue("apiserver");
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  auto server = LoopbackServer::Start(
      [](const HttpRequest&, Connection& c) {
        c.Respond(
            200, "application/json",
            R"({"apiVersion":"mcl.dev/v1alpha1","kind":"MultiClusterLease",)"
            R"("metadata":{"name":"x","namespace":"default","resourceVersion":"1"}})");
      },
      *leaf);
  ASSERT_TRUE(server.ok()) << server.status();
  Config cfg;
  cfg.ca_pem = ca->ca.cert_pem;
  ASSERT_TRUE(SkipUnusedDefaultCaFile(cfg));
  // The configured CA is trusted, another CA is not, and no CA at all still
  // means the system roots, which do not know a private CA.
  EXPECT_TRUE(GetThrough((*server)->url(), ca->ca.cert_pem).ok());
  absl::Status wrong = GetThrough((*server)->url(), other->ca.cert_pem);
  EXPECT_THAT(std::string(wrong.message()), HasSubstr("not trusted"));
  absl::Status none = GetThrough((*server)->url(), "");
  EXPECT_THAT(std::string(none.message()), HasSubstr("TLS handshake failed"));
}

}  // namespace
}  // namespace mcl::kube
