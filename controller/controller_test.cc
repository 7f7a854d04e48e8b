// The election controller on the real test bed: two clusters (real
// kube-apiservers), one global etcd, controllers as real processes. Candidates
// are simulated by threads that renew spec as the sidecar identity (every
// leaseDuration/4). Every wait is bounded; every bound asserted is derived from
// docs/design.md's timings (leaseDuration, TTL·(1+rho)+m) plus stated slack for
// the apiserver/etcd round trips on a 2-core machine.
#include <signal.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/contract.h"
#include "common/etcd/watch.h"
#include "controller/controller_test_util.h"
#include "controller/lock_status.h"
#include "controller/session_tracker.h"
#include "gtest/gtest.h"
#include "testbed/cc/subprocess.h"
#include "testbed/cc/testbed.h"

namespace mcl::controller::testing {
namespace {

using testbed::WaitUntil;

// Round trips on the path from "decided" to "visible in the other cluster's
// status": a status write, a Txn, a watch delivery, a Txn, a status write, plus
// our 20 ms polling of the CR.
constexpr absl::Duration kSlack = absl::Milliseconds(1500);

class ControllerTest : public ControllerFixture {
 protected:
  // Waits until both clusters' statuses name the same leader and token; returns
  // them.
  std::optional<std::pair<kube::MultiClusterLease, kube::MultiClusterLease>>
  WaitAgree(const std::string& name, absl::Duration timeout) {
    std::optional<std::pair<kube::MultiClusterLease, kube::MultiClusterLease>>
        seen;
    WaitUntil(
        [&] {
          auto a = env_->Read(0, name);
          auto b = env_->Read(1, name);
          if (a.ok() && b.ok() && !a->status.leader.empty() &&
              a->status.leader == b->status.leader &&
              a->status.leader_cluster == b->status.leader_cluster &&
              a->status.fencing_token == b->status.fencing_token) {
            seen = std::make_pair(*a, *b);
          }
          return seen.has_value();
        },
        timeout);
    return seen;
  }
  // Exactly one cluster's status claims the lock (when both claim, S1 is
  // broken).
  void ExpectAtMostOneHolds(const std::string& name) {
    auto a = env_->Read(0, name);
    auto b = env_->Read(1, name);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_FALSE(Holds(*a) && Holds(*b)) << "both clusters claim " << name;
  }
};

TEST_F(ControllerTest,
       TwoClustersExactlyOneHoldsAndBothShowTheSameLeaderAndToken) {
  ASSERT_NE(Start(0, "c0"), nullptr);
  ASSERT_NE(Start(1, "c1"), nullptr);
  const std::string lock = "shared";
  ASSERT_TRUE(env_->CreateLock(0, lock).ok());
  ASSERT_TRUE(env_->CreateLock(1, lock).ok());
  Campaign(0, lock, "pod-a");
  auto held = WaitHeld(0, lock, "pod-a", absl::Seconds(10));
  ASSERT_TRUE(held.has_value()) << "cluster-0 never granted";
  Campaign(1, lock, "pod-b");
  auto both = WaitAgree(lock, absl::Seconds(10));
  ASSERT_TRUE(both.has_value()) << "the clusters never agreed on the leader";
  const kube::MultiClusterLease& a = both->first;
  const kube::MultiClusterLease& b = both->second;
  EXPECT_TRUE(Holds(a));
  EXPECT_FALSE(Holds(b));
  EXPECT_TRUE(CondIs(b, kGlobalLockHeld, "False", "HeldByOtherCluster"));
  EXPECT_EQ(a.status.leader, "pod-a");
  EXPECT_EQ(a.status.leader_cluster, env_->tb.cluster(0).name);
  EXPECT_EQ(a.status.fencing_token, b.status.fencing_token);
  EXPECT_GT(a.status.fencing_token, 0);
  EXPECT_FALSE(a.status.session.empty());
  EXPECT_EQ(b.status.session, "")
      << "a foreign grant must never be confirmable locally";
  EXPECT_EQ(
      a.status.heartbeat,
      env_->ns + "/" + contract::HeartbeatLeaseName(env_->tb.cluster(0).name));
  EXPECT_EQ(a.status.session_ttl_milliseconds, 2000);
  EXPECT_TRUE(CondIs(a, kBackendReachable, "True"));
  EXPECT_TRUE(CondIs(a, kCandidateLive, "True"));
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto v = env_->Read(1, lock);
        return v.ok() && CondIs(*v, kCandidateLive, "True", "Renewing");
      },
      absl::Seconds(5)))
      << "cluster-1 never reported its live candidate";
  // The etcd key: attached to the session the status names; the token is its
  // mod_revision.
  auto key = env_->Key(lock);
  ASSERT_TRUE(key.ok() && key->has_value());
  EXPECT_EQ((*key)->mod_revision, a.status.fencing_token);
  EXPECT_EQ(SessionHex((*key)->lease), a.status.session);
  auto value = contract::ParseKeyValue((*key)->value);
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ(value->cluster, env_->tb.cluster(0).name);
  EXPECT_EQ(value->holder, "pod-a");
  // The grant is an Event on the CR; the heartbeat Lease confirms the same
  // session.
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto ev = env_->tb.Kubectl(0, {"get", "events", "-n", env_->ns, "-o",
                                       "jsonpath={.items[*].reason}"});
        return ev.ok() && ev->find("Granted") != std::string::npos;
      },
      absl::Seconds(5)));
  auto hb = env_->tb.Kubectl(
      0, {"get", "lease", "-n", env_->ns,
          contract::HeartbeatLeaseName(env_->tb.cluster(0).name), "-o",
          "jsonpath={.metadata.annotations.mcl\\.dev/session}"});
  ASSERT_TRUE(hb.ok()) << hb.status();
  EXPECT_EQ(*hb, a.status.session);
  // Renewals do not cause status writes: the status stays byte-identical for a
  // few renewals.
  auto before = env_->Read(0, lock);
  absl::SleepFor(absl::Milliseconds(1200));
  auto after = env_->Read(0, lock);
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_GT(after->metadata.generation, before->metadata.generation)
      << "the candidate kept renewing";
  EXPECT_FALSE(StatusDiffers(before->status, after->status));
}

