// faultproxy: FaultProxy as a process, for scripts and tests in other
// languages. Commands, one per line on stdin; one answer line each on stdout
// ("ok ..." or "error: ..."):
//
//   link NAME UPSTREAM_PORT [LISTEN_PORT]   -> ok PORT   (listens on 127.0.0.1)
//   set NAME pass|reset|hold [LATENCY_MS]   -> ok
//   stats NAME                              -> ok connections=N open=N bytes=N
//   resets=N
//
// It exits at end of input, so it never outlives the process that feeds it.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "testbed/faultproxy/faultproxy.h"

namespace {

using mcl::faultproxy::FaultProxy;

std::string Handle(FaultProxy& proxy, const std::vector<std::string>& w) {
  int a = 0;
  int b = 0;
  if (w.size() >= 3 && w[0] == "link" && absl::SimpleAtoi(w[2], &a) &&
      (w.size() == 3 || (w.size() == 4 && absl::SimpleAtoi(w[3], &b)))) {
    auto port = proxy.AddLink(w[1], a, b);
    if (!port.ok()) return "error: " + port.status().ToString();
    return "ok " + std::to_string(*port);
  }
  if ((w.size() == 3 || w.size() == 4) && w[0] == "set") {
    auto mode = mcl::faultproxy::ParseMode(w[2]);
    if (!mode.ok()) return "error: " + mode.status().ToString();
    FaultProxy::Fault f;
    f.mode = *mode;
    if (w.size() == 4) {
      if (!absl::SimpleAtoi(w[3], &a) || a < 0) {
        return "error: LATENCY_MS must be a number of milliseconds >= 0";
      }
      f.latency = absl::Milliseconds(a);
    }
    absl::Status s = proxy.Set(w[1], f);
    return s.ok() ? "ok" : "error: " + s.ToString();
  }
  if (w.size() == 2 && w[0] == "stats") {
    auto st = proxy.Stats(w[1]);
    if (!st.ok()) return "error: " + st.status().ToString();
    return "ok connections=" + std::to_string(st->connections) +
           " open=" + std::to_string(st->open) +
           " bytes=" + std::to_string(st->bytes) +
           " resets=" + std::to_string(st->resets);
  }
  return "error: expected 'link NAME UPSTREAM_PORT [LISTEN_PORT]', "
         "'set NAME pass|reset|hold [LATENCY_MS]' or 'stats NAME'";
}

}  // namespace

int main() {
  auto proxy = FaultProxy::Start();
  if (!proxy.ok()) {
    fprintf(stderr, "faultproxy: %s\n", proxy.status().ToString().c_str());
    return 1;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    std::vector<std::string> words =
        absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (words.empty()) continue;
    std::cout << Handle(**proxy, words) << std::endl;
  }
  return 0;
}
