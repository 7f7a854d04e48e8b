#include "controller/injector/mutate.h"

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::injector {
namespace {

using ::testing::HasSubstr;

Json Parse(const std::string& s) { return Json::parse(s); }

// The config the chart renders in socket mode (trimmed to what matters).
InjectorConfig SocketConfig() {
  auto c = ParseConfig(R"({
    "sidecar": {"name": "mcl-sidecar", "image": "mcl-sidecar:0.1.0", "restartPolicy": "Always",
      "args": ["--listen=unix:///var/run/mcl/sidecar.sock", "--metrics-address=0.0.0.0:7401"],
      "ports": [{"name": "mcl-metrics", "containerPort": 7401, "protocol": "TCP"}],
      "startupProbe": {"httpGet": {"path": "/healthz", "port": 7401}},
      "livenessProbe": {"httpGet": {"path": "/healthz", "port": 7401}},
      "volumeMounts": [{"name": "mcl-sidecar-socket", "mountPath": "/var/run/mcl"}]},
    "volumes": [{"name": "mcl-sidecar-kube-api-access", "projected": {"sources": []}},
                {"name": "mcl-sidecar-socket", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}],
    "address": "unix:///var/run/mcl/sidecar.sock",
    "appVolumeMount": {"name": "mcl-sidecar-socket", "mountPath": "/var/run/mcl"}
  })",
                       "test");
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

// Applies the "add" operations of a JSON Patch (all Mutate emits).
Json Apply(Json doc, const Json& patch) {
  for (const Json& op : patch.as_array()) {
    EXPECT_EQ(op.at("op").as_string(), "add");
    std::vector<std::string> parts =
        absl::StrSplit(op.at("path").as_string().substr(1), '/');
    Json* at = &doc;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      std::string p = absl::StrReplaceAll(parts[i], {{"~1", "/"}, {"~0", "~"}});
      size_t idx = 0;
      at =
          at->is_array() && absl::SimpleAtoi(p, &idx) ? &(*at)[idx] : &(*at)[p];
    }
    std::string last =
        absl::StrReplaceAll(parts.back(), {{"~1", "/"}, {"~0", "~"}});
    size_t idx = 0;
    if (at->is_array() && last == "-") {
      (*at)[at->size()] = op.at("value");
    } else if (at->is_array() && absl::SimpleAtoi(last, &idx)) {
      Json copy = Json::array();
      for (size_t i = 0; i < at->size(); ++i) {
        if (i == idx) copy[copy.size()] = op.at("value");
        copy[copy.size()] = at->at(i);
      }
      if (idx == at->size()) copy[copy.size()] = op.at("value");
      *at = copy;
    } else {
      (*at)[last] = op.at("value");
    }
  }
  return doc;
}

std::vector<std::string> Names(const Json& items) {
  std::vector<std::string> out;
  for (const Json& i : items.as_array())
    out.push_back(i.at("name").as_string());
  return out;
}

std::vector<std::string> Args(const Json& c) {
  std::vector<std::string> out;
  for (const Json& a : c.at("args").as_array()) out.push_back(a.as_string());
  return out;
}

TEST(Mutate, BarePodGetsSidecarVolumesEnvMountAndMark) {
  Json pod = Parse(R"({"metadata": {"name": "p"},
    "spec": {"containers": [{"name": "app", "image": "app:1"}]}})");
  Mutation m = Mutate(pod, SocketConfig());
  ASSERT_FALSE(m.denied);
  Json out = Apply(pod, m.patch);
  EXPECT_EQ(Names(out.at("spec").at("initContainers")),
            std::vector<std::string>{"mcl-sidecar"});
  EXPECT_EQ(
      out.at("spec").at("initContainers").at(0).at("restartPolicy").as_string(),
      "Always");
  EXPECT_EQ(Names(out.at("spec").at("volumes")),
            (std::vector<std::string>{"mcl-sidecar-kube-api-access",
                                      "mcl-sidecar-socket"}));
  const Json& app = out.at("spec").at("containers").at(0);
  EXPECT_EQ(
      app.at("env").serialize(),
      R"([{"name":"MCL_SIDECAR_ADDR","value":"unix:///var/run/mcl/sidecar.sock"}])");
  EXPECT_EQ(app.at("volumeMounts").serialize(),
            R"([{"mountPath":"/var/run/mcl","name":"mcl-sidecar-socket"}])");
  EXPECT_EQ(
      out.at("metadata").at("annotations").at("mcl.dev/injected").as_string(),
      "true");
}