TEST_F(ControllerTest,
       StaleCandidateIsReleasedAndTheOtherClusterWinsByWatchWithAGreaterToken) {
  ASSERT_NE(Start(0, "c0"), nullptr);
  ASSERT_NE(Start(1, "c1"), nullptr);
  const std::string lock = "stale";
  ASSERT_TRUE(env_->CreateLock(0, lock).ok());
  ASSERT_TRUE(env_->CreateLock(1, lock).ok());
  Candidate* a = Campaign(0, lock, "pod-a");
  auto first = WaitHeld(0, lock, "pod-a", absl::Seconds(10));
  ASSERT_TRUE(first.has_value());
  Campaign(1, lock, "pod-b");
  ASSERT_TRUE(WaitAgree(lock, absl::Seconds(10)).has_value());

  // Watch the key from the test to time the hand-over inside etcd.
  absl::Mutex mu;
  absl::Time deleted_at, put_at;
  int64_t new_token = 0;
  etcd::WatchOptions wo;
  wo.key = env_->EtcdKey(lock);
  bool created = false;
  etcd::WatchCallbacks cb;
  cb.on_created = [&](int64_t) {
    absl::MutexLock l(&mu);
    created = true;
  };
  cb.on_events = [&](const std::vector<etcd::Event>& events, int64_t) {
    absl::MutexLock l(&mu);
    for (const auto& e : events) {
      if (e.type == etcd::Event::Type::kDelete && deleted_at == absl::Time()) {
        deleted_at = absl::Now();
      } else if (e.type == etcd::Event::Type::kPut &&
                 deleted_at != absl::Time() && put_at == absl::Time()) {
        put_at = absl::Now();
        new_token = e.kv.mod_revision;
      }
    }
  };
  auto watch = etcd::Watch::Start(env_->etcd(), wo, cb);
  ASSERT_TRUE(watch.ok());
  {
    absl::MutexLock l(&mu);
    ASSERT_TRUE(
        mu.AwaitWithTimeout(absl::Condition(&created), absl::Seconds(5)))
        << "the test's etcd watch was never created";
  }

  const absl::Time last = a->Stop();
  auto won = WaitHeld(1, lock, "pod-b", absl::Seconds(15));
  const absl::Time won_at = absl::Now();
  ASSERT_TRUE(won.has_value()) << "cluster-1 never took over";
  // design.md "Failover timings": staleness (leaseDuration) then the ack
  // timeout, overlapping.
  const absl::Duration bound =
      std::max(absl::Seconds(kLeaseSeconds), AckTimeout()) + kSlack;
  EXPECT_LE(won_at - last, bound);
  EXPECT_GE(won_at - last, absl::Seconds(kLeaseSeconds))
      << "released before it was stale";
  EXPECT_GT(won->status.fencing_token, first->status.fencing_token);
  EXPECT_EQ(won->status.transitions, 2);
  {
    absl::MutexLock l(&mu);
    ASSERT_NE(deleted_at, absl::Time());
    ASSERT_NE(put_at, absl::Time());
    // By watch, not polling: the other controller creates the key right after
    // the delete.
    EXPECT_LT(put_at - deleted_at, absl::Milliseconds(500));
    EXPECT_EQ(new_token, won->status.fencing_token);
  }
  auto loser = WaitAgree(lock, absl::Seconds(5));
  ASSERT_TRUE(loser.has_value());
  EXPECT_FALSE(Holds(loser->first));
  EXPECT_TRUE(CondIs(loser->first, kCandidateLive, "False", "Stale"));
  ExpectAtMostOneHolds(lock);
  (*watch)->Stop();
}

