// Bad input from a scripted loopback server (a real apiserver never sends
// these): every case ends in a clear error naming what was wrong and where,
// within a bounded time, without a crash.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/kube/client.h"
#include "common/kube/errors.h"
#include "common/kube/informer.h"
#include "common/kube/test_server.h"
#include "common/kube/typed_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::kube {
namespace {

using ::testing::AllOf;
using testing::Connection;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::HttpRequest;
using testing::LeaseJson;
using testing::ListJson;
using testing::LoopbackServer;
using testing::TestCa;

constexpr char kLeasePath[] =
    "/apis/mcl.dev/v1alpha1/namespaces/default/multiclusterleases";

std::string Event(const std::string& type, const std::string& object) {
  return testing::WatchEventJson(type, object);
}

class BadInputTest : public ::testing::Test {
 protected:
  std::unique_ptr<KubeClient> ClientFor(const std::string& url,
                                        Config cfg = {}) {
    cfg.server = url;
    cfg.token = "t0ken";
    cfg.source = "test config";
    ClientOptions o;
    o.request_timeout = absl::Seconds(2);
    auto c = KubeClient::Create(cfg, o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }
  std::unique_ptr<LoopbackServer> Serve(
      LoopbackServer::Handler h,
      std::optional<testing::TlsIdentity> tls = std::nullopt) {
    auto s = LoopbackServer::Start(std::move(h), std::move(tls));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::string Message(const absl::Status& s) {
    return std::string(s.message());
  }
};

TEST_F(BadInputTest, MalformedJsonBody) {
  auto server = Serve([](const HttpRequest&, Connection& c) {
    c.Respond(200, "application/json",
              R"({"kind":"MultiClusterLease","metadata":{"name":)");
  });
  auto client = ClientFor(server->url());
  auto got = MultiClusterLeaseClient(client.get()).Get("default", "x");
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(Message(got.status()),
              AllOf(HasSubstr("malformed JSON"),
                    HasSubstr(server->url() + kLeasePath + "/x"),
                    HasSubstr("body starts: {\"kind\"")));
  // The bearer token was sent.
  EXPECT_EQ(server->requests().at(0).headers.at("authorization"),
            "Bearer t0ken");
}

TEST_F(BadInputTest, UnexpectedKind) {
  auto server = Serve([](const HttpRequest& r, Connection& c) {
    if (r.query.count("watch") == 0 && r.path == kLeasePath) {
      c.Respond(
          200, "application/json",
          R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"5"},"items":[]})");
    } else {
      c.Respond(
          200, "application/json",
          R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"x","namespace":"default"}})");
    }
  });
  auto client = ClientFor(server->url());
  MultiClusterLeaseClient leases(client.get());
  auto got = leases.Get("default", "x");
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(Message(got.status()),
              HasSubstr("expected kind MultiClusterLease, got kind \"Pod\""));
  auto list = leases.List("default");
  ASSERT_FALSE(list.ok());
  EXPECT_THAT(
      Message(list.status()),
      HasSubstr("expected kind MultiClusterLeaseList, got kind \"PodList\""));
  // A field of the wrong type is named with its path.
  auto server2 = Serve([](const HttpRequest&, Connection& c) {
    c.Respond(
        200, "application/json",
        R"({"kind":"MultiClusterLease","apiVersion":"mcl.dev/v1alpha1","metadata":{"name":"x"},"spec":{"leaseDurationSeconds":"fifteen"}})");
  });
  auto client2 = ClientFor(server2->url());
  auto typed = MultiClusterLeaseClient(client2.get()).Get("default", "x");
  ASSERT_FALSE(typed.ok());
  EXPECT_THAT(
      Message(typed.status()),
      HasSubstr("spec.leaseDurationSeconds: expected integer, got string"));
}

