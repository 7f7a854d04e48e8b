#include "testbed/cc/free_port.h"

#include <set>

#include "gtest/gtest.h"

namespace mcl::testbed {
namespace {

TEST(FreeLoopbackPort, IsBelowTheEphemeralRangeAndNeverRepeats) {
  absl::StatusOr<int> low = EphemeralPortRangeStart();
  ASSERT_TRUE(low.ok()) << low.status();
  std::set<int> seen;
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<int> port = FreeLoopbackPort();
    ASSERT_TRUE(port.ok()) << port.status();
    EXPECT_GT(*port, 0);
    if (*low > 11000) {
      // A port from binding 0 would be in [low, high]: exactly what a client
      // connection could take as its local port meanwhile.
      EXPECT_GE(*port, 10000);
      EXPECT_LT(*port, *low);
    }
    EXPECT_TRUE(seen.insert(*port).second) << "port " << *port << " twice";
  }
}

}  // namespace
}  // namespace mcl::testbed
