#include "common/log.h"

#include <errno.h>
#include <unistd.h>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace mcl {
namespace {

// JSON string escaping. Bytes >= 0x80 pass through: messages are UTF-8 (Go's
// apiserver and etcd errors, our own text).
void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

void Write(absl::string_view level, absl::string_view msg,
           const LogFields& fields) {
  std::string line = FormatLogLine(level, msg, fields);
  line.push_back('\n');
  // A line longer than PIPE_BUF may be split by the kernel; the mutex keeps
  // two such lines from interleaving.
  static absl::Mutex mu(absl::kConstInit);
  absl::MutexLock lock(&mu);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stderr closed: nowhere left to report it
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

std::string FormatLogLine(absl::string_view level, absl::string_view msg,
                          const LogFields& fields) {
  std::string out = "{\"ts\":";
  AppendJsonString(&out, absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(),
                                          absl::UTCTimeZone()));
  out.append(",\"level\":");
  AppendJsonString(&out, level);
  out.append(",\"msg\":");
  AppendJsonString(&out, msg);
  for (const auto& [k, v] : fields) {
    out.push_back(',');
    AppendJsonString(&out, k);
    out.push_back(':');
    AppendJsonString(&out, v);
  }
  out.push_back('}');
  return out;
}

void LogInfo(absl::string_view msg, const LogFields& fields) {
  Write("info", msg, fields);
}
void LogWarn(absl::string_view msg, const LogFields& fields) {
  Write("warn", msg, fields);
}
void LogError(absl::string_view msg, const LogFields& fields) {
  Write("error", msg, fields);
}

}  // namespace mcl