TEST_F(BadInputTest, HtmlErrorPageFromAProxy) {
  auto server = Serve([](const HttpRequest& r, Connection& c) {
    if (r.method == "GET") {
      c.Respond(
          502, "text/html",
          "<html><head><title>502 Bad "
          "Gateway</title></head><body><center><h1>502 Bad "
          "Gateway</h1></center><hr><center>nginx</center></body></html>");
    } else {
      c.Respond(200, "text/html",
                "<!DOCTYPE html><html><body>Login</body></html>");
    }
  });
  auto client = ClientFor(server->url());
  auto got = client->Get(MultiClusterLeaseResource(), "default", "x");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(HttpCode(got.status()), 502);
  EXPECT_THAT(Message(got.status()),
              AllOf(HasSubstr("HTTP 502"),
                    HasSubstr("an HTML page, not a Kubernetes Status"),
                    HasSubstr("\"502 Bad Gateway\"")));
  // A 200 with HTML where JSON belongs (a captive portal or login page).
  Json obj = Json::parse(LeaseJson("x", ""));
  auto created = client->Create(MultiClusterLeaseResource(), "default", obj);
  ASSERT_FALSE(created.ok());
  EXPECT_THAT(Message(created.status()),
              AllOf(HasSubstr("not JSON"), HasSubstr("text/html"),
                    HasSubstr("<!DOCTYPE html>")));
}

TEST_F(BadInputTest, KubernetesStatusBodiesBecomeClearErrors) {
  auto server = Serve([](const HttpRequest&, Connection& c) {
    c.Respond(
        409, "application/json",
        R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"Operation cannot be fulfilled on multiclusterleases.mcl.dev \"x\": the object has been modified","reason":"Conflict","code":409})");
  });
  auto client = ClientFor(server->url());
  auto got = client->Update(MultiClusterLeaseResource(),
                            Json::parse(LeaseJson("x", "3")));
  EXPECT_TRUE(IsConflict(got.status()));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(Message(got.status()),
              AllOf(HasSubstr("PUT " + server->url() + kLeasePath + "/x"),
                    HasSubstr("HTTP 409"),
                    HasSubstr("Conflict: Operation cannot be fulfilled")));
}

TEST_F(BadInputTest, TruncatedChunkInAWatchStream) {
  auto server = Serve([](const HttpRequest&, Connection& c) {
    c.StartChunked();
    c.Chunk(Event("ADDED", LeaseJson("a", "11")));
    // A chunk that promises 200 bytes and delivers 30, then the connection
    // drops.
    std::string partial = Event("MODIFIED", LeaseJson("a", "12")).substr(0, 30);
    c.Write(absl::StrCat(absl::Hex(200), "\r\n", partial));
    c.CloseAfter();
  });
  auto client = ClientFor(server->url());
  std::vector<std::string> seen;
  WatchOptions wo;
  wo.resource_version = "10";
  absl::Status s = client->Watch(
      MultiClusterLeaseResource(), "default", wo, [&](WatchEvent ev) {
        seen.push_back(absl::StrCat(WatchEventTypeName(ev.type), " ",
                                    ResourceVersionOf(ev.object)));
        return true;
      });
  EXPECT_THAT(seen, ElementsAre("ADDED 11"));
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(
      Message(s),
      AllOf(HasSubstr("watch " + server->url()), HasSubstr("stream broke"),
            HasSubstr("Failed to read chunked response part"),
            HasSubstr("connection closed by the server")));
}

TEST_F(BadInputTest, WatchStreamEndingInsideAnEvent) {
  auto server = Serve([](const HttpRequest&, Connection& c) {
    c.StartChunked();
    std::string ev = Event("ADDED", LeaseJson("a", "11"));
    c.Chunk(ev.substr(0, 20));  // split across chunks: fine so far
    c.Chunk(ev.substr(20));
    c.Chunk(Event("MODIFIED", LeaseJson("a", "12"))
                .substr(0, 25));  // then it ends mid-event
    c.EndChunked();
  });
  auto client = ClientFor(server->url());
  int events = 0;
  absl::Status s = client->Watch(MultiClusterLeaseResource(), "default", {},
                                 [&](WatchEvent) {
                                   ++events;
                                   return true;
                                 });
  EXPECT_EQ(events, 1);
  EXPECT_THAT(Message(s), AllOf(HasSubstr("ended in the middle of an event"),
                                HasSubstr("25 bytes"),
                                HasSubstr("{\"type\":\"MODIFIED\"")));
}

