// Pure parts: error mapping, typed objects and their JSON, the watch stream
// framer and decoder.
#include "absl/strings/str_cat.h"
#include "common/kube/errors.h"
#include "common/kube/objects.h"
#include "common/kube/watch_stream.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcl::kube {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ErrorsTest, KubernetesStatusIsParsed) {
  absl::Status s = StatusFromResponse(
      409, "application/json",
      R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"the object has been modified","reason":"Conflict","code":409})",
      "PUT", "https://h/x");
  EXPECT_TRUE(IsConflict(s));
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(KubeReason(s), "Conflict");
  EXPECT_EQ(HttpCode(s), 409);
  EXPECT_THAT(
      std::string(s.message()),
      AllOf(HasSubstr(
          "PUT https://h/x: HTTP 409 Conflict: the object has been modified")));
  absl::Status exists = StatusFromResponse(
      409, "application/json",
      R"({"kind":"Status","reason":"AlreadyExists","code":409})", "POST", "u");
  EXPECT_TRUE(absl::IsAlreadyExists(exists));
  EXPECT_FALSE(IsConflict(exists));
}

TEST(ErrorsTest, CodesMapToAbsl) {
  struct Case {
    int code;
    absl::StatusCode want;
  };
  for (const Case& c :
       std::vector<Case>{{400, absl::StatusCode::kInvalidArgument},
                         {401, absl::StatusCode::kUnauthenticated},
                         {403, absl::StatusCode::kPermissionDenied},
                         {404, absl::StatusCode::kNotFound},
                         {410, absl::StatusCode::kFailedPrecondition},
                         {422, absl::StatusCode::kInvalidArgument},
                         {429, absl::StatusCode::kResourceExhausted},
                         {500, absl::StatusCode::kInternal},
                         {503, absl::StatusCode::kUnavailable},
                         {504, absl::StatusCode::kDeadlineExceeded}}) {
    absl::Status s = StatusFromResponse(c.code, "", "", "GET", "u");
    EXPECT_EQ(s.code(), c.want) << c.code;
    EXPECT_EQ(HttpCode(s), c.code);
  }
  EXPECT_TRUE(IsGone(StatusFromResponse(410, "", "", "GET", "u")));
  EXPECT_TRUE(IsGone(StatusFromResponse(
      500, "application/json",
      R"({"kind":"Status","reason":"Expired","code":410})", "GET", "u")));
  EXPECT_TRUE(IsForbidden(StatusFromResponse(403, "", "", "GET", "u")));
  EXPECT_TRUE(IsUnauthorized(StatusFromResponse(401, "", "", "GET", "u")));
  EXPECT_TRUE(IsInvalid(StatusFromResponse(422, "", "", "GET", "u")));
  EXPECT_FALSE(IsConflict(absl::AbortedError("not from kube")));
}

TEST(ErrorsTest, NonStatusBodiesAreDescribed) {
  absl::Status html = StatusFromResponse(
      503, "text/html; charset=utf-8",
      "<html><head><title> Service Unavailable </title></head></html>", "GET",
      "u");
  EXPECT_THAT(
      std::string(html.message()),
      AllOf(HasSubstr("HTML page"), HasSubstr("\"Service Unavailable\"")));
  absl::Status junk =
      StatusFromResponse(500, "text/plain", "panic:\x01 nil map", "GET", "u");
  EXPECT_THAT(std::string(junk.message()),
              AllOf(HasSubstr("text/plain"), HasSubstr("panic:\\x01 nil map")));
  absl::Status other_json = StatusFromResponse(
      502, "application/json", R"({"error":"upstream"})", "GET", "u");
  EXPECT_THAT(std::string(other_json.message()),
              HasSubstr("not a Kubernetes Status"));
  EXPECT_THAT(
      std::string(StatusFromResponse(502, "", "", "GET", "u").message()),
      HasSubstr("empty body"));
}

