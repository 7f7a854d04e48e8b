#include "client-stubs/cpp/testing/probe.h"

#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace mcl::client::testing {

int64_t ProbeLine::Int(const std::string& key) const {
  int64_t v = -1;
  auto it = kv.find(key);
  if (it != kv.end()) (void)absl::SimpleAtoi(it->second, &v);
  return v;
}

std::vector<ProbeLine> ReadProbe(const std::string& file,
                                 const std::string& kind) {
  std::vector<ProbeLine> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    if (!kind.empty() && parts[0] != kind) continue;
    ProbeLine p;
    p.kind = parts[0];
    for (size_t i = 1; i < parts.size(); ++i) {
      std::pair<std::string, std::string> kv =
          absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
      p.kv[kv.first] = kv.second;
    }
    out.push_back(p);
  }
  return out;
}

}  // namespace mcl::client::testing