TEST_F(BadInputTest, MalformedAndUnknownWatchEvents) {
  std::string next_body;
  auto server = Serve([&](const HttpRequest& r, Connection& c) {
    c.StartChunked();
    c.Chunk(Event("ADDED", LeaseJson("a", "11")));
    if (r.query.at("resourceVersion") == "1") {
      c.Chunk(
          "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\",}}}"
          "\n");
    } else if (r.query.at("resourceVersion") == "2") {
      c.Chunk(Event("EXPLODED", LeaseJson("a", "12")));
    } else {
      c.Chunk("<html>oops</html>");
    }
    c.EndChunked();
  });
  auto client = ClientFor(server->url());
  auto watch = [&](const std::string& rv) {
    WatchOptions wo;
    wo.resource_version = rv;
    return client->Watch(MultiClusterLeaseResource(), "default", wo,
                         [](WatchEvent) { return true; });
  };
  EXPECT_THAT(Message(watch("1")),
              AllOf(HasSubstr("watch event: malformed JSON"),
                    HasSubstr("resourceVersion=1")));
  EXPECT_THAT(Message(watch("2")),
              HasSubstr("unknown watch event type \"EXPLODED\""));
  EXPECT_THAT(Message(watch("3")),
              HasSubstr("expected a JSON object, got '<'"));
}

TEST_F(BadInputTest, HtmlInsteadOfAWatchStream) {
  auto server = Serve([](const HttpRequest&, Connection& c) {
    c.Respond(200, "text/html", "<html><body>proxy login</body></html>");
  });
  auto client = ClientFor(server->url());
  absl::Status s = client->Watch(MultiClusterLeaseResource(), "default", {},
                                 [](WatchEvent) { return true; });
  EXPECT_THAT(Message(s),
              HasSubstr("content type \"text/html\", not a JSON watch stream"));
}

TEST_F(BadInputTest, UnknownCaIsRejectedWithAClearMessage) {
  auto server_ca = TestCa::Create("server-ca");
  auto other_ca = TestCa::Create("some-other-ca");
  ASSERT_TRUE(server_ca.ok() && other_ca.ok());
  auto leaf = server_ca->Issue("apiserver");
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  auto server = Serve(
      [](const HttpRequest&, Connection& c) {
        c.Respond(200, "application/json", LeaseJson("x", "1"));
      },
      *leaf);
  Config untrusting;
  untrusting.ca_pem = other_ca->ca.cert_pem;
  auto client = ClientFor(server->url(), untrusting);
  auto got = client->Get(MultiClusterLeaseResource(), "default", "x");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(got.status()),
              AllOf(HasSubstr("TLS handshake failed"), HasSubstr("not trusted"),
                    HasSubstr("test config"), HasSubstr(server->url())));
  // No system trust roots either: with no CA configured, a private CA is still
  // unknown.
  auto no_ca = ClientFor(server->url());
  EXPECT_THAT(
      Message(no_ca->Get(MultiClusterLeaseResource(), "default", "x").status()),
      HasSubstr("TLS handshake failed"));
  // Control: the right CA works, and so does insecure-skip-tls-verify.
  Config trusting;
  trusting.ca_pem = server_ca->ca.cert_pem;
  auto good = ClientFor(server->url(), trusting);
  EXPECT_TRUE(good->Get(MultiClusterLeaseResource(), "default", "x").ok());
  Config insecure;
  insecure.insecure_skip_tls_verify = true;
  auto skip = ClientFor(server->url(), insecure);
  EXPECT_TRUE(skip->Get(MultiClusterLeaseResource(), "default", "x").ok());
}

TEST_F(BadInputTest, CertificateForAnotherHostIsRejected) {
  auto ca = TestCa::Create("ca");
  ASSERT_TRUE(ca.ok());
  auto leaf = ca->Issue("elsewhere", "elsewhere.example.com");
  ASSERT_TRUE(leaf.ok());
  auto server = Serve(
      [](const HttpRequest&, Connection& c) {
        c.Respond(200, "application/json", LeaseJson("x", "1"));
      },
      *leaf);
  Config trusting;
  trusting.ca_pem = ca->ca.cert_pem;
  auto client = ClientFor(server->url(), trusting);
  auto got = client->Get(MultiClusterLeaseResource(), "default", "x");
  EXPECT_THAT(Message(got.status()), HasSubstr("TLS handshake failed"));
}

TEST_F(BadInputTest, GarbageCaIsRejectedAtCreate) {
  Config cfg;
  cfg.server = "https://127.0.0.1:1";
  cfg.ca_pem =
      "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END "
      "CERTIFICATE-----\n";
  cfg.source = "kubeconfig /x";
  auto c = KubeClient::Create(cfg);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(Message(c.status()),
              HasSubstr("the CA or client certificate/key cannot be loaded"));
}

