// Reading what testing/test_cmd.cc wrote: one line per happening, a kind
// ("start", "term") and key=value pairs (times are CLOCK_MONOTONIC ns).
#ifndef MCL_CLIENT_STUBS_CPP_TESTING_PROBE_H_
#define MCL_CLIENT_STUBS_CPP_TESTING_PROBE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mcl::client::testing {

struct ProbeLine {
  std::string kind;
  std::map<std::string, std::string> kv;
  // The value of `key` as an integer, or -1.
  int64_t Int(const std::string& key) const;
};

// The lines of `file` of `kind` ("" for all), in order; none if it is absent.
std::vector<ProbeLine> ReadProbe(const std::string& file,
                                 const std::string& kind = "");

}  // namespace mcl::client::testing

#endif  // MCL_CLIENT_STUBS_CPP_TESTING_PROBE_H_