constexpr char kFull[] = R"({
  "apiVersion": "mcl.dev/v1alpha1", "kind": "MultiClusterLease",
  "metadata": {"name": "lock", "namespace": "ns", "uid": "u-1", "resourceVersion": "42",
               "generation": 3, "creationTimestamp": "2026-01-01T00:00:00Z",
               "deletionTimestamp": "2026-01-02T00:00:00Z", "finalizers": ["mcl.dev/release"],
               "labels": {"a": "b"}, "annotations": {"c": "d"},
               "ownerReferences": [{"kind": "Deployment", "name": "app"}]},
  "spec": {"holderIdentity": "pod-1", "leaseDurationSeconds": 15,
           "renewTime": "2026-01-01T00:00:01.000001Z", "holderInstance": "9f3a",
           "futureField": true},
  "status": {"leader": "pod-1", "leaderCluster": "c1", "leaderInstance": "9f3a",
             "acquireTime": "2026-01-01T00:00:00.5Z",
             "fencingToken": 9007199254740993, "observedGeneration": 3, "transitions": 4,
             "session": "abc", "heartbeat": "ns/mcl-heartbeat-c1", "sessionTTLMilliseconds": 2000,
             "confirmedResourceVersion": "41", "lastConfirmedRenewTime": "2026-01-01T00:00:01Z",
             "conditions": [{"type": "GlobalLockHeld", "status": "True", "observedGeneration": 3,
                             "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "Granted",
                             "message": "ok"}]}
})";

TEST(ObjectsTest, MultiClusterLeaseDecodesEveryField) {
  auto l = MultiClusterLease::FromJson(Json::parse(kFull));
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->metadata.Key(), "ns/lock");
  EXPECT_EQ(l->metadata.uid, "u-1");
  EXPECT_EQ(l->metadata.resource_version, "42");
  EXPECT_EQ(l->metadata.generation, 3);
  EXPECT_EQ(l->metadata.deletion_timestamp, "2026-01-02T00:00:00Z");
  EXPECT_THAT(l->metadata.finalizers, ElementsAre("mcl.dev/release"));
  EXPECT_EQ(l->spec.holder_identity, "pod-1");
  EXPECT_EQ(l->spec.lease_duration_seconds, 15);
  EXPECT_EQ(l->spec.renew_time, "2026-01-01T00:00:01.000001Z");
  EXPECT_EQ(l->spec.holder_instance, "9f3a");
  const auto& s = l->status;
  EXPECT_EQ(s.leader, "pod-1");
  EXPECT_EQ(s.leader_cluster, "c1");
  EXPECT_EQ(s.leader_instance, "9f3a");
  EXPECT_EQ(s.fencing_token,
            9007199254740993);  // beyond double precision: kept exact
  EXPECT_EQ(s.observed_generation, 3);
  EXPECT_EQ(s.transitions, 4);
  EXPECT_EQ(s.session, "abc");
  EXPECT_EQ(s.heartbeat, "ns/mcl-heartbeat-c1");
  EXPECT_EQ(s.session_ttl_milliseconds, 2000);
  EXPECT_EQ(s.confirmed_resource_version, "41");
  ASSERT_EQ(s.conditions.size(), 1u);
  EXPECT_EQ(s.conditions[0].type, "GlobalLockHeld");
  EXPECT_EQ(s.conditions[0].observed_generation, 3);
}

TEST(ObjectsTest, RoundTripKeepsUnknownFieldsAndOmitsEmpties) {
  auto l = MultiClusterLease::FromJson(Json::parse(kFull));
  ASSERT_TRUE(l.ok());
  l->spec.holder_identity.reset();  // resign
  l->status.conditions.clear();
  Json j = l->ToJson();
  EXPECT_FALSE(j.at("spec").has_field("holderIdentity"));
  EXPECT_TRUE(j.at("spec").at("futureField").as_bool());
  EXPECT_EQ(j.at("metadata").at("ownerReferences").size(), 1u);
  EXPECT_FALSE(j.at("status").has_field("conditions"));
  auto back = MultiClusterLease::FromJson(j);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->status.fencing_token, l->status.fencing_token);
  EXPECT_EQ(back->metadata.labels, l->metadata.labels);
  // Built from scratch: kind, apiVersion, no status.
  MultiClusterLease fresh;
  fresh.metadata.name = "n";
  fresh.metadata.namespace_ = "ns";
  Json f = fresh.ToJson();
  EXPECT_EQ(f.at("kind").as_string(), "MultiClusterLease");
  EXPECT_EQ(f.at("apiVersion").as_string(), "mcl.dev/v1alpha1");
  EXPECT_FALSE(f.has_field("status"));
  EXPECT_FALSE(f.at("metadata").has_field("resourceVersion"));
}

