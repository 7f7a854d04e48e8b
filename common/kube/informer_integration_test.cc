// Informer against a real kube-apiserver: ordered add/update/delete, resume
// after an apiserver restart, an exact relist after 410 Gone (provoked by
// editing and compacting the cluster's etcd while its apiserver is down),
// namespace and selector scoping, and a prompt Stop().
#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/kube/errors.h"
#include "common/kube/informer.h"
#include "common/kube/run_leases.h"
#include "common/kube/typed_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testbed/cc/subprocess.h"
#include "testbed/cc/testbed.h"

namespace mcl::kube {
namespace {

using testbed::Identity;
using testbed::SharedTestbed;
using testbed::UniqueName;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

constexpr absl::Duration kWait = absl::Seconds(60);

// Records every handler call as "ADD name holder", "UPDATE name
// holder->holder", "DELETE name".
class EventLog {
 public:
  TypedInformer<MultiClusterLease>::Handlers Handlers() {
    return {
        [this](const MultiClusterLease& l) { Add("ADD " + Describe(l)); },
        [this](const MultiClusterLease& a, const MultiClusterLease& b) {
          Add(absl::StrCat("UPDATE ", a.metadata.name, " ", Holder(a), "->",
                           Holder(b)));
          absl::MutexLock l(&mu_);
          if (ParseResourceVersion(b.metadata.resource_version).value_or(0) <=
              ParseResourceVersion(a.metadata.resource_version).value_or(0)) {
            out_of_order_ = true;
          }
        },
        [this](const MultiClusterLease& l) {
          Add("DELETE " + l.metadata.name);
        }};
  }
  std::vector<std::string> Since(size_t from) const {
    absl::MutexLock l(&mu_);
    return std::vector<std::string>(
        events_.begin() + std::min(from, events_.size()), events_.end());
  }
  size_t size() const {
    absl::MutexLock l(&mu_);
    return events_.size();
  }
  bool out_of_order() const {
    absl::MutexLock l(&mu_);
    return out_of_order_;
  }

 private:
  static std::string Holder(const MultiClusterLease& l) {
    return l.spec.holder_identity.value_or("-");
  }
  static std::string Describe(const MultiClusterLease& l) {
    return absl::StrCat(l.metadata.name, " ", Holder(l));
  }
  void Add(std::string e) {
    absl::MutexLock l(&mu_);
    events_.push_back(std::move(e));
  }
  mutable absl::Mutex mu_;
  std::vector<std::string> events_;
  bool out_of_order_ = false;
};

// Every case runs with the cache as parsed trees and as text (compact_cache).
class InformerTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    auto cfg = LoadKubeconfigFile(tb_.kubeconfig(0, Identity::kAdmin));
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    ClientOptions co;
    co.request_timeout = absl::Seconds(5);
    auto c = KubeClient::Create(*cfg, co);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
    run_ = UniqueName("run");
  }

  InformerOptions Options() {
    InformerOptions o;
    o.namespace_ = "default";
    o.label_selector = "run=" + run_;
    o.compact_cache = GetParam();
    o.backoff = {absl::Milliseconds(50), absl::Milliseconds(500), 2.0};
    o.on_error = [](const absl::Status& s) {
      fprintf(stderr, "informer: %s\n", s.ToString().c_str());
    };
    return o;
  }

  MultiClusterLease Lease(const std::string& name, const std::string& holder) {
    return testing::RunLease(run_, name, holder);
  }
  absl::StatusOr<MultiClusterLease> SetHolder(const std::string& name,
                                              const std::string& holder) {
    return testing::SetHolder(client_.get(), name, holder);
  }
  absl::StatusOr<std::string> Etcdctl(std::vector<std::string> args) {
    args.insert(args.begin(), "--endpoints=" + tb_.cluster(0).etcd);
    return testing::Etcdctl(args);
  }

  testbed::Testbed& tb_ = SharedTestbed(1);
  std::unique_ptr<KubeClient> client_;
  std::string run_;
};