TEST(Mutate, KeepsWhatThePodHasAndAppends) {
  Json pod = Parse(R"({"metadata": {"name": "p", "annotations": {"a": "b"}},
    "spec": {"initContainers": [{"name": "migrate", "image": "m:1"}],
             "volumes": [{"name": "data", "emptyDir": {}}],
             "containers": [
               {"name": "app", "image": "app:1", "env": [{"name": "FOO", "value": "bar"}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
               {"name": "tool", "image": "t:1",
                "env": [{"name": "MCL_SIDECAR_ADDR", "value": "[::1]:9000"}],
                "volumeMounts": [{"name": "data", "mountPath": "/var/run/mcl"}]}]}})");
  Mutation m = Mutate(pod, SocketConfig());
  ASSERT_FALSE(m.denied);
  Json out = Apply(pod, m.patch);
  EXPECT_EQ(Names(out.at("spec").at("initContainers")),
            (std::vector<std::string>{"mcl-sidecar", "migrate"}));
  EXPECT_EQ(Names(out.at("spec").at("volumes")),
            (std::vector<std::string>{"data", "mcl-sidecar-kube-api-access",
                                      "mcl-sidecar-socket"}));
  const Json& app = out.at("spec").at("containers").at(0);
  EXPECT_EQ(Names(app.at("env")),
            (std::vector<std::string>{"FOO", "MCL_SIDECAR_ADDR"}));
  EXPECT_EQ(app.at("volumeMounts").size(), 2u);
  // A container that chose its own address and mounts something else at the
  // socket directory is left as it is.
  const Json& tool = out.at("spec").at("containers").at(1);
  EXPECT_EQ(tool.at("env").serialize(),
            R"([{"name":"MCL_SIDECAR_ADDR","value":"[::1]:9000"}])");
  EXPECT_EQ(tool.at("volumeMounts").size(), 1u);
  EXPECT_EQ(out.at("metadata").at("annotations").at("a").as_string(), "b");
  EXPECT_EQ(
      out.at("metadata").at("annotations").at("mcl.dev/injected").as_string(),
      "true");
}

TEST(Mutate, LeaseAnnotationBecomesTheSidecarsFlag) {
  for (const char* v : {"15s", "30", "1m30s", "2s", "3600s"}) {
    Json pod = Parse(
        std::string(
            R"({"metadata": {"annotations": {"mcl.dev/lease-duration": ")") +
        v + R"("}}, "spec": {"containers": [{"name": "app"}]}})");
    Mutation m = Mutate(pod, SocketConfig());
    ASSERT_FALSE(m.denied) << v << ": " << *m.denied;
    Json out = Apply(pod, m.patch);
    EXPECT_THAT(Args(out.at("spec").at("initContainers").at(0)),
                ::testing::Contains(std::string("--lease-duration=") + v));
  }
}

TEST(Mutate, BadLeaseAnnotationIsRefusedWithWhatToGive) {
  for (const char* v : {"soon", "1s", "2h", "-5s", "15 s"}) {
    Json pod = Parse(
        std::string(
            R"({"metadata": {"annotations": {"mcl.dev/lease-duration": ")") +
        v + R"("}}, "spec": {"containers": [{"name": "app"}]}})");
    Mutation m = Mutate(pod, SocketConfig());
    ASSERT_TRUE(m.denied) << v;
    EXPECT_THAT(*m.denied,
                HasSubstr(std::string("mcl.dev/lease-duration=") + v));
    EXPECT_THAT(*m.denied, HasSubstr("2s to 3600s"));
    EXPECT_EQ(m.patch.size(), 0u);
  }
}

TEST(Mutate, PodWithItsOwnSidecarIsLeftAlone) {
  Json pod = Parse(
      R"({"spec": {"initContainers": [{"name": "mcl-sidecar", "image": "x"}],
                                 "containers": [{"name": "app"}]}})");
  Mutation m = Mutate(pod, SocketConfig());
  EXPECT_FALSE(m.denied);
  EXPECT_EQ(m.patch.size(), 0u);
}

TEST(Mutate, ReinvocationOnlyCompletesNewContainers) {
  Json pod =
      Parse(R"({"metadata": {"annotations": {"mcl.dev/injected": "true"}},
    "spec": {"initContainers": [{"name": "mcl-sidecar", "image": "x"}],
             "volumes": [{"name": "mcl-sidecar-socket", "emptyDir": {}}],
             "containers": [
               {"name": "app", "env": [{"name": "MCL_SIDECAR_ADDR", "value": "unix:///var/run/mcl/sidecar.sock"}],
                "volumeMounts": [{"name": "mcl-sidecar-socket", "mountPath": "/var/run/mcl"}]},
               {"name": "added-by-another-webhook"}]}})");
  Mutation m = Mutate(pod, SocketConfig());
  ASSERT_FALSE(m.denied);
  Json out = Apply(pod, m.patch);
  EXPECT_EQ(Names(out.at("spec").at("initContainers")),
            std::vector<std::string>{"mcl-sidecar"});
  EXPECT_EQ(Names(out.at("spec").at("volumes")),
            std::vector<std::string>{"mcl-sidecar-socket"});
  EXPECT_EQ(out.at("spec").at("containers").at(1).at("env").size(), 1u);
  EXPECT_EQ(out.at("spec").at("containers").at(0).at("env").size(), 1u);
  // Idempotent: once complete, nothing more.
  EXPECT_EQ(Mutate(out, SocketConfig()).patch.size(), 0u);
}