TEST_F(ControllerTest,
       ResignHandsOverAtOnceAndTokensGrowOnEveryChangeOfHolder) {
  ASSERT_NE(Start(0, "c0"), nullptr);
  ASSERT_NE(Start(1, "c1"), nullptr);
  const std::string lock = "resign";
  ASSERT_TRUE(env_->CreateLock(0, lock).ok());
  ASSERT_TRUE(env_->CreateLock(1, lock).ok());
  Candidate* a = Campaign(0, lock, "pod-a");
  auto g1 = WaitHeld(0, lock, "pod-a", absl::Seconds(10));
  ASSERT_TRUE(g1.has_value());
  Candidate* b = Campaign(1, lock, "pod-b");
  ASSERT_TRUE(WaitAgree(lock, absl::Seconds(10)).has_value());
  std::vector<int64_t> tokens = {g1->status.fencing_token};

  // Resign (graceful): no timer on the path.
  absl::Time t0 = absl::Now();
  ASSERT_TRUE(a->Resign().ok());
  auto g2 = WaitHeld(1, lock, "pod-b", absl::Seconds(5));
  ASSERT_TRUE(g2.has_value());
  EXPECT_LT(absl::Now() - t0, absl::Milliseconds(1500))
      << "resign must not wait for a timeout";
  tokens.push_back(g2->status.fencing_token);

  // And back: pod-a campaigns again, pod-b resigns. First cluster 0 reports
  // that it has no candidate, then that it sees pod-a renew, so the resign
  // below races nothing.
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto v = env_->Read(0, lock);
        return v.ok() && CondIs(*v, kCandidateLive, "False");
      },
      absl::Seconds(5)));
  a = Campaign(0, lock, "pod-a");
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto v = env_->Read(0, lock);
        return v.ok() && CondIs(*v, kCandidateLive, "True", "Renewing");
      },
      absl::Seconds(5)));
  t0 = absl::Now();
  ASSERT_TRUE(b->Resign().ok());
  auto g3 = WaitHeld(0, lock, "pod-a", absl::Seconds(5));
  ASSERT_TRUE(g3.has_value());
  EXPECT_LT(absl::Now() - t0, absl::Milliseconds(1500));
  tokens.push_back(g3->status.fencing_token);

  // A local replica failover inside cluster-0: pod-a2 takes over the candidacy;
  // the key follows after pod-a's validity ran out, with a new token.
  a->Stop();
  Campaign(0, lock, "pod-a2");
  auto g4 = WaitHeld(0, lock, "pod-a2", absl::Seconds(10));
  ASSERT_TRUE(g4.has_value());
  tokens.push_back(g4->status.fencing_token);
  for (size_t i = 1; i < tokens.size(); ++i) {
    EXPECT_GT(tokens[i], tokens[i - 1]) << "token " << i;
  }
  auto agree = WaitAgree(lock, absl::Seconds(5));
  ASSERT_TRUE(agree.has_value());
  EXPECT_EQ(agree->second.status.fencing_token, tokens.back());
  EXPECT_EQ(agree->first.status.transitions, 4);
}

