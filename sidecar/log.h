// Structured logs: one JSON object per line on stderr ({"ts","level","msg",
// fields...}), so a log pipeline can index them. Thread-safe (one write(2) per
// line).
#ifndef MCL_SIDECAR_LOG_H_
#define MCL_SIDECAR_LOG_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mcl::sidecar {

using LogFields = std::vector<std::pair<std::string, std::string>>;

void LogInfo(std::string_view msg, const LogFields& fields = {});
void LogWarn(std::string_view msg, const LogFields& fields = {});
void LogError(std::string_view msg, const LogFields& fields = {});
// The line LogInfo would write (for tests).
std::string FormatLogLine(std::string_view level, std::string_view msg,
                          const LogFields& fields);

}  // namespace mcl::sidecar

#endif  // MCL_SIDECAR_LOG_H_
