#include "sidecar/validate.h"

#include <cstdlib>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/flags.h"

namespace mcl::sidecar {
namespace {

using ::testing::HasSubstr;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

TEST(ValidateLockNameTest, AcceptsDns1123Subdomains) {
  for (const char* n : {"a", "my-app", "my-app.leader", "0abc", "a.b.c"}) {
    EXPECT_TRUE(ValidateLockName(n, "lock.name").ok()) << n;
  }
  EXPECT_TRUE(ValidateLockName(std::string(253, 'a'), "lock.name").ok());
}

TEST(ValidateLockNameTest, RejectsWithAMessageThatSaysWhatToFix) {
  EXPECT_THAT(Msg(ValidateLockName("", "lock.name")),
              HasSubstr("lock.name is empty"));
  EXPECT_THAT(Msg(ValidateLockName("My-App", "lock.name")),
              HasSubstr("'M' at position 0"));
  EXPECT_THAT(Msg(ValidateLockName("a_b", "lock.name")),
              HasSubstr("lowercase letters, digits"));
  EXPECT_THAT(Msg(ValidateLockName("-a", "lock.name")),
              HasSubstr("must start and end"));
  EXPECT_THAT(Msg(ValidateLockName("a-", "lock.name")),
              HasSubstr("must start and end"));
  EXPECT_THAT(Msg(ValidateLockName("a..b", "lock.name")),
              HasSubstr("'.'-separated part"));
  EXPECT_THAT(Msg(ValidateLockName("a.-b", "lock.name")),
              HasSubstr("'.'-separated part"));
  EXPECT_THAT(Msg(ValidateLockName(std::string(254, 'a'), "lock.name")),
              HasSubstr("at most 253"));
  EXPECT_EQ(ValidateLockName("", "x").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ValidateNamespaceTest, IsALabel) {
  EXPECT_TRUE(ValidateNamespace("kube-system", "lock.namespace").ok());
  EXPECT_THAT(Msg(ValidateNamespace("a.b", "lock.namespace")),
              HasSubstr("contains '.'"));
  EXPECT_THAT(Msg(ValidateNamespace(std::string(64, 'a'), "lock.namespace")),
              HasSubstr("at most 63"));
}

TEST(ValidateIdentityTest, PrintableAsciiUpTo128Bytes) {
  EXPECT_TRUE(ValidateIdentity("pod-a_1234-abcd", "identity").ok());
  EXPECT_TRUE(ValidateIdentity(std::string(128, 'x'), "identity").ok());
  EXPECT_THAT(Msg(ValidateIdentity(std::string(129, 'x'), "identity")),
              HasSubstr("129 bytes long; at most 128"));
  EXPECT_THAT(Msg(ValidateIdentity("two words", "identity")),
              HasSubstr("0x20 at position 3"));
}

TEST(ValidateLeaseDurationTest, ZeroOrTwoToAnHour) {
  EXPECT_TRUE(ValidateLeaseDuration(0, "d").ok());
  EXPECT_TRUE(ValidateLeaseDuration(2, "d").ok());
  EXPECT_TRUE(ValidateLeaseDuration(3600, "d").ok());
  EXPECT_THAT(Msg(ValidateLeaseDuration(1, "lease_duration_seconds")),
              HasSubstr("lease_duration_seconds is 1; use 0 for the sidecar's "
                        "default or a value "
                        "in [2, 3600]"));
  EXPECT_FALSE(ValidateLeaseDuration(-5, "d").ok());
  EXPECT_FALSE(ValidateLeaseDuration(3601, "d").ok());
}

TEST(IdentityFromEnvTest, PodNameAndUid) {
  setenv("POD_NAME", "web-0", 1);
  setenv("POD_UID", "1f2e", 1);
  EXPECT_EQ(IdentityFromEnv(), "web-0_1f2e");
  unsetenv("POD_UID");
  EXPECT_EQ(IdentityFromEnv(), "web-0");
  unsetenv("POD_NAME");
  EXPECT_EQ(IdentityFromEnv(), "");
}

TEST(IdentityFromEnvTest, LongPodNamesStillGiveAValidUniqueIdentity) {
  const std::string uid = "0b5e1f2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
  const std::string long_name(253, 'w');
  setenv("POD_NAME", long_name.c_str(), 1);
  setenv("POD_UID", uid.c_str(), 1);
  std::string id = IdentityFromEnv();
  EXPECT_EQ(id.size(), kMaxIdentityLength);
  EXPECT_EQ(id.substr(id.size() - uid.size() - 1), "_" + uid);
  EXPECT_TRUE(ValidateIdentity(id, "identity").ok());
  // Without a UID: cut plus a stable hash of the whole name.
  unsetenv("POD_UID");
  id = IdentityFromEnv();
  EXPECT_EQ(id.size(), kMaxIdentityLength);
  EXPECT_TRUE(ValidateIdentity(id, "identity").ok());
  EXPECT_EQ(id, IdentityFromEnv()) << "the same after a restart";
  const std::string other_name = long_name.substr(0, 252) + "x";
  setenv("POD_NAME", other_name.c_str(), 1);
  EXPECT_NE(IdentityFromEnv(), id) << "names sharing a prefix stay apart";
  unsetenv("POD_NAME");
}

TEST(ListenAddressTest, LoopbackAndUnixSocketsOnly) {
  for (const char* a :
       {"127.0.0.1:7400", "127.1.2.3:0", "[::1]:7400", "localhost:7400",
        "unix:///tmp/s.sock", "unix:/tmp/s.sock"}) {
    EXPECT_TRUE(ValidateListenAddress(a).ok()) << a;
  }
  for (const char* a :
       {"0.0.0.0:7400", ":7400", "10.0.0.1:7400", "[::]:7400", "example.com:80",
        "127.0.0.1", "127.0.0.1:99999", "unix://"}) {
    absl::Status s = ValidateListenAddress(a);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << a;
  }
  EXPECT_THAT(Msg(ValidateListenAddress("0.0.0.0:7400")),
              HasSubstr("refusing to serve on --listen=0.0.0.0:7400: not a "
                        "loopback address"));
}

TEST(FlagsTest, DefaultsAndOverrides) {
  auto f = ParseFlags({});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->listen, "127.0.0.1:7400");
  EXPECT_EQ(f->lease_duration, absl::Seconds(15));
  f = ParseFlags({"--listen=unix:///run/mcl.sock", "--namespace", "team-a",
                  "--lease-duration=4", "--identity=me",
                  "--metrics-address=:9090", "--kubeconfig=/k",
                  "--cluster-name=east", "--shutdown-grace=3s"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->listen, "unix:///run/mcl.sock");
  EXPECT_EQ(f->namespace_, "team-a");
  EXPECT_EQ(f->lease_duration, absl::Seconds(4));
  EXPECT_EQ(f->identity, "me");
  EXPECT_EQ(f->metrics_address, ":9090");
  EXPECT_EQ(f->kubeconfig, "/k");
  EXPECT_EQ(f->cluster_name, "east");
  EXPECT_EQ(f->shutdown_grace, absl::Seconds(3));
  EXPECT_TRUE(ParseFlags({"--help"})->help);
}

TEST(FlagsTest, BadFlagsSayWhatIsWrong) {
  EXPECT_THAT(Msg(ParseFlags({"--listen=0.0.0.0:1"}).status()),
              HasSubstr("refusing to serve"));
  EXPECT_THAT(Msg(ParseFlags({"--nope=1"}).status()),
              HasSubstr("unknown flag --nope"));
  EXPECT_THAT(Msg(ParseFlags({"--lease-duration=1"}).status()),
              HasSubstr("outside [2s, 1h]"));
  EXPECT_THAT(Msg(ParseFlags({"--lease-duration=soon"}).status()),
              HasSubstr("not a duration"));
  EXPECT_THAT(Msg(ParseFlags({"--namespace"}).status()),
              HasSubstr("needs a value"));
  EXPECT_THAT(Msg(ParseFlags({"stray"}).status()),
              HasSubstr("unexpected argument"));
  EXPECT_THAT(
      Msg(ParseFlags({"--listen=unix:///s", "--socket-mode=rw"}).status()),
      HasSubstr("not a permission mode"));
  EXPECT_THAT(
      Msg(ParseFlags({"--listen=unix:///s", "--socket-mode=1777"}).status()),
      HasSubstr("not a permission mode"));
  EXPECT_THAT(Msg(ParseFlags({"--socket-mode=0660"}).status()),
              HasSubstr("applies to a unix socket"));
}

TEST(FlagsTest, UnixSocketModeAndPath) {
  auto f = ParseFlags({"--listen=unix:///run/mcl.sock"});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->socket_mode, 0600u);
  f = ParseFlags({"--listen=unix:///run/mcl.sock", "--socket-mode=0660"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->socket_mode, 0660u);
  EXPECT_EQ(UnixSocketPath("unix:///run/mcl.sock"), "/run/mcl.sock");
  EXPECT_EQ(UnixSocketPath("unix:rel.sock"), "rel.sock");
  EXPECT_EQ(UnixSocketPath("127.0.0.1:7400"), "");
}

}  // namespace
}  // namespace mcl::sidecar
