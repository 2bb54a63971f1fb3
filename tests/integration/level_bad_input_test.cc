// Malformed requests each get their documented status and change nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>

#include "tests/testutil/level_process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::testing {
namespace {

using namespace stockpile::v1;  // NOLINT
using Code = grpc::StatusCode;
using Stub = LevelService::Stub;

constexpr char kW[] = "warehouses/420102-W001";

ReceiveRequest GoodReceipt() {
  ReceiveRequest r;
  r.set_request_id("bad-input-probe");
  r.set_actor("tester");
  r.mutable_op()->set_warehouse(kW);
  r.mutable_op()->set_item("SH-0001");
  r.mutable_op()->set_quantity(1);
  return r;
}

grpc::Status SendReceipt(Stub* stub, const std::function<void(ReceiveRequest&)>& spoil) {
  ReceiveRequest r = GoodReceipt();
  spoil(r);
  MovementResult out;
  return stub->Receive(Deadline().get(), r, &out);
}

CreateWarehouseRequest GoodWarehouse() {
  CreateWarehouseRequest r;
  r.set_request_id("bad-input-create");
  r.set_actor("tester");
  r.mutable_warehouse()->set_code("420103-W001");
  r.mutable_warehouse()->set_display_name("江汉区库");
  r.mutable_warehouse()->set_kind(WAREHOUSE_KIND_GOVERNMENT);
  r.mutable_warehouse()->set_area_m2(2000);
  return r;
}

grpc::Status SendWarehouse(Stub* stub, const std::function<void(CreateWarehouseRequest&)>& spoil) {
  CreateWarehouseRequest r = GoodWarehouse();
  spoil(r);
  Warehouse out;
  return stub->CreateWarehouse(Deadline().get(), r, &out);
}

struct Case {
  std::string name;
  std::function<grpc::Status(Stub*)> call;
  Code expected;
};

std::vector<Case> Cases() {
  const std::string huge(1 << 20, 'x');
  return {
      {"missing request_id",
       [](Stub* s) { return SendReceipt(s, [](auto& r) { r.clear_request_id(); }); },
       Code::INVALID_ARGUMENT},
      {"request_id with spaces",
       [](Stub* s) { return SendReceipt(s, [](auto& r) { r.set_request_id("a b"); }); },
       Code::INVALID_ARGUMENT},
      {"missing actor", [](Stub* s) { return SendReceipt(s, [](auto& r) { r.clear_actor(); }); },
       Code::INVALID_ARGUMENT},
      {"missing warehouse",
       [](Stub* s) { return SendReceipt(s, [](auto& r) { r.mutable_op()->clear_warehouse(); }); },
       Code::INVALID_ARGUMENT},
      {"warehouse without collection",
       [](Stub* s) {
         return SendReceipt(s, [](auto& r) { r.mutable_op()->set_warehouse("420102-W001"); });
       },
       Code::INVALID_ARGUMENT},
      {"bad warehouse code",
       [](Stub* s) {
         return SendReceipt(
             s, [](auto& r) { r.mutable_op()->set_warehouse("warehouses/42x102-W001"); });
       },
       Code::INVALID_ARGUMENT},
      {"warehouse of another level",
       [](Stub* s) {
         return SendReceipt(
             s, [](auto& r) { r.mutable_op()->set_warehouse("warehouses/420102001-W001"); });
       },
       Code::INVALID_ARGUMENT},
      {"region outside hosted prefixes",
       [](Stub* s) {
         return SendReceipt(
             s, [](auto& r) { r.mutable_op()->set_warehouse("warehouses/110101-W001"); });
       },
       Code::FAILED_PRECONDITION},
      {"unknown warehouse",
       [](Stub* s) {
         return SendReceipt(
             s, [](auto& r) { r.mutable_op()->set_warehouse("warehouses/420104-W009"); });
       },
       Code::NOT_FOUND},
      {"unknown item",
       [](Stub* s) { return SendReceipt(s, [](auto& r) { r.mutable_op()->set_item("SH-9999"); }); },
       Code::NOT_FOUND},
      {"zero quantity",
       [](Stub* s) { return SendReceipt(s, [](auto& r) { r.mutable_op()->set_quantity(0); }); },
       Code::INVALID_ARGUMENT},
      {"negative quantity",
       [](Stub* s) { return SendReceipt(s, [](auto& r) { r.mutable_op()->set_quantity(-5); }); },
       Code::INVALID_ARGUMENT},
      {"overflowing quantity",
       [](Stub* s) {
         return SendReceipt(s, [](auto& r) { r.mutable_op()->set_quantity(INT64_MAX); });
       },
       Code::INVALID_ARGUMENT},
      {"huge note",
       [huge](Stub* s) { return SendReceipt(s, [&](auto& r) { r.mutable_op()->set_note(huge); }); },
       Code::INVALID_ARGUMENT},
      {"invalid UTF-8 note",
       [](Stub* s) {
         return SendReceipt(s, [](auto& r) { r.mutable_op()->set_note("\xff\xfe"); });
       },
       Code::INVALID_ARGUMENT},
      {"invalid UTF-8 request_id",
       [](Stub* s) { return SendReceipt(s, [](auto& r) { r.set_request_id("\xc0\xaf"); }); },
       Code::INVALID_ARGUMENT},
      {"invalid UTF-8 warehouse name",
       [](Stub* s) {
         return SendWarehouse(s,
                              [](auto& r) { r.mutable_warehouse()->set_display_name("\xe6\xb1"); });
       },
       Code::INVALID_ARGUMENT},
      {"expiry on item without shelf life",
       [](Stub* s) {
         return SendReceipt(s, [](auto& r) { r.mutable_op()->set_expiry_date("2027-01-01"); });
       },
       Code::INVALID_ARGUMENT},
      {"missing expiry on perishable",
       [](Stub* s) {
         return SendReceipt(s, [](auto& r) {
           r.mutable_op()->set_item("FW-0001");
           r.mutable_op()->set_lot("L1");
         });
       },
       Code::INVALID_ARGUMENT},
      {"malformed expiry",
       [](Stub* s) {
         return SendReceipt(s, [](auto& r) {
           r.mutable_op()->set_item("FW-0001");
           r.mutable_op()->set_lot("L1");
           r.mutable_op()->set_expiry_date("01/02/2027");
         });
       },
       Code::INVALID_ARGUMENT},
      {"issue beyond stock",
       [](Stub* s) {
         IssueRequest r;
         r.set_request_id("bad-issue");
         r.set_actor("t");
         r.mutable_op()->set_warehouse(kW);
         r.mutable_op()->set_item("SH-0001");
         r.mutable_op()->set_quantity(1000);
         MovementResult o;
         return s->Issue(Deadline().get(), r, &o);
       },
       Code::FAILED_PRECONDITION},
      {"release unknown hold",
       [](Stub* s) {
         ReleaseRequest r;
         r.set_request_id("bad-release");
         r.set_actor("t");
         r.mutable_op()->set_hold_id("nope");
         MovementResult o;
         return s->Release(Deadline().get(), r, &o);
       },
       Code::NOT_FOUND},
      {"ship without destination",
       [](Stub* s) {
         ShipRequest r;
         r.set_request_id("bad-ship");
         r.set_actor("t");
         r.mutable_op()->set_hold_id("nope");
         MovementResult o;
         return s->Ship(Deadline().get(), r, &o);
       },
       Code::INVALID_ARGUMENT},
      {"negative hold ttl",
       [](Stub* s) {
         HoldRequest r;
         r.set_request_id("bad-hold");
         r.set_actor("t");
         r.mutable_op()->set_warehouse(kW);
         r.mutable_op()->set_item("SH-0001");
         r.mutable_op()->set_quantity(1);
         r.mutable_op()->set_hold_id("h");
         r.mutable_op()->set_ttl_seconds(-1);
         MovementResult o;
         return s->Hold(Deadline().get(), r, &o);
       },
       Code::INVALID_ARGUMENT},
      {"empty batch",
       [](Stub* s) {
         ApplyBatchRequest r;
         r.set_request_id("bad-batch");
         r.set_actor("t");
         ApplyBatchResponse o;
         return s->ApplyBatch(Deadline().get(), r, &o);
       },
       Code::INVALID_ARGUMENT},
      {"batch of 1001",
       [](Stub* s) {
         ApplyBatchRequest r;
         r.set_request_id("big-batch");
         r.set_actor("t");
         for (int i = 0; i < 1001; ++i) *r.add_operations()->mutable_receive() = GoodReceipt().op();
         ApplyBatchResponse o;
         return s->ApplyBatch(Deadline().get(), r, &o);
       },
       Code::INVALID_ARGUMENT},
      {"batch with one bad operation",
       [](Stub* s) {
         ApplyBatchRequest r;
         r.set_request_id("bad-op-batch");
         r.set_actor("t");
         *r.add_operations()->mutable_receive() = GoodReceipt().op();
         auto* bad = r.add_operations()->mutable_receive();
         *bad = GoodReceipt().op();
         bad->set_quantity(0);
         ApplyBatchResponse o;
         return s->ApplyBatch(Deadline().get(), r, &o);
       },
       Code::INVALID_ARGUMENT},
      {"warehouse without kind",
       [](Stub* s) {
         return SendWarehouse(s, [](auto& r) { r.mutable_warehouse()->clear_kind(); });
       },
       Code::INVALID_ARGUMENT},
      {"warehouse with huge name",
       [huge](Stub* s) {
         return SendWarehouse(s, [&](auto& r) { r.mutable_warehouse()->set_display_name(huge); });
       },
       Code::INVALID_ARGUMENT},
      {"warehouse with bad location",
       [](Stub* s) {
         return SendWarehouse(
             s, [](auto& r) { r.mutable_warehouse()->mutable_location()->set_latitude(123); });
       },
       Code::INVALID_ARGUMENT},
      {"duplicate warehouse",
       [](Stub* s) {
         return SendWarehouse(s, [](auto& r) {
           r.mutable_warehouse()->set_code("420102-W001");
           r.set_request_id("dup");
         });
       },
       Code::ALREADY_EXISTS},
      {"warehouse code and region disagree",
       [](Stub* s) {
         return SendWarehouse(s, [](auto& r) { r.mutable_warehouse()->set_region_code("420104"); });
       },
       Code::INVALID_ARGUMENT},
      {"list with bad region prefix",
       [](Stub* s) {
         ListBalancesRequest r;
         r.set_region_prefix("42a");
         ListBalancesResponse o;
         return s->ListBalances(Deadline().get(), r, &o);
       },
       Code::INVALID_ARGUMENT},
      {"list with negative page size",
       [](Stub* s) {
         ListWarehousesRequest r;
         r.set_page_size(-1);
         ListWarehousesResponse o;
         return s->ListWarehouses(Deadline().get(), r, &o);
       },
       Code::INVALID_ARGUMENT},
      {"get warehouse with empty code",
       [](Stub* s) {
         GetWarehouseRequest r;
         r.set_name("warehouses/");
         Warehouse o;
         return s->GetWarehouse(Deadline().get(), r, &o);
       },
       Code::INVALID_ARGUMENT},
      {"backup without request_id",
       [](Stub* s) {
         Backup o;
         return s->CreateBackup(Deadline().get(), CreateBackupRequest(), &o);
       },
       Code::INVALID_ARGUMENT},
      {"backup by an instance without --backup-dir",
       [](Stub* s) {
         CreateBackupRequest r;
         r.set_request_id("bad-input-backup");
         Backup o;
         return s->CreateBackup(Deadline().get(), r, &o);
       },
       Code::FAILED_PRECONDITION},
      {"backups listed by an instance without --backup-dir",
       [](Stub* s) {
         ListBackupsResponse o;
         return s->ListBackups(Deadline().get(), ListBackupsRequest(), &o);
       },
       Code::FAILED_PRECONDITION},
  };
}

TEST(LevelBadInputTest, EachMalformedRequestGetsItsStatusAndChangesNothing) {
  TempDir dir;
  LevelProcess level(dir, "county", "4201");
  ASSERT_TRUE(level.Start()) << level.Log();
  auto stub = level.Stub();
  CreateWarehouseRequest create = GoodWarehouse();
  create.set_request_id("setup");
  create.mutable_warehouse()->set_code("420102-W001");
  Warehouse w;
  ASSERT_THAT(stub->CreateWarehouse(Deadline().get(), create, &w), IsOk());
  MovementResult m;
  ReceiveRequest receipt = GoodReceipt();
  receipt.set_request_id("setup-receipt");
  ASSERT_THAT(stub->Receive(Deadline().get(), receipt, &m), IsOk());
  InstanceInfo before;
  ASSERT_THAT(stub->GetInstanceInfo(Deadline().get(), {}, &before), IsOk());
  GetLedgerTotalsResponse totals_before;
  ASSERT_THAT(stub->GetLedgerTotals(Deadline().get(), {}, &totals_before), IsOk());

  for (const Case& c : Cases()) {
    grpc::Status s = c.call(stub.get());
    EXPECT_EQ(s.error_code(), c.expected) << c.name << ": " << s.error_message();
    EXPECT_FALSE(s.error_message().empty()) << c.name;
    EXPECT_LT(s.error_message().size(), 400u) << c.name << ": the message should be readable";
  }
  InstanceInfo after;
  ASSERT_THAT(stub->GetInstanceInfo(Deadline().get(), {}, &after), IsOk());
  EXPECT_EQ(after.last_sequence(), before.last_sequence());
  EXPECT_EQ(after.warehouse_count(), before.warehouse_count());
  GetLedgerTotalsResponse totals_after;
  ASSERT_THAT(stub->GetLedgerTotals(Deadline().get(), {}, &totals_after), IsOk());
  EXPECT_EQ(totals_after.SerializeAsString(), totals_before.SerializeAsString());
}

}  // namespace
}  // namespace stockpile::testing
