// Decoding a Kubernetes watch stream: a sequence of JSON objects
//   {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}
// arriving in arbitrary pieces (HTTP chunks do not align with events).
// WatchFramer cuts complete top-level JSON objects out of the byte stream
// incrementally (newlines are optional; strings and escapes are respected);
// DecodeWatchEvent turns one into a WatchEvent. Pure; not synchronised.
#ifndef MCL_COMMON_KUBE_WATCH_STREAM_H_
#define MCL_COMMON_KUBE_WATCH_STREAM_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/kube/json.h"

namespace mcl::kube {

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError };
  Type type = Type::kAdded;
  // The object; for kError a metav1.Status; for kBookmark only
  // metadata.resourceVersion.
  Json object;
};
const char* WatchEventTypeName(WatchEvent::Type t);

class WatchFramer {
 public:
  explicit WatchFramer(size_t max_event_bytes = 64 << 20)
      : max_(max_event_bytes) {}
  // Appends bytes; complete objects are appended to `out`. An error (a byte
  // that cannot start an object, an over-long event) is sticky: the stream
  // cannot be resynchronised.
  absl::Status Feed(absl::string_view bytes, std::vector<std::string>* out);
  // Bytes of an incomplete object held back (non-zero at end of stream means a
  // truncated event).
  size_t pending() const { return buf_.size(); }
  absl::string_view pending_bytes() const { return buf_; }

 private:
  size_t max_;
  std::string buf_;  // the current, incomplete object
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  absl::Status error_;
};

// Parses one framed event. The message of an error names what is wrong
// ("watch event has no \"type\"", "unknown watch event type \"FOO\"",
// malformed JSON with a snippet).
absl::StatusOr<WatchEvent> DecodeWatchEvent(absl::string_view text);

}  // namespace mcl::kube

#endif  // MCL_COMMON_KUBE_WATCH_STREAM_H_
