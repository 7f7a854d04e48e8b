// KubeClient against a real kube-apiserver of the test bed: kubeconfig loading,
// CRUD on MultiClusterLease and Lease, optimistic concurrency (409), the
// /status subresource and its RBAC, delete preconditions, token rotation
// through a token file, and in-cluster configuration.
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/kube/errors.h"
#include "common/kube/events.h"
#include "common/kube/objects.h"
#include "common/kube/typed_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testbed/cc/testbed.h"

namespace mcl::kube {
namespace {

using testbed::Identity;
using testbed::SharedTestbed;
using testbed::UniqueName;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::unique_ptr<KubeClient> ClientFor(const std::string& kubeconfig) {
  auto cfg = LoadKubeconfigFile(kubeconfig);
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  if (!cfg.ok()) return nullptr;
  auto c = KubeClient::Create(*cfg);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

MultiClusterLease NewLease(const std::string& name, const std::string& holder) {
  MultiClusterLease l;
  l.metadata.name = name;
  l.metadata.namespace_ = "default";
  l.metadata.labels["test"] = "client";
  l.spec.holder_identity = holder;
  l.spec.lease_duration_seconds = 15;
  l.spec.renew_time = "2026-11-23T01:00:00.123456Z";
  return l;
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    admin_ = ClientFor(tb_.kubeconfig(0, Identity::kAdmin));
    sidecar_ = ClientFor(tb_.kubeconfig(0, Identity::kSidecar));
    controller_ = ClientFor(tb_.kubeconfig(0, Identity::kController));
    ASSERT_NE(admin_, nullptr);
    ASSERT_NE(sidecar_, nullptr);
    ASSERT_NE(controller_, nullptr);
  }
  std::string TempDir() {
    const char* t = std::getenv("TEST_TMPDIR");
    std::string d =
        absl::StrCat(t != nullptr ? t : "/tmp", "/", UniqueName("kube"));
    mkdir(d.c_str(), 0700);
    return d;
  }
  // The user name the apiserver sees for `c`.
  absl::StatusOr<std::string> WhoAmI(KubeClient& c) {
    Json review = Json::object();
    review["apiVersion"] = Json::string("authentication.k8s.io/v1");
    review["kind"] = Json::string("SelfSubjectReview");
    auto r = c.Request(
        "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", &review);
    if (!r.ok()) return r.status();
    return r->at("status").at("userInfo").at("username").as_string();
  }

  testbed::Testbed& tb_ = SharedTestbed(1);
  std::unique_ptr<KubeClient> admin_, sidecar_, controller_;
};

TEST_F(ClientTest, KubeconfigFromTheTestbedIsLoadedAsWritten) {
  auto cfg = LoadKubeconfigFile(tb_.kubeconfig(0, Identity::kSidecar));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->server, tb_.cluster(0).apiserver);
  EXPECT_EQ(cfg->token, tb_.cluster(0).token_sidecar);
  EXPECT_EQ(cfg->namespace_, "default");
  EXPECT_THAT(cfg->ca_pem, HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_FALSE(cfg->insecure_skip_tls_verify);
}

TEST_F(ClientTest, CreateGetUpdateWithConflictPatchListDelete) {
  MultiClusterLeaseClient leases(sidecar_.get());
  std::string name = UniqueName("crud");
  auto created = leases.Create(NewLease(name, "pod-a"));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->metadata.name, name);
  EXPECT_FALSE(created->metadata.uid.empty());
  EXPECT_FALSE(created->metadata.resource_version.empty());
  EXPECT_EQ(created->metadata.generation, 1);
  EXPECT_EQ(created->spec.holder_identity, "pod-a");
  EXPECT_EQ(created->spec.lease_duration_seconds, 15);
  EXPECT_EQ(created->metadata.labels.at("test"), "client");

  auto again = leases.Create(NewLease(name, "pod-b"));
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);