TEST_F(BadInputTest, SilentServerTimesOut) {
  auto server = Serve([](const HttpRequest& r, Connection& c) {
    if (r.query.count("watch") != 0) {
      c.StartChunked();  // headers, then nothing at all
    }
    c.Hang(absl::Seconds(30));
  });
  auto client = ClientFor(server->url());
  absl::Time t0 = absl::Now();
  auto got = client->Get(MultiClusterLeaseResource(), "default", "x");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded)
      << got.status();
  EXPECT_THAT(Message(got.status()), HasSubstr("GET " + server->url()));
  EXPECT_LT(absl::Now() - t0, absl::Seconds(8));

  WatchOptions wo;
  wo.idle_timeout = absl::Seconds(1);
  t0 = absl::Now();
  absl::Status s = client->Watch(MultiClusterLeaseResource(), "default", wo,
                                 [](WatchEvent) { return true; });
  EXPECT_FALSE(s.ok());
  EXPECT_LT(absl::Now() - t0, absl::Seconds(8)) << s;
  EXPECT_THAT(Message(s), HasSubstr("watch " + server->url()));
}

TEST_F(BadInputTest, ConnectionRefusedIsNamed) {
  int port;
  {
    auto server = Serve([](const HttpRequest&, Connection&) {});
    port = server->port();
  }
  auto client = ClientFor(absl::StrCat("http://127.0.0.1:", port));
  auto got = client->Get(MultiClusterLeaseResource(), "default", "x");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(got.status()), HasSubstr("cannot connect"));
}

// A scripted apiserver for the informer: two lists and watches, with a
// synthetic 410.
class ScriptedApiserver {
 public:
  ScriptedApiserver() {
    auto s = LoopbackServer::Start(
        [this](const HttpRequest& r, Connection& c) { Handle(r, c); });
    EXPECT_TRUE(s.ok());
    server_ = std::move(*s);
  }
  std::string url() const { return server_->url(); }
  std::vector<HttpRequest> requests() const { return server_->requests(); }

 private:
  void Handle(const HttpRequest& r, Connection& c) {
    bool watch = r.query.count("watch") != 0;
    std::string rv =
        r.query.count("resourceVersion") ? r.query.at("resourceVersion") : "";
    if (!watch && r.query.count("limit") != 0 && r.query.at("limit") == "1") {
      // The informer's check of the current version before it resumes a
      // watch that failed: the latest version this script ever serves.
      c.Respond(200, "application/json", ListJson({}, "22"));
      return;
    }
    if (!watch) {
      if (lists_++ == 0) {
        c.Respond(
            200, "application/json",
            ListJson({LeaseJson("a", "5", "p1"), LeaseJson("b", "6", "p1"),
                      LeaseJson("keep", "7", "p1")},
                     "10"));
      } else {
        // After the 410: b is gone, a changed, c appeared, keep is unchanged.
        c.Respond(
            200, "application/json",
            ListJson({LeaseJson("a", "13", "p3"), LeaseJson("c", "14", "p1"),
                      LeaseJson("keep", "7", "p1")},
                     "20"));
      }
      return;
    }
    c.StartChunked();
    if (rv == "10") {
      c.Chunk(Event("MODIFIED", LeaseJson("a", "11", "p2")));
      c.Chunk(
          Event("MODIFIED",
                LeaseJson("a", "11", "p2")));  // a repeat: must not duplicate
      c.Chunk(Event(
          "BOOKMARK",
          R"({"kind":"MultiClusterLease","apiVersion":"mcl.dev/v1alpha1","metadata":{"resourceVersion":"12"}})"));
      c.EndChunked();  // the server ends the watch; the informer resumes from
                       // the bookmark
    } else if (rv == "12") {
      c.Chunk(Event(
          "ERROR",
          R"json({"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 12 (13)","reason":"Expired","code":410})json"));
      c.EndChunked();
    } else if (rv == "20") {
      c.Chunk(Event("DELETED", LeaseJson("c", "21", "p1")));
      c.Chunk(Event(
          "ADDED",
          R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"intruder","namespace":"default","resourceVersion":"22"}})"));
      c.EndChunked();
    } else {
      // A quiet, open watch (from 21, after the bad event).
      if (!quiet_watch_.HasBeenNotified()) quiet_watch_.Notify();
      c.Hang(absl::Seconds(30));
    }
  }
  std::unique_ptr<LoopbackServer> server_;
  std::atomic<int> lists_{0};

 public:
  absl::Notification quiet_watch_;
};

