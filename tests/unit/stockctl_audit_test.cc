// stockctl audit: entries from movements, admin records and transfer steps, time-ordered, with
// the actor of each (or "(not recorded)" where the service keeps none), as a table and JSON.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tools/stockctl/output/audit_render.h"

namespace stockpile::stockctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

google::protobuf::Timestamp At(int64_t seconds) {
  google::protobuf::Timestamp t;
  t.set_seconds(seconds);
  return t;
}

class WarehouseAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    warehouse_.set_name("warehouses/420102-W001");
    warehouse_.set_display_name("江岸区储备库");
    *warehouse_.mutable_create_time() = At(1000);
    *warehouse_.mutable_update_time() = At(1000);
    auto* quota = quotas_.Add();
    quota->set_item("SH-0001");
    quota->set_min(50);
    quota->set_updated_by("chen.admin");
    *quota->mutable_update_time() = At(1500);
    auto* receive = movements_.Add();
    receive->set_type(v1::MOVEMENT_TYPE_RECEIVE);
    receive->set_item("SH-0001");
    receive->set_lot("L1");
    receive->set_quantity(40);
    receive->set_actor("wang.li");
    receive->set_request_id("r-1");
    *receive->mutable_create_time() = At(2000);
    auto* issue = movements_.Add();
    issue->set_type(v1::MOVEMENT_TYPE_ISSUE);
    issue->set_item("SH-0001");
    issue->set_quantity(-5);
    issue->set_actor("zhao.min");
    *issue->mutable_create_time() = At(1200);  // listed out of order on purpose
  }
  v1::Warehouse warehouse_;
  google::protobuf::RepeatedPtrField<v1::Quota> quotas_;
  google::protobuf::RepeatedPtrField<v1::Reserve> reserves_;
  google::protobuf::RepeatedPtrField<v1::Movement> movements_;
};

TEST_F(WarehouseAuditTest, EntriesAreTimeOrderedWithTheirActors) {
  auto entries = WarehouseAudit(warehouse_, quotas_, reserves_, movements_);
  ASSERT_EQ(entries.size(), 4u);  // created (no separate update: same time), issue, quota, receive
  EXPECT_EQ(entries[0].what, "warehouse created");
  EXPECT_EQ(entries[0].actor, kActorNotRecorded);
  EXPECT_EQ(entries[1].what, "issue");
  EXPECT_EQ(entries[1].actor, "zhao.min");
  EXPECT_EQ(entries[1].quantity, "-5");
  EXPECT_EQ(entries[2].what, "quota set (last)");
  EXPECT_EQ(entries[2].actor, "chen.admin");
  EXPECT_EQ(entries[2].detail, "min 50 max 0");
  EXPECT_EQ(entries[3].what, "receive");
  EXPECT_EQ(entries[3].actor, "wang.li");
  EXPECT_EQ(entries[3].quantity, "+40");
  EXPECT_THAT(entries[3].detail, HasSubstr("lot L1"));
  EXPECT_THAT(entries[3].detail, HasSubstr("request r-1"));
}

TEST_F(WarehouseAuditTest, LaterUpdateIsListedWithWhoMadeIt) {
  warehouse_.set_created_by("chen.admin");
  warehouse_.set_updated_by("liu.admin");
  *warehouse_.mutable_update_time() = At(3000);
  auto entries = WarehouseAudit(warehouse_, quotas_, reserves_, movements_);
  ASSERT_EQ(entries.size(), 5u);
  EXPECT_EQ(entries.front().actor, "chen.admin");
  EXPECT_EQ(entries.back().what, "warehouse updated (last)");
  EXPECT_EQ(entries.back().actor, "liu.admin");
}

// --since/--until bound every entry, admin changes too (they were always listed).
TEST_F(WarehouseAuditTest, ATimeRangeBoundsAdminEntriesToo) {
  const auto since = At(1300), until = At(2000);
  auto entries =
      WithinTimes(WarehouseAudit(warehouse_, quotas_, reserves_, movements_), &since, &until);
  ASSERT_EQ(entries.size(), 1u);  // the quota at 1500; created (1000), issue (1200) before,
  EXPECT_EQ(entries[0].what, "quota set (last)");  // the receive at 2000 not before `until`
  EXPECT_EQ(
      WithinTimes(WarehouseAudit(warehouse_, quotas_, reserves_, movements_), nullptr, nullptr)
          .size(),
      4u);
}

TEST_F(WarehouseAuditTest, TableAndJson) {
  auto entries = WarehouseAudit(warehouse_, quotas_, reserves_, movements_);
  const std::string table = RenderAudit(entries);
  EXPECT_THAT(table, HasSubstr("TIME"));
  EXPECT_THAT(table, HasSubstr("ACTOR"));
  EXPECT_THAT(table, HasSubstr("wang.li"));
  EXPECT_THAT(table, HasSubstr("1970-01-01T00:33:20Z"));  // 2000 s
  auto json = nlohmann::json::parse(AuditJson(entries));
  ASSERT_TRUE(json.is_array());
  ASSERT_EQ(json.size(), 4u);
  EXPECT_EQ(json[3]["actor"], "wang.li");
  EXPECT_EQ(json[3]["what"], "receive");
  EXPECT_EQ(json[3]["quantity"], "+40");
  EXPECT_FALSE(json[0].contains("item"));  // empty fields left out
}

TEST(TransferAuditTest, EveryStepWithActorAndTimeWithoutStockColumns) {
  v1::Transfer t;
  auto* approved = t.add_audit();
  approved->set_actor("li.dispatch");
  approved->set_what("approved");
  *approved->mutable_time() = At(200);
  auto* created = t.add_audit();
  created->set_actor("li.dispatch");
  created->set_what("created with 1 legs");
  *created->mutable_time() = At(100);
  auto* held = t.add_audit();
  held->set_what("leg 0: held");
  *held->mutable_time() = At(300);
  auto entries = TransferAudit(t);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].what, "created with 1 legs");
  EXPECT_EQ(entries[1].what, "approved");
  EXPECT_EQ(entries[2].actor, kActorNotRecorded);
  const std::string table = RenderAudit(entries);
  EXPECT_THAT(table, Not(HasSubstr("QTY")));
  EXPECT_THAT(table, HasSubstr("li.dispatch"));
  auto json = nlohmann::json::parse(AuditJson(entries));
  EXPECT_EQ(json[1]["what"], "approved");
  EXPECT_EQ(json[1]["time"], "1970-01-01T00:03:20Z");
}

}  // namespace
}  // namespace stockpile::stockctl