  auto got = leases.Get("default", name);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->metadata.resource_version, created->metadata.resource_version);

  // Update with the current resourceVersion succeeds; the old one is now stale.
  MultiClusterLease renewed = *got;
  renewed.spec.renew_time = "2026-11-23T01:00:05.000001Z";
  auto updated = leases.Update(renewed);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->spec.renew_time, "2026-11-23T01:00:05.000001Z");
  EXPECT_NE(updated->metadata.resource_version, got->metadata.resource_version);
  EXPECT_EQ(updated->metadata.labels.at("test"), "client")
      << "labels survive a typed update";

  MultiClusterLease stale = *got;
  stale.spec.holder_identity = "pod-b";
  auto conflict = leases.Update(stale);
  ASSERT_FALSE(conflict.ok());
  EXPECT_TRUE(IsConflict(conflict.status())) << conflict.status();
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(KubeReason(conflict.status()), "Conflict");
  EXPECT_EQ(HttpCode(conflict.status()), 409);
  EXPECT_THAT(
      std::string(conflict.status().message()),
      AllOf(HasSubstr("PUT https://127.0.0.1"), HasSubstr(name),
            HasSubstr("409"), HasSubstr("the object has been modified")));

  // A merge patch removes the holder (resign) without a resourceVersion.
  Json patch = Json::parse(R"({"spec":{"holderIdentity":null}})");
  auto patched = leases.MergePatch("default", name, patch);
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_FALSE(patched->spec.holder_identity.has_value());
  EXPECT_EQ(patched->spec.lease_duration_seconds, 15);

  // Invalid input is rejected with the server's explanation.
  auto invalid = leases.MergePatch(
      "default", name, Json::parse(R"({"spec":{"leaseDurationSeconds":0}})"));
  EXPECT_TRUE(IsInvalid(invalid.status())) << invalid.status();
  EXPECT_THAT(std::string(invalid.status().message()),
              HasSubstr("spec.leaseDurationSeconds"));

  ListOptions by_label;
  by_label.label_selector = "test=client";
  auto list = leases.List("default", by_label);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_FALSE(list->resource_version.empty());
  bool found = false;
  for (const auto& l : list->items) found |= l.metadata.name == name;
  EXPECT_TRUE(found);

  // Delete with a wrong uid precondition is refused; with the right one it
  // goes.
  DeleteOptions wrong_uid;
  wrong_uid.precondition_uid = "00000000-0000-0000-0000-000000000000";
  absl::Status refused =
      admin_->Delete(MultiClusterLeaseResource(), "default", name, wrong_uid);
  EXPECT_TRUE(IsConflict(refused)) << refused;
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("the UID in the precondition"));
  DeleteOptions right_uid;
  right_uid.precondition_uid = created->metadata.uid;
  absl::Status deleted =
      admin_->Delete(MultiClusterLeaseResource(), "default", name, right_uid);
  ASSERT_TRUE(deleted.ok()) << deleted;
  auto gone = leases.Get("default", name);
  EXPECT_TRUE(absl::IsNotFound(gone.status())) << gone.status();
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ClientTest, SidecarMayNotDelete) {
  MultiClusterLeaseClient leases(sidecar_.get());
  std::string name = UniqueName("nodelete");
  ASSERT_TRUE(leases.Create(NewLease(name, "pod-a")).ok());
  absl::Status s = leases.Delete("default", name);
  EXPECT_TRUE(IsForbidden(s)) << s;
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()),
              AllOf(HasSubstr("Forbidden"), HasSubstr("mcl-sidecar")));
}

TEST_F(ClientTest, StatusSubresourceForControllerForbiddenForSidecar) {
  MultiClusterLeaseClient as_sidecar(sidecar_.get());
  MultiClusterLeaseClient as_controller(controller_.get());
  std::string name = UniqueName("status");
  auto created = as_sidecar.Create(NewLease(name, "pod-a"));
  ASSERT_TRUE(created.ok()) << created.status();

  MultiClusterLease with_status = *created;
  with_status.status.leader = "pod-a";
  with_status.status.leader_cluster = "cluster-0";
  with_status.status.fencing_token = 7;
  with_status.status.acquire_time = "2026-11-23T01:00:00.000000Z";
  with_status.status.observed_generation = created->metadata.generation;
  with_status.status.transitions = 1;
  with_status.status.session = "694d8b1c2f3a4e5d";
  with_status.status.heartbeat = "default/mcl-heartbeat-cluster-0";
  with_status.status.session_ttl_milliseconds = 2000;
  with_status.status.confirmed_resource_version =
      created->metadata.resource_version;
  with_status.status.last_confirmed_renew_time = created->spec.renew_time;
  with_status.status.conditions.push_back(
      Condition{"Leading", "True", 1, "2026-11-23T01:00:00Z", "Granted",
                "granted by etcd revision 7"});
  with_status.spec.holder_identity = "ignored-by-status";

  auto forbidden = as_sidecar.UpdateStatus(with_status);
  ASSERT_FALSE(forbidden.ok());
  EXPECT_TRUE(IsForbidden(forbidden.status())) << forbidden.status();
  EXPECT_THAT(
      std::string(forbidden.status().message()),
      AllOf(HasSubstr("Forbidden"), HasSubstr("multiclusterleases/status")));

  auto written = as_controller.UpdateStatus(with_status);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->status.leader, "pod-a");
  EXPECT_EQ(written->status.leader_cluster, "cluster-0");
  EXPECT_EQ(written->status.fencing_token, 7);
  EXPECT_EQ(written->status.transitions, 1);
  EXPECT_EQ(written->status.session, "694d8b1c2f3a4e5d");
  EXPECT_EQ(written->status.heartbeat, "default/mcl-heartbeat-cluster-0");
  EXPECT_EQ(written->status.session_ttl_milliseconds, 2000);
  EXPECT_EQ(written->status.confirmed_resource_version,
            created->metadata.resource_version);
  ASSERT_EQ(written->status.conditions.size(), 1u);
  EXPECT_EQ(written->status.conditions[0], with_status.status.conditions[0]);
  EXPECT_EQ(written->spec.holder_identity, "pod-a")
      << "spec is not written through /status";

  // Stale status writes conflict too.
  auto stale = as_controller.UpdateStatus(with_status);
  EXPECT_TRUE(IsConflict(stale.status())) << stale.status();

  // A merge patch of /status by the controller.
  auto patched = as_controller.MergePatch(
      "default", name, Json::parse(R"({"status":{"fencingToken":9}})"),
      "status");
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ(patched->status.fencing_token, 9);
  EXPECT_EQ(patched->status.leader, "pod-a");
  auto read = as_sidecar.Get("default", name);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->status.fencing_token, 9);
}

