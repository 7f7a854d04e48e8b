#include "testbed/cc/free_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace mcl::testbed {
namespace {

constexpr int kLowestPort = 10000;
constexpr int kMinRoom = 1000;

// Binds 127.0.0.1:`port` (0: the kernel chooses) and returns the bound port,
// or 0 when it is taken.
int BindCheck(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int bound = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    bound = ntohs(addr.sin_port);
  }
  close(fd);
  return bound;
}

}  // namespace

absl::StatusOr<int> EphemeralPortRangeStart() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  if (!(in >> low) || low <= 0) {
    return absl::UnavailableError(
        "cannot read /proc/sys/net/ipv4/ip_local_port_range");
  }
  return low;
}

absl::StatusOr<int> FreeLoopbackPort() {
  static absl::Mutex mu(absl::kConstInit);
  static std::set<int>* given ABSL_GUARDED_BY(mu) = new std::set<int>();
  static absl::BitGen* gen ABSL_GUARDED_BY(mu) = new absl::BitGen();
  absl::StatusOr<int> low = EphemeralPortRangeStart();
  bool below = low.ok() && *low > kLowestPort + kMinRoom;
  absl::MutexLock lock(&mu);
  for (int attempt = 0; attempt < 100; ++attempt) {
    int port =
        below ? absl::Uniform(*gen, kLowestPort, *low) : 0;  // [10000, low)
    int bound = BindCheck(port);
    if (bound != 0 && given->insert(bound).second) return bound;
  }
  return absl::UnavailableError(
      "no free port on 127.0.0.1 after 100 tries; is the machine out of "
      "ports?");
}

}  // namespace mcl::testbed
