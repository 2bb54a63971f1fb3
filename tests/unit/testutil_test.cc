// The helpers every integration and fault test stands on.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "tests/testutil/process.h"

namespace stockpile::testing {
namespace {

// A test asks for several ports (a level's gRPC and metrics ports, a cluster's dozen) before
// anything binds them; a port handed out twice made one of two servers fail to start.
TEST(FreePortTest, NeverHandsOutTheSamePortTwice) {
  std::set<int> seen;
  for (int i = 0; i < 3000; ++i) {
    const int port = FreePort();
    ASSERT_GT(port, 0) << "after " << i << " ports";
    ASSERT_TRUE(seen.insert(port).second) << "port " << port << " handed out twice, call " << i;
  }
}

TEST(FreePortTest, NeverHandsOutAPortOfTheClusterLayout) {
  std::vector<int> layout;
  for (int port = 7500; port < 7540; ++port) layout.push_back(port);
  const int offset = ClusterPortOffset(layout);
  ASSERT_GT(offset, 0);
  std::set<int> cluster;
  for (int port : layout) cluster.insert(port + offset);
  for (int i = 0; i < 3000; ++i) {
    const int port = FreePort();
    ASSERT_GT(port, 0);
    ASSERT_FALSE(cluster.contains(port)) << "port " << port << " is the cluster's";
  }
}

}  // namespace
}  // namespace stockpile::testing
