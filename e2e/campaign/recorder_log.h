// Reading the recorder's JSON lines (recorder.cc) back into the history's
// terms: each app's events (AppEvent) and each observer's views. The driver
// appends "death" lines to an app's log when it kills the app.
#ifndef MCL_E2E_CAMPAIGN_RECORDER_LOG_H_
#define MCL_E2E_CAMPAIGN_RECORDER_LOG_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "e2e/history.h"

namespace mcl::campaign {

// A flat JSON object of strings and integers (what the recorder writes);
// numbers keep their text. nullopt for anything else, e.g. a line cut short by
// a SIGKILL.
std::optional<std::map<std::string, std::string>> ParseFlatJson(
    absl::string_view line);

struct RecorderLog {
  std::vector<e2e::AppEvent> events;
  std::map<std::string, std::vector<e2e::Observation>> observations;
  int lines = 0;
  int malformed = 0;  // a SIGKILL can cut the last line: counted, skipped
};

// Adds the lines of one log (one app process, or several incarnations of one
// app appended to one file).
void ParseRecorderLog(absl::string_view text, RecorderLog* out);

// The JSON line the driver appends when it kills app `app` at `at_ns`.
std::string DeathLine(const std::string& app, int64_t at_ns);

}  // namespace mcl::campaign

#endif  // MCL_E2E_CAMPAIGN_RECORDER_LOG_H_