TEST_F(BadInputTest,
       InformerRelistsExactlyOnASyntheticGoneAndSurvivesABadKind) {
  ScriptedApiserver api;
  auto client = ClientFor(api.url());
  absl::Mutex mu;
  std::vector<std::string> log, errors;
  InformerOptions o;
  o.namespace_ = "default";
  o.backoff = {absl::Milliseconds(10), absl::Milliseconds(100), 2.0};
  o.on_error = [&](const absl::Status& s) {
    absl::MutexLock l(&mu);
    errors.push_back(std::string(s.message()));
  };
  TypedInformer<MultiClusterLease> inf(
      client.get(), o,
      {[&](const MultiClusterLease& l) {
         absl::MutexLock lock(&mu);
         log.push_back("ADD " + l.metadata.name + "@" +
                       l.metadata.resource_version);
       },
       [&](const MultiClusterLease& a, const MultiClusterLease& b) {
         absl::MutexLock lock(&mu);
         log.push_back("UPDATE " + a.metadata.name + "@" +
                       a.metadata.resource_version + "->" +
                       b.metadata.resource_version);
       },
       [&](const MultiClusterLease& l) {
         absl::MutexLock lock(&mu);
         log.push_back("DELETE " + l.metadata.name + "@" +
                       l.metadata.resource_version);
       }});
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(absl::Seconds(10)));
  ASSERT_TRUE(inf.WaitForResourceVersion("21", absl::Seconds(10)))
      << inf.untyped().LastError();
  ASSERT_TRUE(inf.WaitUntil(
      [&] {
        absl::MutexLock l(&mu);
        return !errors.empty();
      },
      absl::Seconds(10)));
  ASSERT_TRUE(
      api.quiet_watch_.WaitForNotificationWithTimeout(absl::Seconds(10)));
  inf.Stop();
  absl::MutexLock l(&mu);
  EXPECT_THAT(
      log,
      ElementsAre("ADD a@5", "ADD b@6", "ADD keep@7",  // first list
                  "UPDATE a@5->11",                    // watch (repeat dropped)
                  "UPDATE a@11->13", "ADD c@14", "DELETE b@6",  // relist diff
                  "DELETE c@21"));                              // watch
  EXPECT_THAT(errors.at(0),
              HasSubstr("expected kind MultiClusterLease, got kind \"Pod\""));
  auto stats = inf.untyped().stats();
  EXPECT_EQ(stats.lists, 2);
  EXPECT_EQ(stats.gone, 1);
  EXPECT_EQ(stats.bookmarks, 1);
  EXPECT_EQ(inf.LastSyncResourceVersion(), "21")
      << "the bad event does not advance the version";
  // Watches resumed from the list, the bookmark, the relist, and after the bad
  // event.
  std::vector<std::string> watched_from;
  for (const auto& r : api.requests()) {
    if (r.query.count("watch")) {
      watched_from.push_back(r.query.at("resourceVersion"));
      EXPECT_EQ(r.query.at("allowWatchBookmarks"), "true");
    }
  }
  ASSERT_GE(watched_from.size(), 4u);
  EXPECT_THAT(
      std::vector<std::string>(watched_from.begin(), watched_from.begin() + 4),
      ElementsAre("10", "12", "20", "21"));
}

TEST_F(BadInputTest, InformerStopIsPromptWhileTheServerHangs) {
  for (bool hang_list : {true, false}) {
    auto hanging = std::make_shared<absl::Notification>();
    auto server =
        Serve([hang_list, hanging](const HttpRequest& r, Connection& c) {
          bool watch = r.query.count("watch") != 0;
          if (!watch && !hang_list) {
            c.Respond(200, "application/json", ListJson({}, "1"));
            return;
          }
          if (watch) c.StartChunked();
          if (!hanging->HasBeenNotified()) hanging->Notify();
          c.Hang(absl::Seconds(60));
        });
    auto client = ClientFor(server->url());
    Informer inf(client.get(), MultiClusterLeaseResource(), {}, {});
    inf.Start();
    ASSERT_TRUE(hanging->WaitForNotificationWithTimeout(absl::Seconds(5)));
    EXPECT_EQ(inf.HasSynced(), !hang_list);
    absl::Time t0 = absl::Now();
    inf.Stop();
    EXPECT_LT(absl::Now() - t0, absl::Seconds(1))
        << (hang_list ? "list" : "watch");
  }
}

}  // namespace
}  // namespace mcl::kube
