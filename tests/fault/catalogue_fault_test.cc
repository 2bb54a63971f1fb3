// The catalogue under faults: kill -9 during writes, a source stopped with SIGSTOP, etcd down.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "tests/testutil/etcd_process.h"
#include "tests/unit/catalogue/catalogue_processes.h"

namespace stockpile::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct Store {
  std::string level_id;
  std::string code;
  std::string region;
};

const std::vector<Store> kStores = {
    {"county-a", "420102-W001", "420102"},
    {"county-a", "420103-W001", "420103"},
    {"township-a", "420102002-W001", "420102002"},
    {"village-a", "420102002003-W001", "420102002003"},
    {"village-a", "420102002004-W001", "420102002004"},
};

class CatalogueFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(etcd_.Start(seconds(20), &error)) << error;
    levels_["county-a"] =
        std::make_unique<LevelServer>(dir_, "county-a", "county", "42", etcd_.endpoint());
    levels_["township-a"] =
        std::make_unique<LevelServer>(dir_, "township-a", "township", "4201", etcd_.endpoint());
    levels_["village-a"] =
        std::make_unique<LevelServer>(dir_, "village-a", "village", "420102", etcd_.endpoint());
    for (auto& [id, level] : levels_) ASSERT_TRUE(level->Start());
    for (const auto& s : kStores) {
      ASSERT_TRUE(CreateWarehouse(*levels_[s.level_id]->Stub(), s.code, s.region).ok());
    }
    catalogue_ = std::make_unique<CatalogueServer>(dir_, etcd_.endpoint());
    ASSERT_TRUE(catalogue_->Start());
    ASSERT_TRUE(WaitFor([&] { return AllConnected(); }, seconds(20)))
        << catalogue_->process().Log();
  }

  bool AllConnected() {
    auto status = catalogue_->Status();
    for (const auto& [id, level] : levels_) {
      auto* s = FindSource(status, id);
      if (s == nullptr || !s->connected()) return false;
    }
    return true;
  }

  uint64_t Head(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(2));
    stockpile::v1::InstanceInfo info;
    if (!levels_[id]->Stub()->GetInstanceInfo(&ctx, {}, &info).ok()) return 0;
    return info.last_sequence();
  }

  bool CaughtUp() {
    auto status = catalogue_->Status();
    for (const auto& [id, level] : levels_) {
      auto* s = FindSource(status, id);
      if (s == nullptr || s->applied_sequence() != Head(id)) return false;
    }
    return true;
  }

  // `clients` threads receive into random stores of `ids` until `stop`.
  std::vector<std::thread> StartWriters(int clients, std::vector<std::string> ids,
                                        std::atomic<bool>& stop, std::atomic<int64_t>& ok) {
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([this, c, ids, &stop, &ok] {
        std::map<std::string, std::unique_ptr<stockpile::v1::LevelService::Stub>> stubs;
        for (const auto& id : ids) stubs[id] = levels_[id]->Stub();
        for (int n = 0; !stop.load(); ++n) {
          const Store& s = kStores[size_t(c + n) % kStores.size()];
          if (!stubs.count(s.level_id)) continue;
          const std::string item = n % 2 ? "SH-0001" : "SH-0002";
          const std::string rid = "w" + std::to_string(c) + "-" + std::to_string(n);
          if (Receive(*stubs[s.level_id], s.code, item, 1 + n % 5, rid, seconds(30)).ok()) ++ok;
        }
      });
    }
    return threads;
  }

  grpc::Status GetStock(const std::string& code, const std::string& item,
                        stockpile::v1::WarehouseStock* stock) {
    stockpile::v1::GetWarehouseStockRequest get;
    get.set_warehouse("warehouses/" + code);
    get.set_item(item);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(2));
    return catalogue_->Stub()->GetWarehouseStock(&ctx, get, stock);
  }
  grpc::StatusCode StockStatus(const std::string& code, const std::string& item) {
    stockpile::v1::WarehouseStock stock;
    return GetStock(code, item, &stock).error_code();
  }
  int64_t CatalogueOnHand(const std::string& code, const std::string& item) {
    stockpile::v1::WarehouseStock stock;
    return GetStock(code, item, &stock).ok() ? stock.on_hand() : -1;
  }

  // Every balance every level reports equals the catalogue's, figure for figure.
  void ExpectViewEqualsLevels(int expected_balances = int(kStores.size()) * 2) {
    auto cat = catalogue_->Stub();
    int compared = 0;
    for (auto& [id, level] : levels_) {
      stockpile::v1::ListBalancesRequest req;
      req.set_page_size(10000);
      stockpile::v1::ListBalancesResponse resp;
      grpc::ClientContext ctx;
      ASSERT_TRUE(level->Stub()->ListBalances(&ctx, req, &resp).ok());
      for (const auto& b : resp.balances()) {
        stockpile::v1::GetWarehouseStockRequest get;
        get.set_warehouse(b.warehouse());
        get.set_item(b.item());
        stockpile::v1::WarehouseStock stock;
        grpc::ClientContext c2;
        ASSERT_TRUE(cat->GetWarehouseStock(&c2, get, &stock).ok()) << b.warehouse();
        EXPECT_EQ(stock.on_hand(), b.on_hand()) << b.warehouse() << " " << b.item();
        EXPECT_EQ(stock.held(), b.held()) << b.warehouse() << " " << b.item();
        EXPECT_EQ(stock.in_transit(), b.in_transit()) << b.warehouse() << " " << b.item();
        ++compared;
      }
    }
    EXPECT_EQ(compared, expected_balances);
  }

  TempDir dir_;
  EtcdProcess etcd_{dir_.path()};
  std::map<std::string, std::unique_ptr<LevelServer>> levels_;
  std::unique_ptr<CatalogueServer> catalogue_;
};

