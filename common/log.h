// Structured logs for every mcl program: one JSON object per line on stderr,
// {"ts":"2026-11-23T10:00:00.123456Z","level":"info","msg":"...",key:value...},
// so a log pipeline can index them without a per-component parser. Lines about
// a lock carry "lock":"namespace/name".
//
// Thread-safe: a line is written whole, never interleaved with another.
#ifndef MCL_COMMON_LOG_H_
#define MCL_COMMON_LOG_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace mcl {

// Extra key/value pairs of a line, in order. Values are strings; callers
// format numbers and durations so the text says its unit.
using LogFields = std::vector<std::pair<std::string, std::string>>;

void LogInfo(absl::string_view msg, const LogFields& fields = {});
void LogWarn(absl::string_view msg, const LogFields& fields = {});
void LogError(absl::string_view msg, const LogFields& fields = {});

// The line (without the newline) that a log call writes; exposed for tests.
std::string FormatLogLine(absl::string_view level, absl::string_view msg,
                          const LogFields& fields);

}  // namespace mcl

#endif  // MCL_COMMON_LOG_H_
