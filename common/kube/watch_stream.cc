#include "common/kube/watch_stream.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace mcl::kube {

const char* WatchEventTypeName(WatchEvent::Type t) {
  switch (t) {
    case WatchEvent::Type::kAdded:
      return "ADDED";
    case WatchEvent::Type::kModified:
      return "MODIFIED";
    case WatchEvent::Type::kDeleted:
      return "DELETED";
    case WatchEvent::Type::kBookmark:
      return "BOOKMARK";
    case WatchEvent::Type::kError:
      return "ERROR";
  }
  return "?";
}

absl::Status WatchFramer::Feed(absl::string_view bytes,
                               std::vector<std::string>* out) {
  if (!error_.ok()) return error_;
  for (size_t i = 0; i < bytes.size(); ++i) {
    char c = bytes[i];
    if (depth_ == 0) {
      if (absl::ascii_isspace(static_cast<unsigned char>(c))) continue;
      if (c != '{') {
        error_ = absl::InternalError(absl::StrCat(
            "watch stream: expected a JSON object, got '",
            Snippet(bytes.substr(i, 1)),
            "' (stream continues: ", Snippet(bytes.substr(i), 80), ")"));
        return error_;
      }
    }
    buf_.push_back(c);
    // Before the object can complete: its closing brace counts too (found by
    // watch_stream_fuzzer: an event of max + 1 bytes passed).
    if (buf_.size() > max_) {
      error_ = absl::ResourceExhaustedError(
          absl::StrCat("watch stream: an event exceeds ", max_, " bytes"));
      return error_;
    }
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
    } else if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      --depth_;
      if (depth_ == 0) {
        out->push_back(std::move(buf_));
        buf_.clear();
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<WatchEvent> DecodeWatchEvent(absl::string_view text) {
  auto parsed = ParseJson(text, "watch event");
  if (!parsed.ok()) return parsed.status();
  if (!parsed->is_object()) {
    return absl::InternalError(absl::StrCat(
        "watch event is a JSON ", JsonTypeName(*parsed), ", not an object"));
  }
  JsonReader r("watch event");
  auto type = r.String(*parsed, "type", "");
  const Json* object = r.Object(*parsed, "object", "");
  if (!r.ok()) return r.status();
  if (!type.has_value()) {
    return absl::InternalError(
        absl::StrCat("watch event has no \"type\": ", Snippet(text)));
  }
  if (object == nullptr) {
    return absl::InternalError(absl::StrCat(
        "watch event ", *type, " has no \"object\": ", Snippet(text)));
  }
  WatchEvent ev;
  if (*type == "ADDED") {
    ev.type = WatchEvent::Type::kAdded;
  } else if (*type == "MODIFIED") {
    ev.type = WatchEvent::Type::kModified;
  } else if (*type == "DELETED") {
    ev.type = WatchEvent::Type::kDeleted;
  } else if (*type == "BOOKMARK") {
    ev.type = WatchEvent::Type::kBookmark;
  } else if (*type == "ERROR") {
    ev.type = WatchEvent::Type::kError;
  } else {
    return absl::InternalError(
        absl::StrCat("unknown watch event type \"", *type, "\""));
  }
  ev.object = *object;
  return ev;
}

}  // namespace mcl::kube
