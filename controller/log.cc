#include "controller/log.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace mcl::controller {
namespace {

// Quotes a value when it has spaces, quotes or is empty (logfmt).
std::string Quote(absl::string_view v) {
  bool plain = !v.empty();
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c < 0x20) plain = false;
  }
  if (plain) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace

void Log(absl::string_view level, absl::string_view msg,
         const LogFields& fields) {
  static absl::Mutex mu(absl::kConstInit);
  std::string line =
      absl::StrCat("ts=",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   " level=", level, " msg=", Quote(msg));
  for (const auto& [k, v] : fields)
    absl::StrAppend(&line, " ", k, "=", Quote(v));
  line.push_back('\n');
  absl::MutexLock l(&mu);
  fwrite(line.data(), 1, line.size(), stderr);
  fflush(stderr);
}

}  // namespace mcl::controller
