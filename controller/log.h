// One structured line per event on stderr: `ts=... level=info msg="..."
// key=value ...`. Lock lines carry lock=namespace/name. Thread-safe (one write
// per line).
#ifndef MCL_CONTROLLER_LOG_H_
#define MCL_CONTROLLER_LOG_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace mcl::controller {

using LogFields = std::vector<std::pair<std::string, std::string>>;

void Log(absl::string_view level, absl::string_view msg,
         const LogFields& fields = {});
inline void Info(absl::string_view msg, const LogFields& f = {}) {
  Log("info", msg, f);
}
inline void Warn(absl::string_view msg, const LogFields& f = {}) {
  Log("warn", msg, f);
}
inline void Error(absl::string_view msg, const LogFields& f = {}) {
  Log("error", msg, f);
}

}  // namespace mcl::controller

#endif  // MCL_CONTROLLER_LOG_H_