TEST_F(ClientTest, CoordinationLeaseCrud) {
  LeaseClient leases(controller_.get());
  Lease l;
  l.metadata.name = UniqueName("heartbeat");
  l.metadata.namespace_ = "default";
  l.spec.holder_identity = "controller-0";
  l.spec.lease_duration_seconds = 6;
  l.spec.renew_time = "2026-11-23T01:00:00.000000Z";
  l.spec.acquire_time = "2026-11-23T00:59:00.000000Z";
  l.spec.lease_transitions = 3;
  auto created = leases.Create(l);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->spec.holder_identity, "controller-0");
  EXPECT_EQ(created->spec.lease_transitions, 3);
  Lease renewed = *created;
  renewed.spec.renew_time = "2026-11-23T01:00:02.000000Z";
  auto updated = leases.Update(renewed);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->spec.renew_time, "2026-11-23T01:00:02.000000Z");
  EXPECT_TRUE(IsConflict(leases.Update(renewed).status()));
  auto list = leases.List("default");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_FALSE(list->items.empty());
  // The sidecar may read but not write Leases.
  LeaseClient read_only(sidecar_.get());
  EXPECT_TRUE(read_only.Get("default", l.metadata.name).ok());
  EXPECT_TRUE(IsForbidden(read_only.Update(*updated).status()));
}

TEST_F(ClientTest, TokenFileRotationIsPickedUp) {
  std::string dir = TempDir();
  std::string token_file = dir + "/token";
  WriteFile(token_file, tb_.cluster(0).token_admin + "\n");
  auto base = LoadKubeconfigFile(tb_.kubeconfig(0, Identity::kAdmin));
  ASSERT_TRUE(base.ok());
  std::string kubeconfig = absl::StrCat(R"(apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: )",
                                        tb_.cluster(0).apiserver, R"(
    certificate-authority: )",
                                        tb_.ca_file(), R"(
users:
- name: rotating
  user:
    tokenFile: token
contexts:
- name: ctx
  context: {cluster: c, user: rotating, namespace: default}
current-context: ctx
)");
  WriteFile(dir + "/kubeconfig", kubeconfig);
  auto cfg = LoadKubeconfigFile(dir + "/kubeconfig");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->token_file, token_file)
      << "relative to the kubeconfig's directory";
  auto client = KubeClient::Create(*cfg);
  ASSERT_TRUE(client.ok()) << client.status();
  auto who = WhoAmI(**client);
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(*who, "mcl-admin");
  // Deleting needs admin rights here.
  std::string name = UniqueName("rotation");
  MultiClusterLeaseClient leases(client->get());
  ASSERT_TRUE(leases.Create(NewLease(name, "pod-a")).ok());

  // Rotate in place (same inode, same size): the next request uses the
  // controller's token.
  WriteFile(token_file, tb_.cluster(0).token_controller + "\n");
  who = WhoAmI(**client);
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(*who, "mcl-controller");
  EXPECT_TRUE(IsForbidden(leases.Delete("default", name)))
      << "the controller may not delete";

  // Rotate by rename (a projected volume's atomic swap) to an invalid token,
  // then to a valid one: the 401 makes the client re-read the file and retry.
  WriteFile(dir + "/token.new", "not-a-valid-token\n");
  ASSERT_EQ(rename((dir + "/token.new").c_str(), token_file.c_str()), 0);
  auto unauth = WhoAmI(**client);
  EXPECT_TRUE(IsUnauthorized(unauth.status())) << unauth.status();
  EXPECT_EQ(unauth.status().code(), absl::StatusCode::kUnauthenticated);
  WriteFile(token_file, tb_.cluster(0).token_admin + "\n");
  who = WhoAmI(**client);
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(*who, "mcl-admin");
  EXPECT_TRUE(leases.Delete("default", name).ok());
}