TEST_P(InformerTest, SeesAddUpdateDeleteInOrder) {
  EventLog log;
  TypedInformer<MultiClusterLease> inf(client_.get(), Options(),
                                       log.Handlers());
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(kWait));
  EXPECT_EQ(inf.Size(), 0u);
  MultiClusterLeaseClient leases(client_.get());
  std::string a = UniqueName("a");
  ASSERT_TRUE(leases.Create(Lease(a, "pod-1")).ok());
  ASSERT_TRUE(SetHolder(a, "pod-2").ok());
  auto last = SetHolder(a, "pod-3");
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(
      inf.WaitForResourceVersion(last->metadata.resource_version, kWait));
  auto cached = inf.Get("default", a);
  ASSERT_TRUE(cached.has_value());
  EXPECT_THAT(inf.untyped().Keys(), ElementsAre("default/" + a));
  EXPECT_EQ(cached->metadata.resource_version, last->metadata.resource_version);
  EXPECT_EQ(cached->spec.holder_identity, "pod-3");
  ASSERT_TRUE(leases.Delete("default", a).ok());
  ASSERT_TRUE(inf.WaitUntil([&] { return log.size() == 4; }, kWait));
  EXPECT_THAT(
      log.Since(0),
      ElementsAre("ADD " + a + " pod-1", "UPDATE " + a + " pod-1->pod-2",
                  "UPDATE " + a + " pod-2->pod-3", "DELETE " + a));
  EXPECT_FALSE(log.out_of_order());
  EXPECT_FALSE(inf.Get("default", a).has_value());
  EXPECT_EQ(inf.Size(), 0u);
  absl::Time t0 = absl::Now();
  inf.Stop();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(2))
      << "Stop() must cancel the open watch";
}

TEST_P(InformerTest, OnSyncedFollowsTheHandlersOfEachEvent) {
  // What the controller's confirmations rely on (design.md §Confirmation):
  // on_synced(rv) comes after the handler of the event at rv has run.
  absl::Mutex mu;
  std::set<std::string> handled;  // resourceVersions handlers saw
  // on_synced calls in order, each with whether a handler had seen that rv.
  std::vector<std::pair<std::string, bool>> synced;
  Informer::Handlers h;
  auto record = [&](const Json& obj) {
    absl::MutexLock l(&mu);
    handled.insert(ResourceVersionOf(obj));
  };
  h.on_add = record;
  h.on_update = [&](const Json&, const Json& obj) { record(obj); };
  h.on_delete = record;
  h.on_synced = [&](const std::string& rv) {
    absl::MutexLock l(&mu);
    synced.emplace_back(rv, handled.count(rv) > 0);
  };
  InformerOptions o = Options();
  o.watch_timeout = absl::Minutes(5);
  Informer inf(client_.get(), MultiClusterLeaseResource(), o, std::move(h));
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(kWait));
  {
    absl::MutexLock l(&mu);
    ASSERT_EQ(synced.size(), 1u) << "the initial list reports once";
    EXPECT_EQ(synced[0].first, inf.LastSyncResourceVersion());
  }
  MultiClusterLeaseClient leases(client_.get());
  std::string a = UniqueName("synced");
  auto created = leases.Create(Lease(a, "pod-1"));
  ASSERT_TRUE(created.ok()) << created.status();
  auto last = SetHolder(a, "pod-2");
  ASSERT_TRUE(last.ok()) << last.status();
  const std::vector<std::string> written = {created->metadata.resource_version,
                                            last->metadata.resource_version};
  auto find = [&](const std::string& rv) {
    return std::find_if(synced.begin(), synced.end(),
                        [&](const auto& e) { return e.first == rv; });
  };
  ASSERT_TRUE(inf.WaitUntil(
      [&] {
        absl::MutexLock l(&mu);
        return find(written[1]) != synced.end();
      },
      kWait));
  absl::MutexLock l(&mu);
  for (const std::string& rv : written) {
    auto it = find(rv);
    ASSERT_NE(it, synced.end()) << "no on_synced for the write at " << rv;
    EXPECT_TRUE(it->second) << "on_synced(" << rv << ") before its handler";
  }
}

TEST_P(InformerTest, InitialListDeliversExistingObjectsOnce) {
  MultiClusterLeaseClient leases(client_.get());
  std::string a = UniqueName("pre-a"), b = UniqueName("pre-b");
  ASSERT_TRUE(leases.Create(Lease(a, "x")).ok());
  ASSERT_TRUE(leases.Create(Lease(b, "y")).ok());
  EventLog log;
  InformerOptions o = Options();
  o.list_page_size = 1;  // exercise paging
  TypedInformer<MultiClusterLease> inf(client_.get(), o, log.Handlers());
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(kWait));
  EXPECT_THAT(log.Since(0),
              UnorderedElementsAre("ADD " + a + " x", "ADD " + b + " y"));
  EXPECT_FALSE(inf.LastSyncResourceVersion().empty());
  EXPECT_EQ(inf.untyped().stats().lists, 1);
}