// The port a controller's metrics server bound (it logs it; the flag says 0).
int MetricsPort(const testbed::Subprocess& p) {
  const std::string log = p.Log();
  const std::string needle = "\"msg\":\"metrics listening\"";
  size_t at = log.find(needle);
  if (at == std::string::npos) return 0;
  at = log.find("\"port\":\"", at);
  int port = 0;
  if (at != std::string::npos) port = std::atoi(log.c_str() + at + 8);
  return port;
}

// GET path on 127.0.0.1:port (or [::1]:port): "<status code>\n<body>".
std::string HttpGet(int port, const std::string& path, bool ipv6 = false) {
  auto r = testbed::RunCommand(
      {"curl", "-s", "-g", "-w", "\n%{http_code}",
       absl::StrCat(ipv6 ? "http://[::1]:" : "http://127.0.0.1:", port, path)},
      absl::Seconds(10));
  if (!r.ok()) return "";
  const size_t nl = r->output.rfind('\n');
  if (nl == std::string::npos) return r->output;
  return r->output.substr(nl + 1) + "\n" + r->output.substr(0, nl);
}

// The value of an unlabelled sample in Prometheus text, or -1.
double Sample(const std::string& text, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, name + " ")) {
      double v = -1;
      if (absl::SimpleAtod(line.substr(name.size() + 1), &v)) return v;
    }
  }
  return -1;
}

