// Kubeconfig parsing (YAML as kubectl writes it), in-cluster files, and token
// file re-reading.
#include "common/kube/config.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::kube {
namespace {

using ::testing::HasSubstr;

constexpr char kCa[] =
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

std::string TempDir() {
  static int n = 0;
  const char* t = std::getenv("TEST_TMPDIR");
  std::string d = absl::StrCat(t != nullptr ? t : "/tmp", "/config_test_",
                               getpid(), "_", n++);
  mkdir(d.c_str(), 0700);
  return d;
}

void Write(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::trunc) << content;
}

// What `kubectl config view --raw` writes, with two contexts and flow/quoted
// styles mixed in.
std::string Kubeconfig(const std::string& ca_line) {
  return absl::StrCat(
      R"(apiVersion: v1
clusters:
- cluster:
    )",
      ca_line, R"(
    server: https://127.0.0.1:6443/
  name: one
- cluster:
    insecure-skip-tls-verify: true
    server: "https://10.0.0.1:443"
  name: two
contexts:
- context:
    cluster: one
    namespace: team-a
    user: alice
  name: alice@one
- context: {cluster: two, user: bob}
  name: bob@two
current-context: alice@one
kind: Config
preferences: {}
users:
- name: alice
  user:
    token: 'abc.def'
- name: bob
  user:
    client-certificate-data: )",
      absl::Base64Escape(kCa), R"(
    client-key-data: )",
      absl::Base64Escape(
          "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n"),
      "\n");
}

TEST(KubeconfigTest, CurrentContextWithCaFileRelativeToTheKubeconfig) {
  std::string dir = TempDir();
  Write(dir + "/ca.crt", kCa);
  auto c = ParseKubeconfig(Kubeconfig("certificate-authority: ca.crt"), dir);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
  EXPECT_EQ(c->ca_pem, kCa);
  EXPECT_EQ(c->token, "abc.def");
  EXPECT_EQ(c->namespace_, "team-a");
  EXPECT_FALSE(c->insecure_skip_tls_verify);
  EXPECT_THAT(c->source, HasSubstr("context alice@one"));
}

TEST(KubeconfigTest, NamedContextWithCertificateDataAndInsecureFlag) {
  auto c =
      ParseKubeconfig(Kubeconfig(absl::StrCat("certificate-authority-data: ",
                                              absl::Base64Escape(kCa))),
                      "/", "bob@two");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.0.0.1:443");
  EXPECT_TRUE(c->insecure_skip_tls_verify);
  EXPECT_EQ(c->namespace_, "default");
  EXPECT_EQ(c->client_cert_pem, kCa);
  EXPECT_THAT(c->client_key_pem, HasSubstr("PRIVATE KEY"));
  EXPECT_TRUE(c->token.empty());
}

TEST(KubeconfigTest, ClearErrors) {
  struct Case {
    std::string yaml, context, want;
  };
  std::string good =
      Kubeconfig("certificate-authority-data: " + absl::Base64Escape(kCa));
  std::vector<Case> cases = {
      {"clusters: [unclosed", "", "invalid YAML"},
      {"- just\n- a list\n", "", "not a YAML map"},
      {"kind: Pod\n", "", "kind is \"Pod\", expected Config"},
      {"kind: Config\n", "", "no current-context"},
      {good, "nobody@nowhere", "context nobody@nowhere): context not found"},
      {Kubeconfig("certificate-authority: /nonexistent/ca.crt"), "",
       "cannot read"},
      {Kubeconfig("certificate-authority-data: '%%%'"), "", "not valid base64"},
      {Kubeconfig("certificate-authority-data: " + absl::Base64Escape("hello")),
       "", "does not decode to PEM"},
      {R"(kind: Config
current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://x"}}]
users: [{name: u, user: {exec: {command: aws}}}]
)",
       "", "exec or auth-provider credential plugin"},
      {R"(kind: Config
current-context: c
contexts: [{name: c, context: {cluster: k}}]
clusters: [{name: k, cluster: {}}]
)",
       "", "has no server"},
  };
  for (const Case& c : cases) {
    auto r = ParseKubeconfig(c.yaml, "/", c.context, "kubeconfig test");
    ASSERT_FALSE(r.ok()) << c.want;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.want));
    EXPECT_THAT(std::string(r.status().message()),
                HasSubstr("kubeconfig test"));
  }
}

TEST(KubeconfigTest, LoadConfigPrefersFlagThenKubeconfigEnv) {
  std::string dir = TempDir();
  Write(dir + "/a",
        Kubeconfig("certificate-authority-data: " + absl::Base64Escape(kCa)));
  auto c = LoadConfig(dir + "/a");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->source, HasSubstr(dir + "/a"));
  setenv("KUBECONFIG", (dir + "/missing:" + dir + "/a").c_str(), 1);
  auto e = LoadConfig("");
  unsetenv("KUBECONFIG");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->server, "https://127.0.0.1:6443");
  EXPECT_FALSE(LoadKubeconfigFile(dir + "/missing").ok());
}

TEST(InClusterTest, ReadsServiceAccountFiles) {
  std::string dir = TempDir();
  Write(dir + "/token", "tok\n");
  Write(dir + "/ca.crt", kCa);
  Write(dir + "/namespace", "mcl-system");
  InClusterOptions o;
  o.dir = dir;
  o.host = "fd00::1";
  o.port = "443";
  auto c = LoadInCluster(o);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://[fd00::1]:443");
  EXPECT_EQ(c->token_file, dir + "/token");
  EXPECT_EQ(c->namespace_, "mcl-system");
  EXPECT_EQ(c->ca_pem, kCa);
  o.host = "";
  unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_THAT(std::string(LoadInCluster(o).status().message()),
              HasSubstr("KUBERNETES_SERVICE_HOST"));
  o.host = "10.96.0.1";
  o.dir = dir + "/nope";
  EXPECT_THAT(std::string(LoadInCluster(o).status().message()),
              HasSubstr("token"));
}

TEST(TokenSourceTest, FileIsReReadWhenItChangesOrAges) {
  std::string dir = TempDir();
  std::string path = dir + "/token";
  Write(path, "first\n");
  FakeClock clock;
  auto t = TokenSource::FromFile(path, &clock, absl::Minutes(1));
  EXPECT_EQ(*t->Token(), "first");
  Write(path, "second-longer\n");  // a different size: seen at once
  EXPECT_EQ(*t->Token(), "second-longer");
  // Replaced by rename (a new inode), as projected volumes do.
  Write(dir + "/next", "third\n");
  ASSERT_EQ(rename((dir + "/next").c_str(), path.c_str()), 0);
  EXPECT_EQ(*t->Token(), "third");
  // A vanished file keeps the last good token.
  ASSERT_EQ(unlink(path.c_str()), 0);
  EXPECT_EQ(*t->Token(), "third");
  Write(path, "fourth");
  clock.Advance(absl::Minutes(2));
  EXPECT_EQ(*t->Token(), "fourth");
  // Refresh() reports whether the token changed.
  EXPECT_FALSE(t->Refresh());
  Write(path, "fifth");
  EXPECT_TRUE(t->Refresh());
  // No token ever: a clear error.
  auto missing = TokenSource::FromFile(dir + "/none", &clock);
  EXPECT_THAT(std::string(missing->Token().status().message()),
              HasSubstr("cannot read"));
  EXPECT_EQ(*TokenSource::Static("s")->Token(), "s");
}

}  // namespace
}  // namespace mcl::kube
