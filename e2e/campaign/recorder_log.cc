#include "e2e/campaign/recorder_log.h"

#include <cctype>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mcl::campaign {
namespace {

void SkipSpace(absl::string_view& s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s[0]))) {
    s.remove_prefix(1);
  }
}

std::optional<std::string> ParseString(absl::string_view& s) {
  if (s.empty() || s[0] != '"') return std::nullopt;
  s.remove_prefix(1);
  std::string out;
  while (!s.empty()) {
    char c = s[0];
    s.remove_prefix(1);
    if (c == '"') return out;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (s.empty()) return std::nullopt;
    char e = s[0];
    s.remove_prefix(1);
    if (e == 'u') {
      int code = 0;
      if (s.size() < 4 || !absl::SimpleHexAtoi(s.substr(0, 4), &code)) {
        return std::nullopt;
      }
      s.remove_prefix(4);
      out += code < 0x80 ? static_cast<char>(code) : '?';
    } else if (e == 'n') {
      out += '\n';
    } else if (e == 't') {
      out += '\t';
    } else {
      out += e;  // \" \\ \/
    }
  }
  return std::nullopt;
}

int64_t Int(const std::map<std::string, std::string>& m, const char* key) {
  auto it = m.find(key);
  int64_t v = 0;
  if (it != m.end()) (void)absl::SimpleAtoi(it->second, &v);
  return v;
}

std::string Str(const std::map<std::string, std::string>& m, const char* key) {
  auto it = m.find(key);
  return it == m.end() ? "" : it->second;
}

}  // namespace

std::optional<std::map<std::string, std::string>> ParseFlatJson(
    absl::string_view s) {
  std::map<std::string, std::string> out;
  SkipSpace(s);
  if (s.empty() || s[0] != '{') return std::nullopt;
  s.remove_prefix(1);
  SkipSpace(s);
  if (!s.empty() && s[0] == '}') return out;
  while (true) {
    SkipSpace(s);
    auto key = ParseString(s);
    if (!key.has_value()) return std::nullopt;
    SkipSpace(s);
    if (s.empty() || s[0] != ':') return std::nullopt;
    s.remove_prefix(1);
    SkipSpace(s);
    if (!s.empty() && s[0] == '"') {
      auto v = ParseString(s);
      if (!v.has_value()) return std::nullopt;
      out[*key] = *v;
    } else {
      size_t n = 0;
      while (n < s.size() &&
             (s[n] == '-' || std::isdigit(static_cast<unsigned char>(s[n])))) {
        ++n;
      }
      if (n == 0) return std::nullopt;
      out[*key] = std::string(s.substr(0, n));
      s.remove_prefix(n);
    }
    SkipSpace(s);
    if (s.empty()) return std::nullopt;
    if (s[0] == '}') return out;
    if (s[0] != ',') return std::nullopt;
    s.remove_prefix(1);
  }
}

void ParseRecorderLog(absl::string_view text, RecorderLog* out) {
  std::map<std::string, std::string> identity;  // app -> its identity
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    ++out->lines;
    auto m = ParseFlatJson(line);
    if (!m.has_value() || Str(*m, "app").empty() || Str(*m, "ev").empty()) {
      ++out->malformed;
      continue;
    }
    const std::string app = Str(*m, "app");
    const std::string ev = Str(*m, "ev");
    const absl::Duration at = absl::Nanoseconds(Int(*m, "t"));
    if (ev == "start") {
      identity[app] = Str(*m, "identity");
      continue;
    }
    if (ev == "observe") {
      e2e::Observation o{Str(*m, "identity"), Int(*m, "token")};
      auto& seq = out->observations[Str(*m, "observer")];
      if (seq.empty() || seq.back().identity != o.identity ||
          seq.back().token != o.token) {
        seq.push_back(o);
      }
      continue;
    }
    e2e::AppEvent e;
    e.app = app;
    e.identity = identity.count(app) != 0 ? identity[app] : app;
    e.at = at;
    if (ev == "leader" || ev == "renewal") {
      e.kind = e2e::AppEvent::Kind::kLeader;
      e.token = Int(*m, "token");
      const int64_t bound = Int(*m, "valid_until");
      if (bound > 0) e.valid_until = absl::Nanoseconds(bound);
      if (!Str(*m, "identity").empty()) e.identity = Str(*m, "identity");
    } else if (ev == "death") {
      e.kind = e2e::AppEvent::Kind::kDeath;
    } else if (ev == "lost" || ev == "end" || ev == "clock_error" ||
               ev == "deadline") {
      e.kind = e2e::AppEvent::Kind::kEnd;
    } else {
      continue;  // follower, no_leader: not leading, nothing to close
    }
    out->events.push_back(e);
  }
}

std::string DeathLine(const std::string& app, int64_t at_ns) {
  return absl::StrCat("{\"t\":", at_ns, ",\"app\":\"", app,
                      "\",\"ev\":\"death\"}\n");
}

}  // namespace mcl::campaign