// /metrics carries what the issue names (locks held, contention attempts, the
// etcd latency histogram, status write errors, mcl_build_info) with values
// that follow a grant; /healthz and /readyz are 200 on every replica (a
// standby is a ready pod: issue 17); /activez is 200 on the active replica
// only, as mcl_controller_active is 1 there only. Both listen on IPv4 and
// IPv6 loopback when asked ("localhost").
TEST_F(ControllerTest, MetricsHealthAndReadinessOfActiveAndStandby) {
  testbed::Subprocess* active = Start(0, "c0-active");
  ASSERT_NE(active, nullptr);
  ASSERT_TRUE(
      active->WaitForLog("\"msg\":\"active replica\"", absl::Seconds(20)));
  testbed::Subprocess* standby =
      Start(0, "c0-standby", {"--metrics-address", "localhost:0"},
            /*wait_ready=*/false);
  ASSERT_NE(standby, nullptr);
  ASSERT_TRUE(standby->WaitForLog("\"msg\":\"standby\"", absl::Seconds(20)));
  const int ap = MetricsPort(*active), sp = MetricsPort(*standby);
  ASSERT_GT(ap, 0) << active->Log();
  ASSERT_GT(sp, 0) << standby->Log();

  const std::string lock = "metrics";
  ASSERT_TRUE(env_->CreateLock(0, lock).ok());
  Campaign(0, lock, "pod-m");
  ASSERT_TRUE(WaitHeld(0, lock, "pod-m", absl::Seconds(10)).has_value());

  std::string metrics;
  // Events are written asynchronously; everything else is counted before
  // the status that shows the grant is written.
  EXPECT_TRUE(WaitUntil(
      [&] {
        metrics = HttpGet(ap, "/metrics");
        return Sample(metrics, "mcl_controller_event_writes_total") >= 1;
      },
      absl::Seconds(10)))
      << metrics;
  EXPECT_TRUE(absl::StartsWith(metrics, "200\n")) << metrics;
  EXPECT_EQ(Sample(metrics, "mcl_controller_locks_held"), 1) << metrics;
  EXPECT_EQ(Sample(metrics, "mcl_controller_active"), 1);
  EXPECT_EQ(Sample(metrics, "mcl_controller_backend_reachable"), 1);
  EXPECT_GE(Sample(metrics, "mcl_controller_contention_attempts_total"), 1);
  EXPECT_GE(Sample(metrics, "mcl_controller_grants_total"), 1);
  EXPECT_GE(Sample(metrics, "mcl_controller_status_writes_total"), 1);
  EXPECT_EQ(Sample(metrics, "mcl_controller_status_write_errors_total"), 0);
  EXPECT_GE(Sample(metrics, "mcl_controller_apiserver_writes_total"),
            Sample(metrics, "mcl_controller_status_writes_total"));
  EXPECT_GE(
      Sample(metrics, "mcl_controller_etcd_request_duration_seconds_count"), 1);
  EXPECT_NE(metrics.find("mcl_controller_etcd_request_duration_seconds_bucket{"
                         "le=\"+Inf\"}"),
            std::string::npos)
      << metrics;

  const std::string sm = HttpGet(sp, "/metrics");
  EXPECT_EQ(Sample(sm, "mcl_controller_active"), 0) << sm;
  EXPECT_EQ(Sample(sm, "mcl_controller_locks_held"), 0) << sm;

  EXPECT_NE(metrics.find("mcl_build_info{component=\"controller\",version="),
            std::string::npos)
      << metrics;
  EXPECT_EQ(Sample(metrics, "mcl_controller_standing_down"), 0);

  EXPECT_EQ(HttpGet(ap, "/healthz"), "200\nok\n");
  EXPECT_EQ(HttpGet(sp, "/healthz"), "200\nok\n");
  EXPECT_EQ(HttpGet(ap, "/readyz"), "200\nready (active)\n");
  EXPECT_EQ(HttpGet(sp, "/readyz"), "200\nready (standby)\n");
  EXPECT_EQ(HttpGet(ap, "/activez"), "200\nactive\n");
  EXPECT_EQ(HttpGet(sp, "/activez"), "503\nnot active (standby)\n");
  EXPECT_EQ(HttpGet(sp, "/activez", /*ipv6=*/true),
            "503\nnot active (standby)\n");
}

TEST_F(ControllerTest, ControllerSigkillFreesTheLockAfterTheSessionTtl) {
  testbed::Subprocess* c0 = Start(0, "c0");
  ASSERT_NE(c0, nullptr);
  ASSERT_NE(Start(1, "c1"), nullptr);
  const std::string lock = "kill";
  ASSERT_TRUE(env_->CreateLock(0, lock).ok());
  ASSERT_TRUE(env_->CreateLock(1, lock).ok());
  Campaign(0, lock, "pod-a");
  auto g1 = WaitHeld(0, lock, "pod-a", absl::Seconds(10));
  ASSERT_TRUE(g1.has_value());
  Campaign(1, lock, "pod-b");
  ASSERT_TRUE(WaitAgree(lock, absl::Seconds(10)).has_value());
  const absl::Time t0 = absl::Now();
  ASSERT_TRUE(c0->Signal(SIGKILL).ok());
  auto g2 = WaitHeld(1, lock, "pod-b", absl::Seconds(15));
  ASSERT_TRUE(g2.has_value());
  const absl::Duration took = absl::Now() - t0;
  // etcd expires the lease between TTL − (time since the last keepalive ≤
  // TTL/3) and TTL after the kill, checks expiry about every 500 ms, then the
  // watch fires.
  EXPECT_GE(took, kTtl * 2 / 3 - absl::Milliseconds(100));
  EXPECT_LE(took, kTtl + absl::Milliseconds(500) + kSlack);
  EXPECT_GT(g2->status.fencing_token, g1->status.fencing_token);
}

