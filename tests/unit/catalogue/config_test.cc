#include "services/catalogue/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace stockpile::catalogue {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<CatalogueConfig> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), {"stockpile-catalogue", "--db=/tmp/unused", "--insecure"});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseCatalogueConfig(static_cast<int>(argv.size()), argv.data());
}

TEST(CatalogueConfigTest, ReplanRoundsDefaultToThreeAndAreBounded) {
  auto defaults = Parse({});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->transfer_replan_rounds, 3);
  auto never = Parse({"--transfer-replan-rounds=0"});
  ASSERT_TRUE(never.ok()) << never.status();
  EXPECT_EQ(never->transfer_replan_rounds, 0);
  for (const char* bad : {"--transfer-replan-rounds=11", "--transfer-replan-rounds=-1"}) {
    auto refused = Parse({bad});
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(refused.status().message(), HasSubstr("--transfer-replan-rounds")) << bad;
  }
}

// A shell that still exports STOCKPILE_INSECURE=1 from local testing must not turn a secured
// start (TLS and token flags) into an open, unauthenticated one: the start is refused.
TEST(CatalogueConfigTest, InsecureWithTlsOrTokenFlagsIsRefused) {
  auto refused = Parse({"--tls-cert=c.pem", "--auth-key-file=k"});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("STOCKPILE_INSECURE=1 in the environment) contradicts --tls-cert, "
                        "--auth-key-file"));
  EXPECT_TRUE(Parse({}).ok());
}

}  // namespace
}  // namespace stockpile::catalogue
