// kill -9 stockpile-level while 16 clients write; after the restart every acknowledged movement
// is there, none twice, and the conservation invariant holds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/testutil/level_process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::testing {
namespace {

using namespace stockpile::v1;  // NOLINT

constexpr int kClients = 16;

std::string WarehouseOf(int client) {
  // 16 warehouses spread over Wuhan's districts.
  static const char* kDistricts[] = {"420102", "420103", "420104", "420105",
                                     "420106", "420107", "420111", "420112"};
  return absl::StrCat("warehouses/", kDistricts[client % 8], "-W", 100 + client);
}

ReceiveRequest Receipt(int client, int i) {
  ReceiveRequest r;
  r.set_request_id(absl::StrCat("c", client, "-", i));
  r.set_actor(absl::StrCat("client-", client));
  r.mutable_op()->set_warehouse(WarehouseOf(client));
  r.mutable_op()->set_item(i % 2 ? "SH-0001" : "BD-0001");
  r.mutable_op()->set_quantity(1 + i % 5);
  return r;
}

int64_t Quantity(int i) { return 1 + i % 5; }

TEST(LevelCrashTest, KillNineUnderSixteenWritersLosesNothingAcknowledged) {
  TempDir dir;
  LevelProcess level(dir, "county", "4201");
  ASSERT_TRUE(level.Start()) << level.Log();
  {
    auto stub = level.Stub();
    for (int c = 0; c < kClients; ++c) {
      CreateWarehouseRequest req;
      req.set_request_id(absl::StrCat("wh-", c));
      req.set_actor("setup");
      req.mutable_warehouse()->set_code(WarehouseOf(c).substr(11));
      req.mutable_warehouse()->set_display_name(absl::StrCat("crash store ", c));
      req.mutable_warehouse()->set_kind(WAREHOUSE_KIND_GOVERNMENT);
      req.mutable_warehouse()->set_area_m2(2000);
      Warehouse w;
      ASSERT_THAT(stub->CreateWarehouse(Deadline().get(), req, &w), IsOk());
    }
  }
  std::atomic<bool> stop{false};
  std::vector<int> sent(kClients, 0), acked(kClients, 0);
  std::vector<std::thread> writers;
  for (int c = 0; c < kClients; ++c) {
    writers.emplace_back([&, c] {
      auto stub = level.Stub();
      for (int i = 0; !stop.load() && i < 100000; ++i) {
        MovementResult out;
        sent[c] = i + 1;
        grpc::Status s = stub->Receive(Deadline(5).get(), Receipt(c, i), &out);
        if (!s.ok()) break;  // the server died under us
        acked[c] = i + 1;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  level.Kill();
  stop = true;
  for (auto& t : writers) t.join();
  int total_acked = 0;
  for (int c = 0; c < kClients; ++c) total_acked += acked[c];
  ASSERT_GT(total_acked, 100) << "the writers should have made progress before the kill";

  ASSERT_TRUE(level.Start()) << level.Log();
  auto stub = level.Stub();
  // Every acknowledged receipt is there once: a retry of each is answered from its record
  // (same movement id), and after retrying everything that was ever sent, each warehouse holds
  // exactly the sum of all sent receipts.
  for (int c = 0; c < kClients; ++c) {
    ListMovementsRequest lm;
    lm.set_warehouse(WarehouseOf(c));
    lm.set_page_size(1000);
    std::set<std::string> applied;
    do {
      ListMovementsResponse page;
      ASSERT_THAT(stub->ListMovements(Deadline().get(), lm, &page), IsOk());
      for (const auto& m : page.movements()) {
        EXPECT_TRUE(applied.insert(m.request_id()).second) << "applied twice: " << m.request_id();
      }
      lm.set_page_token(page.next_page_token());
    } while (!lm.page_token().empty());
    for (int i = 0; i < acked[c]; ++i) {
      EXPECT_TRUE(applied.count(absl::StrCat("c", c, "-", i))) << "lost c" << c << "-" << i;
    }
    EXPECT_LE(applied.size(), static_cast<size_t>(sent[c]));
    int64_t expected = 0;
    for (int i = 0; i < sent[c]; ++i) {
      MovementResult out;
      ASSERT_THAT(stub->Receive(Deadline().get(), Receipt(c, i), &out), IsOk());
      expected += Quantity(i);
    }
    int64_t on_hand = 0;
    for (const char* item : {"SH-0001", "BD-0001"}) {
      GetBalanceRequest gb;
      gb.set_warehouse(WarehouseOf(c));
      gb.set_item(item);
      Balance b;
      ASSERT_THAT(stub->GetBalance(Deadline().get(), gb, &b), IsOk());
      on_hand += b.on_hand();
    }
    EXPECT_EQ(on_hand, expected) << "client " << c;
  }
  GetLedgerTotalsResponse totals;
  ASSERT_THAT(stub->GetLedgerTotals(Deadline().get(), {}, &totals), IsOk());
  for (const auto& t : totals.items()) {
    EXPECT_EQ(t.on_hand() + t.in_transit(), t.received() - t.issued() + t.adjusted() - t.lost() +
                                                t.transferred_in() - t.delivered_out());
  }
}

// Defect (audit 28, F2): a byte flipped inside the WAL after a kill -9 made the level start on a
// shortened ledger, exit status 0 and no word of it. Start-up now stops with its own exit code
// (3), naming the database and what to do, and leaves the WAL as it was.
TEST(LevelCrashTest, CorruptionInsideTheWalStopsStartUpWithExitThree) {
  TempDir dir;
  LevelProcess level(dir, "county", "4201");
  ASSERT_TRUE(level.Start()) << level.Log();
  auto stub = level.Stub();
  CreateWarehouseRequest create;
  create.set_request_id("create");
  create.set_actor("crash-test");
  create.mutable_warehouse()->set_code("420102-W001");
  create.mutable_warehouse()->set_display_name("crash test store");
  create.mutable_warehouse()->set_kind(WAREHOUSE_KIND_GOVERNMENT);
  create.mutable_warehouse()->set_area_m2(2000);
  Warehouse w;
  ASSERT_THAT(stub->CreateWarehouse(Deadline().get(), create, &w), IsOk());
  for (int i = 0; i < 20; ++i) {
    ReceiveRequest req;
    req.set_request_id(absl::StrCat("r-", i));
    req.set_actor("crash-test");
    req.mutable_op()->set_warehouse("warehouses/420102-W001");
    req.mutable_op()->set_item("SH-0001");
    req.mutable_op()->set_quantity(1);
    MovementResult out;
    ASSERT_THAT(stub->Receive(Deadline().get(), req, &out), IsOk());
  }
  level.Kill();

  const std::string db = dir.Sub("county-4201/db");
  std::string wal;
  for (const auto& f : std::filesystem::directory_iterator(db)) {
    if (f.path().extension() == ".log") wal = f.path().string();
  }
  ASSERT_FALSE(wal.empty());
  const auto size = std::filesystem::file_size(wal);
  {  // inside the first record's contents (the warehouse's creation), acknowledged long ago
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(100);
    const char c = static_cast<char>(f.get());
    f.seekp(100);
    f.put(static_cast<char>(c ^ 0x5a));
  }
  Subprocess start({BinaryDir() + "/bin/stockpile-level", "--level=county", "--regions=4201",
                    "--db=" + db, "--reference-data=" + ReferenceDataDir(), "--listen=127.0.0.1:0",
                    "--metrics-listen=127.0.0.1:0"},
                   dir.Sub("restart.log"));
  ASSERT_TRUE(start.Start());
  const int status = start.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(WIFEXITED(status)) << start.Log();
  EXPECT_EQ(WEXITSTATUS(status), 3) << start.Log();
  EXPECT_THAT(start.Log(), ::testing::HasSubstr("the database at " + db));
  EXPECT_THAT(start.Log(), ::testing::HasSubstr("from its latest backup (--restore-from"));
  EXPECT_EQ(std::filesystem::file_size(wal), size);
}

}  // namespace
}  // namespace stockpile::testing