TEST_F(ControllerTest, ControllerSigtermReleasesAtOnceAndExitsZero) {
  testbed::Subprocess* c0 = Start(0, "c0");
  ASSERT_NE(c0, nullptr);
  ASSERT_NE(Start(1, "c1"), nullptr);
  const std::string lock = "term";
  ASSERT_TRUE(env_->CreateLock(0, lock).ok());
  ASSERT_TRUE(env_->CreateLock(1, lock).ok());
  Campaign(0, lock, "pod-a");
  ASSERT_TRUE(WaitHeld(0, lock, "pod-a", absl::Seconds(10)).has_value());
  Campaign(1, lock, "pod-b");
  ASSERT_TRUE(WaitAgree(lock, absl::Seconds(10)).has_value());
  const absl::Time t0 = absl::Now();
  ASSERT_TRUE(c0->Signal(SIGTERM).ok());
  auto g2 = WaitHeld(1, lock, "pod-b", absl::Seconds(10));
  ASSERT_TRUE(g2.has_value());
  const absl::Duration took = absl::Now() - t0;
  // Revoke (status) → the candidate's next renewal acks (≤ leaseDuration/4) →
  // delete → watch.
  EXPECT_LT(took, kTtl * 3 / 4)
      << "SIGTERM must release well before the TTL would";
  auto code = c0->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
  auto v0 = env_->Read(0, lock);
  ASSERT_TRUE(v0.ok());
  EXPECT_FALSE(Holds(*v0));
  EXPECT_NE(c0->Log().find("stopped"), std::string::npos);
}

TEST_F(ControllerTest, DeletedCrReleasesItsKeyAndLosesTheFinalizer) {
  ASSERT_NE(Start(0, "c0"), nullptr);
  ASSERT_NE(Start(1, "c1"), nullptr);
  const std::string lock = "deleted";
  ASSERT_TRUE(env_->CreateLock(0, lock).ok());
  ASSERT_TRUE(env_->CreateLock(1, lock).ok());
  Campaign(0, lock, "pod-a");
  auto g1 = WaitHeld(0, lock, "pod-a", absl::Seconds(10));
  ASSERT_TRUE(g1.has_value());
  auto with_finalizer = env_->Read(0, lock);
  ASSERT_TRUE(with_finalizer.ok());
  EXPECT_TRUE(absl::c_linear_search(with_finalizer->metadata.finalizers,
                                    contract::kFinalizer));
  Campaign(1, lock, "pod-b");
  ASSERT_TRUE(WaitAgree(lock, absl::Seconds(10)).has_value());
  const absl::Time t0 = absl::Now();
  ASSERT_TRUE(
      env_->tb
          .Kubectl(0, {"delete", "mcl", "-n", env_->ns, lock, "--wait=false"})
          .ok());
  // Gone entirely: the finalizer was removed after the key was released.
  EXPECT_TRUE(
      WaitUntil([&] { return absl::IsNotFound(env_->Read(0, lock).status()); },
                AckTimeout() + kSlack));
  auto g2 = WaitHeld(1, lock, "pod-b", absl::Seconds(5));
  ASSERT_TRUE(g2.has_value());
  EXPECT_LT(absl::Now() - t0, AckTimeout() + kSlack);
  auto key = env_->Key(lock);
  ASSERT_TRUE(key.ok() && key->has_value());
  EXPECT_EQ(contract::ParseKeyValue((*key)->value)->cluster,
            env_->tb.cluster(1).name);
  EXPECT_GT((*key)->mod_revision, g1->status.fencing_token);
}