TEST(ObjectsTest, WrongKindAndWrongTypesAreNamed) {
  auto pod = MultiClusterLease::FromJson(Json::parse(
      R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"n"}})"));
  EXPECT_THAT(std::string(pod.status().message()),
              HasSubstr("MultiClusterLease n/p: expected kind "
                        "MultiClusterLease, got kind \"Pod\""));
  auto status = Lease::FromJson(Json::parse(
      R"({"kind":"Status","apiVersion":"v1","reason":"NotFound","message":"gone"})"));
  EXPECT_THAT(std::string(status.status().message()),
              HasSubstr("(reason NotFound: gone)"));
  auto version = Lease::FromJson(Json::parse(
      R"({"kind":"Lease","apiVersion":"coordination.k8s.io/v2","metadata":{"name":"x"}})"));
  EXPECT_THAT(std::string(version.status().message()),
              HasSubstr("expected apiVersion coordination.k8s.io/v1"));
  auto bad = MultiClusterLease::FromJson(Json::parse(
      R"({"metadata":{"name":"x","finalizers":[1]},"status":{"conditions":[{"type":5}]}})"));
  EXPECT_THAT(
      std::string(bad.status().message()),
      HasSubstr(
          "metadata.finalizers: expected array of strings, found integer"));
  auto not_object = MultiClusterLease::FromJson(Json::parse("[1,2]"));
  EXPECT_THAT(std::string(not_object.status().message()),
              HasSubstr("got JSON array"));
}

TEST(ObjectsTest, LeaseRoundTrip) {
  auto l = Lease::FromJson(Json::parse(
      R"({"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{"name":"hb","namespace":"n","annotations":{"mcl.dev/session":"ab"}},"spec":{"holderIdentity":"c0","leaseDurationSeconds":6,"renewTime":"2026-01-01T00:00:00.000000Z","leaseTransitions":2}})"));
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->metadata.annotations.at("mcl.dev/session"), "ab");
  EXPECT_EQ(l->spec.lease_transitions, 2);
  l->spec.renew_time = "2026-01-01T00:00:02.000000Z";
  auto back = Lease::FromJson(l->ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->spec.renew_time, "2026-01-01T00:00:02.000000Z");
  EXPECT_EQ(back->spec.holder_identity, "c0");
}

// Kubernetes' int32 fields: a larger number is refused with its path, never
// truncated (2^32 + 15 used to decode as a 15 s lease).
TEST(ObjectsTest, Int32FieldsOutOfRangeAreRefused) {
  auto m = MultiClusterLease::FromJson(Json::parse(
      R"({"kind":"MultiClusterLease","metadata":{"name":"a"},"spec":{"leaseDurationSeconds":4294967311}})"));
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()),
              HasSubstr("spec.leaseDurationSeconds: expected a 32-bit "
                        "integer, got 4294967311"));
  auto l = Lease::FromJson(Json::parse(
      R"({"kind":"Lease","metadata":{"name":"hb"},"spec":{"leaseTransitions":-2147483649}})"));
  ASSERT_FALSE(l.ok());
  EXPECT_THAT(std::string(l.status().message()),
              HasSubstr("spec.leaseTransitions: expected a 32-bit integer"));
  auto ok = Lease::FromJson(Json::parse(
      R"({"kind":"Lease","metadata":{"name":"hb"},"spec":{"leaseDurationSeconds":2147483647}})"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->spec.lease_duration_seconds, 2147483647);
}

TEST(ObjectsTest, PathsTimesAndVersions) {
  EXPECT_EQ(MultiClusterLeaseResource().Path("ns", "a b"),
            "/apis/mcl.dev/v1alpha1/namespaces/ns/multiclusterleases/a%20b");
  EXPECT_EQ(MultiClusterLeaseResource().Path("", ""),
            "/apis/mcl.dev/v1alpha1/multiclusterleases");
  EXPECT_EQ(LeaseResource().Path("ns", "x", "status"),
            "/apis/coordination.k8s.io/v1/namespaces/ns/leases/x/status");
  EXPECT_EQ(EventResource().Path("ns"), "/api/v1/namespaces/ns/events");
  absl::Time t = absl::FromUnixMicros(1790000000123456);
  EXPECT_EQ(FormatMicroTime(t), "2026-09-21T14:13:20.123456Z");
  EXPECT_EQ(FormatKubeTime(t), "2026-09-21T14:13:20Z");
  EXPECT_EQ(*ParseKubeTime("2026-09-21T14:13:20.123456Z"), t);
  EXPECT_FALSE(ParseKubeTime("yesterday").ok());
  EXPECT_EQ(*ParseResourceVersion("12345"), 12345);
  EXPECT_FALSE(ParseResourceVersion("").ok());
  EXPECT_FALSE(ParseResourceVersion("abc").ok());
  EXPECT_EQ(*ParseResourceVersion("0"), 0);
  // Found by objects_fuzzer: etcd revisions are plain decimal digits; these
  // are not versions an apiserver writes, and must not compare equal to 12.
  for (const char* odd : {"12 ", " 12", "+12", "012", "-0", "1e3", "0x1"}) {
    EXPECT_FALSE(ParseResourceVersion(odd).ok()) << odd;
  }
  EXPECT_FALSE(ParseResourceVersion("9223372036854775808").ok());  // > int64
}