TEST_F(CatalogueFaultTest, KillNineDuringWritesThenViewEqualsLevelsExactlyOnce) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> ok{0};
  auto writers = StartWriters(8, {"county-a", "township-a", "village-a"}, stop, ok);
  std::this_thread::sleep_for(seconds(2));
  catalogue_->process().Signal(SIGKILL);
  catalogue_->process().Wait(seconds(5));
  std::this_thread::sleep_for(seconds(1));
  ASSERT_TRUE(catalogue_->Start());
  std::this_thread::sleep_for(seconds(2));
  stop = true;
  for (auto& t : writers) t.join();
  EXPECT_GT(ok.load(), 100);
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(); }, seconds(20))) << catalogue_->process().Log();
  ExpectViewEqualsLevels();
}

TEST_F(CatalogueFaultTest, StoppedSourceShowsLagThenCatchesUp) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> ok{0};
  // The village keeps being written to: those requests wait in its socket while it is stopped.
  auto writers = StartWriters(8, {"county-a", "township-a", "village-a"}, stop, ok);
  std::this_thread::sleep_for(milliseconds(500));
  levels_["village-a"]->process().Signal(SIGSTOP);
  double max_lag = 0;
  bool seen_disconnected = false;
  const auto until = std::chrono::steady_clock::now() + seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    const auto status = catalogue_->Status();  // FindSource points into it
    if (auto* s = FindSource(status, "village-a")) {
      max_lag = std::max(max_lag, s->lag_seconds());
      seen_disconnected |= !s->connected();
    }
    std::this_thread::sleep_for(milliseconds(500));
  }
  levels_["village-a"]->process().Signal(SIGCONT);
  std::this_thread::sleep_for(seconds(1));
  stop = true;
  for (auto& t : writers) t.join();
  EXPECT_TRUE(seen_disconnected);
  EXPECT_GT(max_lag, 5.0);
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(); }, seconds(20)));
  const auto status = catalogue_->Status();
  ASSERT_NE(FindSource(status, "village-a"), nullptr);
  EXPECT_TRUE(WaitFor(
      [&] {
        const auto now = catalogue_->Status();
        auto* v = FindSource(now, "village-a");
        return v && v->connected() && v->lag_seconds() == 0;
      },
      seconds(5)));
  ExpectViewEqualsLevels();
}

TEST_F(CatalogueFaultTest, EtcdDownWritesAndStreamingGoOnAndRegistrationsReturn) {
  etcd_.Kill();
  auto county = levels_["county-a"]->Stub();
  ASSERT_TRUE(Receive(*county, "420102-W001", "SH-0001", 13, "while-etcd-down").ok());
  auto cat = catalogue_->Stub();
  EXPECT_TRUE(WaitFor([&] { return RollupOnHand(*cat, "420102", "SH-0001") == 13; }, seconds(5)));
  std::string error;
  ASSERT_TRUE(etcd_.Restart(seconds(20), &error)) << error;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::string out;
        etcd_.Etcdctl({"get", "--prefix", "--keys-only", "/stockpile/v1/instances/"}, &out);
        return out.find("county-a") != std::string::npos &&
               out.find("township-a") != std::string::npos &&
               out.find("village-a") != std::string::npos;
      },
      seconds(30)));
  ASSERT_TRUE(Receive(*county, "420102-W001", "SH-0001", 4, "after-etcd-back").ok());
  EXPECT_TRUE(WaitFor([&] { return RollupOnHand(*cat, "420102", "SH-0001") == 17; }, seconds(10)));
  EXPECT_TRUE(WaitFor([&] { return AllConnected(); }, seconds(10)));
}