TEST_F(ControllerTest, BadInputIsReportedAndTheOtherLocksAreStillServed) {
  // Garbage under the prefix before the controller starts: one for a lock, two
  // that name none.
  ASSERT_TRUE(env_->kv().Put(env_->EtcdKey("garbage"), "not json {").ok());
  ASSERT_TRUE(env_->kv().Put(env_->prefix + "/stray", "x").ok());
  ASSERT_TRUE(env_->kv().Put(env_->prefix + "/a/b/c", "{}").ok());
  testbed::Subprocess* c0 = Start(0, "c0");
  ASSERT_NE(c0, nullptr);

  ASSERT_TRUE(env_->CreateLock(0, "garbage").ok());
  Campaign(0, "garbage", "pod-g");
  ASSERT_TRUE(env_->CreateLock(0, "noholder").ok());
  ASSERT_TRUE(
      env_->CreateLock(
              0, "absurd",
              R"({"holderIdentity":"pod-x","leaseDurationSeconds":3600})")
          .ok());
  const std::string long_name(253, 'a');
  ASSERT_TRUE(env_->CreateLock(0, long_name).ok());
  Campaign(0, long_name, "pod-long");
  ASSERT_TRUE(env_->CreateLock(0, "good").ok());
  Campaign(0, "good", "pod-good");

  EXPECT_TRUE(WaitHeld(0, "good", "pod-good", absl::Seconds(10)).has_value());
  EXPECT_TRUE(
      WaitHeld(0, long_name, "pod-long", absl::Seconds(10)).has_value());
  auto long_key = env_->Key(long_name);
  ASSERT_TRUE(long_key.ok() && long_key->has_value());
  // The absurd (but valid) policy is honoured: one renewal at creation keeps it
  // live for an hour.
  EXPECT_TRUE(WaitHeld(0, "absurd", "pod-x", absl::Seconds(10)).has_value());
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto v = env_->Read(0, "noholder");
        return v.ok() && CondIs(*v, kCandidateLive, "False", "NoHolder") &&
               CondIs(*v, kGlobalLockHeld, "False", "NoLiveCandidate");
      },
      absl::Seconds(10)));
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto v = env_->Read(0, "garbage");
        return v.ok() &&
               CondIs(*v, kGlobalLockHeld, "False", "InvalidKeyValue") &&
               v->status.leader.empty();
      },
      absl::Seconds(10)));
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto ev = env_->tb.Kubectl(
            0, {"get", "events", "-n", env_->ns, "--field-selector",
                "type=Warning", "-o", "jsonpath={.items[*].reason}"});
        return ev.ok() && ev->find("InvalidKeyValue") != std::string::npos;
      },
      absl::Seconds(5)));
  EXPECT_TRUE(c0->WaitForLog("names no lock", absl::Seconds(1)));
  EXPECT_NE(c0->Log().find(env_->prefix + "/stray"), std::string::npos);
  // The garbage is never overwritten by the controller.
  auto g = env_->Key("garbage");
  ASSERT_TRUE(g.ok() && g->has_value());
  EXPECT_EQ((*g)->value, "not json {");
  // Once the garbage is removed, the lock is contended by watch.
  ASSERT_TRUE(env_->kv().Delete(env_->EtcdKey("garbage")).ok());
  EXPECT_TRUE(WaitHeld(0, "garbage", "pod-g", absl::Seconds(5)).has_value());
  // Every line about a lock names it.
  int action_lines = 0;
  for (const auto& line : absl::StrSplit(c0->Log(), '\n')) {
    if (absl::StrContains(line, "\"action\":")) {
      ++action_lines;
      EXPECT_TRUE(absl::StrContains(line, "\"lock\":\"")) << line;
    }
  }
  EXPECT_GT(action_lines, 0) << c0->Log();
}

}  // namespace
}  // namespace mcl::controller::testing