TEST(WatchStreamTest, FramesObjectsAcrossArbitraryPieces) {
  std::string stream =
      R"({"type":"ADDED","object":{"metadata":{"name":"a}{\"x","resourceVersion":"1"}}})"
      "\n"
      R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"2"}}})"
      R"( {"type":"DELETED","object":{"metadata":{"name":"[b]","resourceVersion":"3"}}})"
      "\r\n";
  for (size_t piece : {1u, 2u, 7u, 64u, 1000u}) {
    WatchFramer f;
    std::vector<std::string> out;
    for (size_t i = 0; i < stream.size(); i += piece) {
      ASSERT_TRUE(
          f.Feed(absl::string_view(stream).substr(i, piece), &out).ok());
    }
    ASSERT_EQ(out.size(), 3u) << piece;
    EXPECT_EQ(f.pending(), 0u);
    auto a = DecodeWatchEvent(out[0]);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->type, WatchEvent::Type::kAdded);
    EXPECT_EQ(ObjectKeyOf(a->object), "a}{\"x");
    EXPECT_EQ(DecodeWatchEvent(out[1])->type, WatchEvent::Type::kBookmark);
    EXPECT_EQ(ResourceVersionOf(DecodeWatchEvent(out[2])->object), "3");
  }
}

TEST(WatchStreamTest, BadStreamsAreErrors) {
  WatchFramer f;
  std::vector<std::string> out;
  EXPECT_THAT(std::string(f.Feed("<html>", &out).message()),
              HasSubstr("expected a JSON object, got '<'"));
  EXPECT_FALSE(f.Feed("{}", &out).ok()) << "sticky";
  WatchFramer small(16);
  EXPECT_EQ(small.Feed(R"({"type":"ADDED","object":{}})", &out).code(),
            absl::StatusCode::kResourceExhausted);
  // The limit is exact: an event of `max` bytes passes, one of max + 1 does
  // not, however it ends (found by watch_stream_fuzzer: max + 1 passed when
  // its last byte closed the object).
  const std::string ten = R"({"a":"12"})";
  ASSERT_EQ(ten.size(), 10u);
  WatchFramer exact(10);
  out.clear();
  EXPECT_TRUE(exact.Feed(ten, &out).ok());
  EXPECT_EQ(out.size(), 1u);
  WatchFramer one_less(9);
  out.clear();
  EXPECT_EQ(one_less.Feed(ten, &out).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(out.empty());
  WatchFramer partial;
  ASSERT_TRUE(partial.Feed(R"({"type":"ADD)", &out).ok());
  EXPECT_EQ(partial.pending(), 12u);
  EXPECT_THAT(
      std::string(DecodeWatchEvent(R"({"object":{}})").status().message()),
      HasSubstr("no \"type\""));
  EXPECT_THAT(
      std::string(DecodeWatchEvent(R"({"type":"ADDED"})").status().message()),
      HasSubstr("has no \"object\""));
  EXPECT_THAT(
      std::string(
          DecodeWatchEvent(R"({"type":"X","object":{}})").status().message()),
      HasSubstr("unknown watch event type \"X\""));
  EXPECT_THAT(
      std::string(
          DecodeWatchEvent(R"({"type":1,"object":{}})").status().message()),
      HasSubstr("type: expected string, got integer"));
  EXPECT_THAT(std::string(DecodeWatchEvent("{nope}").status().message()),
              HasSubstr("malformed JSON"));
}

// Found by objects_fuzzer: with a field twice in one object, cpprestsdk's
// lookups could miss another field of that object, so ToJson(FromJson(x))
// was not a fixed point. An apiserver never sends that; it is refused.
TEST(CodecTest, AFieldTwiceInOneObjectIsRefusedWithItsName) {
  auto j = ParseJson(
      R"({"metadata":{"name":"a","generation":0,"resourceVersion":"1",)"
      R"("resourceVersion":"2"}})",
      "GET x");
  ASSERT_FALSE(j.ok());
  EXPECT_THAT(std::string(j.status().message()),
              HasSubstr("GET x: malformed JSON (the field \"resourceVersion\" "
                        "appears twice in one object)"));
  EXPECT_FALSE(ParseJson(R"([{"a":1},{"b":[{"c":1,"c":2}]}])", "x").ok());
  EXPECT_TRUE(ParseJson(R"([{"a":1},{"a":[{"c":1,"d":2}]}])", "x").ok());
}

}  // namespace
}  // namespace mcl::kube