TEST_P(InformerTest, CachedObjectsDropManagedFieldsFromListAndWatch) {
  MultiClusterLeaseClient leases(client_.get());
  std::string listed = UniqueName("mf-list"), watched = UniqueName("mf-watch");
  ASSERT_TRUE(leases.Create(Lease(listed, "x")).ok());
  auto raw = client_->Get(MultiClusterLeaseResource(), "default", listed);
  ASSERT_TRUE(raw.ok()) << raw.status();
  ASSERT_TRUE(raw->at("metadata").has_field("managedFields"))
      << "the apiserver should send managedFields (else this test proves "
         "nothing)";
  EventLog log;
  TypedInformer<MultiClusterLease> inf(client_.get(), Options(),
                                       log.Handlers());
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(kWait));
  auto created = leases.Create(Lease(watched, "y"));
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(
      inf.WaitForResourceVersion(created->metadata.resource_version, kWait));
  for (const std::string& name : {listed, watched}) {
    ObjectPtr obj = inf.untyped().GetByKey("default/" + name);
    ASSERT_NE(obj, nullptr) << name;
    EXPECT_FALSE(obj->at("metadata").has_field("managedFields")) << name;
    EXPECT_TRUE(obj->at("metadata").has_field("resourceVersion")) << name;
  }
  inf.Stop();
}

TEST_P(InformerTest, NamespaceAndFieldSelectorScopeTheCache) {
  std::string ns = UniqueName("ns");
  ASSERT_TRUE(tb_.Kubectl(0, {"create", "namespace", ns}).ok());
  MultiClusterLeaseClient leases(client_.get());
  std::string here = UniqueName("here"), other = UniqueName("other");
  MultiClusterLease in_ns = Lease(here, "p");
  in_ns.metadata.namespace_ = ns;
  ASSERT_TRUE(leases.Create(in_ns).ok());
  ASSERT_TRUE(leases.Create(Lease(other, "q")).ok());  // in default

  EventLog log;
  InformerOptions o = Options();
  o.namespace_ = ns;
  TypedInformer<MultiClusterLease> by_ns(client_.get(), o, log.Handlers());
  by_ns.Start();
  ASSERT_TRUE(by_ns.WaitForSync(kWait));
  EXPECT_THAT(log.Since(0), ElementsAre("ADD " + here + " p"));
  EXPECT_TRUE(by_ns.Get(ns, here).has_value());

  EventLog log2;
  InformerOptions o2 = Options();
  o2.namespace_ = "";  // all namespaces
  o2.field_selector = "metadata.name=" + other;
  TypedInformer<MultiClusterLease> by_name(client_.get(), o2, log2.Handlers());
  by_name.Start();
  ASSERT_TRUE(by_name.WaitForSync(kWait));
  EXPECT_THAT(log2.Since(0), ElementsAre("ADD " + other + " q"));
  EXPECT_TRUE(by_name.Get("default", other).has_value());
  // A change to the other object reaches only the informer that selects it.
  auto changed = SetHolder(other, "q2");
  ASSERT_TRUE(changed.ok());
  ASSERT_TRUE(by_name.WaitForResourceVersion(changed->metadata.resource_version,
                                             kWait));
  EXPECT_THAT(log2.Since(1), ElementsAre("UPDATE " + other + " q->q2"));
  EXPECT_EQ(log.size(), 1u);
}

TEST_P(InformerTest, ResumesAfterApiserverRestartWithoutLossOrDuplicates) {
  MultiClusterLeaseClient leases(client_.get());
  std::string a = UniqueName("a");
  ASSERT_TRUE(leases.Create(Lease(a, "before")).ok());
  EventLog log;
  TypedInformer<MultiClusterLease> inf(client_.get(), Options(),
                                       log.Handlers());
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(kWait));
  ASSERT_EQ(log.size(), 1u);
  int64_t watches_before = inf.untyped().stats().watches;

  ASSERT_TRUE(tb_.Stop("apiserver-0").ok());
  ASSERT_TRUE(tb_.StartAgain("apiserver-0").ok());

  std::string e = UniqueName("e");
  // The apiserver may still be warming up; retry the writes briefly.
  absl::StatusOr<MultiClusterLease> changed;
  ASSERT_TRUE(testbed::WaitUntil(
      [&] { return (changed = SetHolder(a, "after")).ok(); }, kWait))
      << changed.status();
  auto created = leases.Create(Lease(e, "new"));
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_TRUE(
      inf.WaitForResourceVersion(created->metadata.resource_version, kWait))
      << inf.untyped().LastError();
  EXPECT_THAT(log.Since(1), ElementsAre("UPDATE " + a + " before->after",
                                        "ADD " + e + " new"));
  EXPECT_GT(inf.untyped().stats().watches, watches_before)
      << "the watch was re-established";
  EXPECT_EQ(inf.Get("default", a)->spec.holder_identity, "after");
}