TEST(Mutate, HostNetworkDropsTheFixedMetricsPortUnlessAnnotated) {
  Json pod = Parse(
      R"({"spec": {"hostNetwork": true, "containers": [{"name": "app"}]}})");
  Json out = Apply(pod, Mutate(pod, SocketConfig()).patch);
  const Json& sc = out.at("spec").at("initContainers").at(0);
  EXPECT_FALSE(sc.has_field("ports"));
  EXPECT_FALSE(sc.has_field("startupProbe"));
  EXPECT_FALSE(sc.has_field("livenessProbe"));
  EXPECT_THAT(
      Args(sc),
      ::testing::Not(::testing::Contains(HasSubstr("--metrics-address"))));

  Json pod2 = Parse(
      R"({"metadata": {"annotations": {"mcl.dev/sidecar-metrics-port": "9100"}},
    "spec": {"hostNetwork": true, "containers": [{"name": "app"}]}})");
  Json out2 = Apply(pod2, Mutate(pod2, SocketConfig()).patch);
  const Json& sc2 = out2.at("spec").at("initContainers").at(0);
  EXPECT_THAT(Args(sc2), ::testing::Contains("--metrics-address=0.0.0.0:9100"));
  EXPECT_EQ(sc2.at("ports").at(0).at("containerPort").as_integer(), 9100);
  EXPECT_EQ(sc2.at("livenessProbe").at("httpGet").at("port").as_integer(),
            9100);

  // The configured bind address is kept ([::] on an IPv6 cluster).
  InjectorConfig v6 = SocketConfig();
  Json args = Json::array();
  args[0] = Json::string("--metrics-address=[::]:7401");
  v6.sidecar["args"] = args;
  Json out3 = Apply(pod2, Mutate(pod2, v6).patch);
  EXPECT_THAT(Args(out3.at("spec").at("initContainers").at(0)),
              ::testing::Contains("--metrics-address=[::]:9100"));

  Json pod3 = Parse(
      R"({"metadata": {"annotations": {"mcl.dev/sidecar-metrics-port": "http"}},
    "spec": {"containers": [{"name": "app"}]}})");
  Mutation m3 = Mutate(pod3, SocketConfig());
  ASSERT_TRUE(m3.denied);
  EXPECT_THAT(*m3.denied, HasSubstr("is not a port"));
}

TEST(Mutate, VolumeNameConflictAndNonPodsAreRefused) {
  Json pod = Parse(
      R"({"spec": {"volumes": [{"name": "mcl-sidecar-socket", "emptyDir": {}}],
                                 "containers": [{"name": "app"}]}})");
  Mutation m = Mutate(pod, SocketConfig());
  ASSERT_TRUE(m.denied);
  EXPECT_THAT(*m.denied,
              HasSubstr("already has a volume named mcl-sidecar-socket"));
  EXPECT_TRUE(Mutate(Parse(R"({"kind": "Pod"})"), SocketConfig()).denied);
  EXPECT_TRUE(Mutate(Parse(R"([1, 2])"), SocketConfig()).denied);
}

TEST(ParseConfig, SaysWhatIsWrong) {
  auto bad =
      ParseConfig(R"({"sidecar": {"name": "x"}, "address": "a"})", "cfg.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("cfg.json"));
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("named mcl-sidecar"));
  EXPECT_FALSE(ParseConfig("not json", "cfg.json").ok());
  EXPECT_FALSE(
      ParseConfig(R"({"sidecar": {"name": "mcl-sidecar", "image": "i"}})", "c")
          .ok());
  auto loopback = ParseConfig(
      R"({"sidecar": {"name": "mcl-sidecar", "image": "i"}, "address": "127.0.0.1:7400"})",
      "c");
  ASSERT_TRUE(loopback.ok()) << loopback.status();
  Json pod = Parse(R"({"spec": {"containers": [{"name": "app"}]}})");
  Json out = Apply(pod, Mutate(pod, *loopback).patch);
  EXPECT_FALSE(out.at("spec").at("containers").at(0).has_field("volumeMounts"));
  EXPECT_FALSE(out.at("spec").has_field("volumes"));
}

}  // namespace
}  // namespace mcl::injector
