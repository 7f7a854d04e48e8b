#include "sidecar/log.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace mcl::sidecar {
namespace {

void AppendJsonString(std::string* out, std::string_view s) {
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

void Write(std::string_view level, std::string_view msg,
           const LogFields& fields) {
  std::string line = FormatLogLine(level, msg, fields);
  line.push_back('\n');
  ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
  (void)unused;
}

}  // namespace

std::string FormatLogLine(std::string_view level, std::string_view msg,
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

void LogInfo(std::string_view msg, const LogFields& fields) {
  Write("info", msg, fields);
}
void LogWarn(std::string_view msg, const LogFields& fields) {
  Write("warn", msg, fields);
}
void LogError(std::string_view msg, const LogFields& fields) {
  Write("error", msg, fields);
}

}  // namespace mcl::sidecar