TEST_P(InformerTest, GoneLeadsToAnExactRelist) {
  MultiClusterLeaseClient leases(client_.get());
  std::string keep = UniqueName("keep"), drop = UniqueName("drop"),
              edit = UniqueName("edit");
  ASSERT_TRUE(leases.Create(Lease(keep, "k")).ok());
  ASSERT_TRUE(leases.Create(Lease(drop, "d")).ok());
  ASSERT_TRUE(leases.Create(Lease(edit, "e1")).ok());
  EventLog log;
  TypedInformer<MultiClusterLease> inf(client_.get(), Options(),
                                       log.Handlers());
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(kWait));
  ASSERT_EQ(log.size(), 3u);
  std::string keep_rv = inf.Get("default", keep)->metadata.resource_version;

  // With the apiserver down, change its etcd directly: delete one object, edit
  // another, then compact. The informer's resourceVersion is now both stale and
  // compacted away.
  ASSERT_TRUE(tb_.Stop("apiserver-0").ok());
  std::string prefix = "/registry/mcl.dev/multiclusterleases/default/";
  ASSERT_TRUE(Etcdctl({"del", prefix + drop}).ok());
  auto value = Etcdctl({"get", prefix + edit, "--print-value-only"});
  ASSERT_TRUE(value.ok()) << value.status();
  std::string edited = absl::StrReplaceAll(
      *value, {{"\"holderIdentity\":\"e1\"", "\"holderIdentity\":\"e2\""}});
  while (!edited.empty() && edited.back() == '\n') edited.pop_back();
  ASSERT_NE(edited, *value);
  ASSERT_TRUE(Etcdctl({"put", prefix + edit, edited}).ok());
  auto put =
      Etcdctl({"put", "/mcl-test/compaction-marker", run_, "-w", "json"});
  ASSERT_TRUE(put.ok()) << put.status();
  auto rev =
      Json::parse(*put).at("header").at("revision").as_number().to_int64();
  ASSERT_TRUE(Etcdctl({"compact", absl::StrCat(rev)}).ok());
  ASSERT_TRUE(tb_.StartAgain("apiserver-0").ok());

  // The informer must find out through 410 and relist: exactly one delete and
  // one update.
  ASSERT_TRUE(inf.WaitUntil([&] { return log.size() >= 5; }, kWait))
      << inf.untyped().LastError();
  EXPECT_THAT(log.Since(3), UnorderedElementsAre("DELETE " + drop,
                                                 "UPDATE " + edit + " e1->e2"));
  EXPECT_GE(inf.untyped().stats().gone, 1);
  EXPECT_GE(inf.untyped().stats().lists, 2);
  EXPECT_EQ(inf.Get("default", keep)->metadata.resource_version, keep_rv);

  // And it keeps watching from the new list: one more change arrives once.
  std::string late = UniqueName("late");
  auto created = leases.Create(Lease(late, "l"));
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_TRUE(
      inf.WaitForResourceVersion(created->metadata.resource_version, kWait));
  EXPECT_THAT(log.Since(5), ElementsAre("ADD " + late + " l"));
  // The cache equals a fresh list.
  ListOptions lo;
  lo.label_selector = "run=" + run_;
  auto fresh = leases.List("default", lo);
  ASSERT_TRUE(fresh.ok());
  std::vector<std::string> want, have;
  for (const auto& l : fresh->items) {
    want.push_back(l.metadata.name + "@" + l.metadata.resource_version);
  }
  for (const auto& l : inf.List())
    have.push_back(l.metadata.name + "@" + l.metadata.resource_version);
  std::sort(want.begin(), want.end());
  std::sort(have.begin(), have.end());
  EXPECT_EQ(have, want);
}

TEST_P(InformerTest, LeasesToo) {
  LeaseClient leases(client_.get());
  std::vector<std::string> seen;
  absl::Mutex mu;
  InformerOptions o = Options();
  TypedInformer<kube::Lease> inf(client_.get(), o,
                                 {[&](const kube::Lease& l) {
                                    absl::MutexLock lock(&mu);
                                    seen.push_back("ADD " + l.metadata.name);
                                  },
                                  nullptr, nullptr});
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(kWait));
  kube::Lease l;
  l.metadata.name = UniqueName("hb");
  l.metadata.namespace_ = "default";
  l.metadata.labels["run"] = run_;
  l.spec.holder_identity = "controller-0";
  auto created = leases.Create(l);
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_TRUE(
      inf.WaitForResourceVersion(created->metadata.resource_version, kWait));
  absl::MutexLock lock(&mu);
  EXPECT_THAT(seen, ElementsAre("ADD " + l.metadata.name));
}

INSTANTIATE_TEST_SUITE_P(Cache, InformerTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Text" : "Tree";
                         });

}  // namespace
}  // namespace mcl::kube