TEST_F(ClientTest, InClusterServiceAccountFiles) {
  std::string dir = TempDir();
  std::ifstream ca(tb_.ca_file());
  std::stringstream ca_pem;
  ca_pem << ca.rdbuf();
  WriteFile(dir + "/ca.crt", ca_pem.str());
  WriteFile(dir + "/token", tb_.cluster(0).token_controller);
  WriteFile(dir + "/namespace", "kube-system\n");
  InClusterOptions o;
  o.dir = dir;
  o.host = "127.0.0.1";
  o.port =
      tb_.cluster(0).apiserver.substr(tb_.cluster(0).apiserver.rfind(':') + 1);
  auto cfg = LoadInCluster(o);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->server, tb_.cluster(0).apiserver);
  EXPECT_EQ(cfg->namespace_, "kube-system");
  auto client = KubeClient::Create(*cfg);
  ASSERT_TRUE(client.ok()) << client.status();
  auto who = WhoAmI(**client);
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(*who, "mcl-controller");
}

TEST_F(ClientTest, NotFoundAndUnknownResourceAreClear) {
  MultiClusterLeaseClient leases(admin_.get());
  auto missing = leases.Get("default", "does-not-exist");
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_THAT(
      std::string(missing.status().message()),
      AllOf(HasSubstr("GET https://127.0.0.1"), HasSubstr("404"),
            HasSubstr("NotFound"), HasSubstr("\"does-not-exist\" not found")));
  Resource bogus{"mcl.dev", "v1alpha1", "nosuchthings", "NoSuchThing", true};
  auto unknown = admin_->Get(bogus, "default", "x");
  EXPECT_TRUE(absl::IsNotFound(unknown.status())) << unknown.status();
}

TEST_F(ClientTest, EventsAreRecordedAndAggregatedOnTheRealApiserver) {
  MultiClusterLeaseClient leases(sidecar_.get());
  std::string name = UniqueName("events");
  auto lease = leases.Create(NewLease(name, "pod-a"));
  ASSERT_TRUE(lease.ok()) << lease.status();
  EventRecorderOptions o;
  o.component = "mcl-sidecar";
  o.instance = "pod-a";
  {
    EventRecorder events(sidecar_.get(), o);
    ASSERT_TRUE(events.Record(RefTo(*lease), EventType::kNormal, "Campaigning",
                              "pod-a campaigns"));
    ASSERT_TRUE(events.Record(RefTo(*lease), EventType::kNormal, "Campaigning",
                              "pod-a campaigns"));
    ASSERT_TRUE(events.Record(RefTo(*lease), EventType::kWarning, "Lost",
                              "confirmation lapsed"));
    ASSERT_TRUE(events.Flush(absl::Seconds(30)));
    EXPECT_TRUE(events.LastError().ok()) << events.LastError();
    EXPECT_EQ(events.stats().created, 2);
    EXPECT_EQ(events.stats().aggregated, 1);
  }
  ListOptions lo;
  lo.field_selector = "involvedObject.name=" + name;
  auto list = admin_->ListAll(EventResource(), "default", lo);
  ASSERT_TRUE(list.ok()) << list.status();
  std::map<std::string, int64_t> counts;
  for (const Json& e : list->items) {
    EXPECT_EQ(e.at("involvedObject").at("uid").as_string(),
              lease->metadata.uid);
    EXPECT_EQ(e.at("source").at("component").as_string(), "mcl-sidecar");
    counts[e.at("type").as_string() + "/" + e.at("reason").as_string()] =
        e.at("count").as_number().to_int64();
  }
  EXPECT_EQ(counts, (std::map<std::string, int64_t>{{"Normal/Campaigning", 2},
                                                    {"Warning/Lost", 1}}));
  auto described = tb_.Kubectl(0, {"describe", "mcl", name});
  ASSERT_TRUE(described.ok()) << described.status();
  EXPECT_THAT(*described, AllOf(HasSubstr("Campaigning"),
                                HasSubstr("confirmation lapsed")));
}

}  // namespace
}  // namespace mcl::kube
