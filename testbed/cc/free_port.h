// FreeLoopbackPort: a port on 127.0.0.1 for a server a test is about to start,
// chosen as testbed/testbed.sh chooses its ports (one way for both).
//
// Binding port 0 returns a port from the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), the range client connections take their local
// ports from; between choosing it and the server binding it, a connection
// opened meanwhile (by a component started earlier) can take it, and the
// server then fails to bind. So the port is picked at random below that range
// and checked by binding it, and a port is never handed out twice in one
// process.
#ifndef MCL_TESTBED_CC_FREE_PORT_H_
#define MCL_TESTBED_CC_FREE_PORT_H_

#include "absl/status/statusor.h"

namespace mcl::testbed {

// A free port on 127.0.0.1, below the ephemeral range when there is room for
// one (the range starts above 11000); otherwise one the kernel chooses.
// UNAVAILABLE when none is found after 100 tries. Thread-safe.
absl::StatusOr<int> FreeLoopbackPort();

// The first port of the kernel's ephemeral range, or an error.
absl::StatusOr<int> EphemeralPortRangeStart();

}  // namespace mcl::testbed

#endif  // MCL_TESTBED_CC_FREE_PORT_H_
