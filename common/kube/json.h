// JSON helpers over cpprestsdk's web::json::value that never throw: typed field
// reads that record the first type mismatch with its path
// ("spec.leaseDurationSeconds: expected integer, got string"), and parsing that
// returns absl::StatusOr. Pure functions; thread-safe.
#ifndef MCL_COMMON_KUBE_JSON_H_
#define MCL_COMMON_KUBE_JSON_H_

#include <cpprest/json.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mcl::kube {

using Json = web::json::value;

// Parses a whole JSON document. The error names `what` (e.g. the URL it came
// from) and the parser's complaint, plus the first bytes of the input so an
// HTML error page is recognisable.
absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view what);

// A short, printable prefix of `body` for error messages (control characters
// escaped).
std::string Snippet(absl::string_view body, size_t max = 160);

// Reads typed fields of JSON objects. Absent and null fields read as
// std::nullopt; a present field of the wrong type also reads as std::nullopt
// and records an error (the first one is kept).
class JsonReader {
 public:
  explicit JsonReader(std::string what) : what_(std::move(what)) {}

  // The child object at `key`, or nullptr when absent/null (error when present
  // but not an object).
  const Json* Object(const Json& obj, absl::string_view key,
                     absl::string_view path);
  const Json* Array(const Json& obj, absl::string_view key,
                    absl::string_view path);
  std::optional<std::string> String(const Json& obj, absl::string_view key,
                                    absl::string_view path);
  std::optional<int64_t> Int(const Json& obj, absl::string_view key,
                             absl::string_view path);
  // An int32 field (Kubernetes' int32, e.g. leaseDurationSeconds): a larger
  // integer is an error, not a truncated value.
  std::optional<int32_t> Int32(const Json& obj, absl::string_view key,
                               absl::string_view path);
  std::optional<bool> Bool(const Json& obj, absl::string_view key,
                           absl::string_view path);
  std::vector<std::string> StringList(const Json& obj, absl::string_view key,
                                      absl::string_view path);
  std::map<std::string, std::string> StringMap(const Json& obj,
                                               absl::string_view key,
                                               absl::string_view path);

  // Records an error unless one is already recorded.
  void Fail(absl::string_view path, absl::string_view problem);
  bool ok() const { return error_.empty(); }
  // InvalidArgument naming `what` and the first bad field, or OK.
  absl::Status status() const;

 private:
  const Json* Present(const Json& obj, absl::string_view key);
  std::string what_;
  std::string error_;
};

// The name of a JSON value's type, for messages ("string", "object", ...).
const char* JsonTypeName(const Json& v);

// Writers that keep the "omitempty" convention of Kubernetes types: an
// empty/zero/absent value removes the field, so a round trip through a typed
// struct does not add fields that were not there.
void SetOrErase(Json& obj, absl::string_view key,
                const std::optional<std::string>& v);
void SetOrEraseNonEmpty(Json& obj, absl::string_view key, const std::string& v);
void SetOrEraseNonZero(Json& obj, absl::string_view key, int64_t v);
void Erase(Json& obj, absl::string_view key);
// obj[key] as an object (created if absent or not an object).
// Careful: the reference dies as soon as `obj` gains another field (cpprestsdk
// keeps an object's fields in a vector), so finish with it before adding the
// next field to `obj`.
Json& ChildObject(Json& obj, absl::string_view key);

}  // namespace mcl::kube

#endif  // MCL_COMMON_KUBE_JSON_H_