// The village level's volume is put back to an earlier copy under the same instance id, and
// the level takes new receipts: it numbers them again from where the copy stands, past the
// catalogue's watermark. The catalogue sees that the history differs, drops what it held from
// that level and streams it again: its view ends equal to the restored ledger, with neither the
// stock only the lost history had nor the new receipts it would have taken for old ones.
TEST_F(CatalogueFaultTest, LevelRestoredFromAnEarlierCopyIsStreamedAgainAndTheViewFollowsIt) {
  LevelServer& village = *levels_["village-a"];
  const std::string kStore3 = "420102002003-W001", kStore4 = "420102002004-W001";
  ASSERT_TRUE(Receive(*village.Stub(), kStore3, "SH-0001", 10, "before-copy").ok());
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(); }, seconds(20)));
  village.process().Stop();
  std::filesystem::copy(dir_.Sub("village-a-db"), dir_.Sub("village-a-copy"),
                        std::filesystem::copy_options::recursive);
  ASSERT_TRUE(village.Start());
  ASSERT_TRUE(Receive(*village.Stub(), kStore3, "SH-0001", 5, "after-copy-1").ok());
  ASSERT_TRUE(Receive(*village.Stub(), kStore4, "SH-0002", 50, "after-copy-2").ok());
  // A warehouse only the history after the copy has.
  const std::string kStore5 = "420102002005-W001";
  ASSERT_TRUE(CreateWarehouse(*village.Stub(), kStore5, "420102002005").ok());
  ASSERT_TRUE(Receive(*village.Stub(), kStore5, "SH-0001", 7, "after-copy-3").ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        return CatalogueOnHand(kStore3, "SH-0001") == 15 &&
               CatalogueOnHand(kStore4, "SH-0002") == 50 &&
               CatalogueOnHand(kStore5, "SH-0001") == 7;
      },
      seconds(20)))
      << catalogue_->process().Log();

  village.process().Stop();
  std::filesystem::remove_all(dir_.Sub("village-a-db"));
  std::filesystem::rename(dir_.Sub("village-a-copy"), dir_.Sub("village-a-db"));
  ASSERT_TRUE(village.Start());
  ASSERT_TRUE(Receive(*village.Stub(), kStore3, "SH-0002", 3, "restored-1").ok());
  ASSERT_TRUE(Receive(*village.Stub(), kStore3, "SH-0001", 1, "restored-2").ok());
  ASSERT_TRUE(Receive(*village.Stub(), kStore4, "SH-0001", 2, "restored-3").ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto status = catalogue_->Status();
        const auto* v = FindSource(status, "village-a");
        return v != nullptr && v->resyncs() == 1 && CaughtUp();
      },
      seconds(30)))
      << catalogue_->process().Log();
  EXPECT_EQ(CatalogueOnHand(kStore3, "SH-0001"), 11);
  EXPECT_EQ(CatalogueOnHand(kStore3, "SH-0002"), 3);
  EXPECT_EQ(CatalogueOnHand(kStore4, "SH-0001"), 2);
  EXPECT_EQ(CatalogueOnHand(kStore4, "SH-0002"), 0);  // only the lost history had it
  EXPECT_EQ(StockStatus(kStore5, "SH-0001"), grpc::StatusCode::NOT_FOUND);  // and this warehouse
  EXPECT_EQ(RollupOnHand(*catalogue_->Stub(), "420102002", "SH-0002"), 3);
  ExpectViewEqualsLevels(/*expected_balances=*/3);
  const auto status = catalogue_->Status();
  const auto* v = FindSource(status, "village-a");
  ASSERT_NE(v, nullptr);
  EXPECT_FALSE(v->last_resync_reason().empty());
  EXPECT_THAT(catalogue_->process().Log(),
              ::testing::HasSubstr("streaming it again from sequence 1"));
}

}  // namespace
}  // namespace stockpile::testing
