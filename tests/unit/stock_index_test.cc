#include "services/catalogue/stock_index.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stockpile::catalogue {
namespace {

using Hit = StockIndex::Hit;
using Query = StockIndex::Query;

constexpr int kItems = 5;

// (GCC warns about designated initializers that leave the std::string member out.)
Query MakeQuery(int item, int64_t min_available, GeoPoint origin, size_t limit = 10) {
  Query q;
  q.item = item;
  q.min_available = min_available;
  q.origin = origin;
  q.limit = limit;
  return q;
}

// The index's contract restated as a full scan over a plain copy of the data.
class BruteForce {
 public:
  void Add(uint32_t id, std::string region, GeoPoint p) {
    if (id >= regions_.size()) {
      regions_.resize(id + 1);
      places_.resize(id + 1);
      avail_.resize(id + 1, std::vector<int64_t>(kItems, 0));
    }
    regions_[id] = std::move(region);
    places_[id] = p;
  }
  void Move(uint32_t id, GeoPoint p) { places_[id] = p; }
  void Set(uint32_t id, int item, int64_t v) { avail_[id][item] = v; }

  std::vector<Hit> Nearest(const Query& q) const {
    std::vector<Hit> all;
    const int64_t min = std::max<int64_t>(1, q.min_available);
    for (uint32_t w = 0; w < regions_.size(); ++w) {
      const int64_t v = avail_[w][q.item];
      if (v < min || !absl::StartsWith(regions_[w], q.region_prefix)) continue;
      const double km = HaversineKm(q.origin, places_[w]);
      if (q.radius_km > 0 && km > q.radius_km) continue;
      if (km < q.after_distance_km || (km == q.after_distance_km && w <= q.after_warehouse)) {
        continue;
      }
      all.push_back({w, v, km});
    }
    std::sort(all.begin(), all.end(), [](const Hit& a, const Hit& b) {
      return a.distance_km < b.distance_km ||
             (a.distance_km == b.distance_km && a.warehouse < b.warehouse);
    });
    if (all.size() > q.limit) all.resize(q.limit);
    return all;
  }

  size_t size() const { return regions_.size(); }
  const std::vector<GeoPoint>& places() const { return places_; }

 private:
  std::vector<std::string> regions_;
  std::vector<GeoPoint> places_;
  std::vector<std::vector<int64_t>> avail_;
};

// Random national-like data: a few hundred "county seats" shared by many warehouses, some
// unique places, nested region codes (2/4/6/9/12 digits), ~30% zeros and a few negatives.
class RandomWorld {
 public:
  explicit RandomWorld(uint32_t seed) : rng_(seed) {
    std::uniform_real_distribution<double> lon(73, 135), lat(18, 53);
    for (int c = 0; c < 300; ++c) seats_.push_back({lon(rng_), lat(rng_)});
  }

  GeoPoint RandomPlace() {
    std::uniform_real_distribution<double> lon(73, 135), lat(18, 53);
    if (Chance(0.1)) return {lon(rng_), lat(rng_)};
    return seats_[Uniform(seats_.size())];
  }
  std::string RandomRegion(size_t county) {
    std::string code = absl::StrCat(11 + county % 5, 1 + county % 3, county % 7, 1000 + county);
    code = code.substr(0, 6);
    if (Chance(0.2)) return code.substr(0, 2 + 2 * Uniform(3));  // province, city or county
    code += absl::StrCat(100 + Uniform(3));
    if (Chance(0.8)) code += absl::StrCat(100 + Uniform(5));
    return code;
  }
  int64_t RandomQuantity() {
    if (Chance(0.3)) return 0;
    if (Chance(0.02)) return -static_cast<int64_t>(Uniform(50));
    return 1 + static_cast<int64_t>(Uniform(Chance(0.1) ? 1'000'000 : 2000));
  }
  Query RandomQuery(const std::vector<GeoPoint>& places) {
    Query q;
    q.item = Uniform(kItems);
    const int64_t thresholds[] = {-5, 0, 1, 2, 100, 1000, 1900, 1990, 500'000, 999'000, 2'000'000};
    q.min_available = thresholds[Uniform(std::size(thresholds))];
    q.origin = Chance(0.5) && !places.empty() ? places[Uniform(places.size())] : RandomPlace();
    q.limit = 1 + Uniform(Chance(0.2) ? 200 : 25);
    if (Chance(0.3)) q.radius_km = std::uniform_real_distribution<double>(1, 1500)(rng_);
    if (Chance(0.3)) q.region_prefix = RandomRegion(Uniform(300)).substr(0, 2 + 2 * Uniform(4));
    return q;
  }

  size_t Uniform(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }

 private:
  std::mt19937_64 rng_;
  std::vector<GeoPoint> seats_;
};

struct Fixture {
  explicit Fixture(uint32_t seed) : world(seed), index(kItems) {}

  void AddWarehouses(size_t n) {
    for (size_t k = 0; k < n; ++k) {
      const size_t county = world.Uniform(300);
      const std::string region = world.RandomRegion(county);
      const GeoPoint place = world.RandomPlace();
      const uint32_t id =
          index.AddWarehouse(absl::StrCat(region, "-W", brute.size()), region, place);
      ASSERT_EQ(id, brute.size());
      brute.Add(id, region, place);
      for (int i = 0; i < kItems; ++i) SetBoth(id, i, world.RandomQuantity());
    }
  }
  void SetBoth(uint32_t id, int item, int64_t v) {
    ASSERT_TRUE(index.SetAvailable(id, item, v));
    brute.Set(id, item, v);
  }

  // Compares one query, and then walks its pages to the end comparing every page.
  void ExpectSameResults(Query q) {
    ASSERT_EQ(index.Nearest(q), brute.Nearest(q)) << Describe(q);
    for (int page = 0; page < 20; ++page) {
      const std::vector<Hit> expected = brute.Nearest(q);
      ASSERT_EQ(index.Nearest(q), expected) << Describe(q) << " page " << page;
      if (expected.size() < q.limit) return;
      q.after_distance_km = expected.back().distance_km;
      q.after_warehouse = expected.back().warehouse;
    }
  }
  static std::string Describe(const Query& q) {
    return absl::StrCat("item=", q.item, " Q=", q.min_available, " origin=", q.origin.lon, ",",
                        q.origin.lat, " limit=", q.limit, " radius=", q.radius_km,
                        " prefix=", q.region_prefix, " after=", q.after_distance_km, "/",
                        q.after_warehouse);
  }

  RandomWorld world;
  StockIndex index;
  BruteForce brute;
};

TEST(StockIndexTest, MatchesBruteForceOnRandomQueriesWithPagingRadiusAndPrefix) {
  Fixture f(1);
  f.AddWarehouses(6000);
  EXPECT_GT(f.index.indexed_site_count(), 0u);  // most sites are in the tree by now
  for (int n = 0; n < 600; ++n) f.ExpectSameResults(f.world.RandomQuery(f.brute.places()));
}

TEST(StockIndexTest, MatchesBruteForceWhileSmallAndUnindexed) {
  Fixture f(2);
  f.AddWarehouses(12);  // few sites: all wait in the pending list, none in the tree
  for (int n = 0; n < 300; ++n) f.ExpectSameResults(f.world.RandomQuery(f.brute.places()));
}

TEST(StockIndexTest, UpdatesMoveWarehousesBetweenQuantitiesAndPlaces) {
  Fixture f(3);
  f.AddWarehouses(3000);
  for (int round = 0; round < 300; ++round) {
    for (int k = 0; k < 200; ++k) {
      const uint32_t id = f.world.Uniform(f.brute.size());
      // Large swings up and down: a warehouse leaves and enters the qualifying set, and the
      // site's / subtree's maximum has to follow a decrease of its holder.
      f.SetBoth(id, f.world.Uniform(kItems), f.world.Chance(0.5) ? 0 : f.world.RandomQuantity());
    }
    for (int k = 0; k < 5; ++k) {
      const uint32_t id = f.world.Uniform(f.brute.size());
      const GeoPoint to = f.world.RandomPlace();
      ASSERT_TRUE(f.index.MoveWarehouse(id, to));
      f.brute.Move(id, to);
    }
    if (round % 50 == 0) f.AddWarehouses(40);  // new places arrive between rebuilds
    for (int n = 0; n < 5; ++n) f.ExpectSameResults(f.world.RandomQuery(f.brute.places()));
  }
}

TEST(StockIndexTest, DecreasingTheOnlyLargeQuantityHidesTheSubtree) {
  StockIndex index(1);
  for (int w = 0; w < 500; ++w) {
    index.AddWarehouse(absl::StrCat("W", w), "42", {100.0 + w * 0.05, 30.0});
    index.SetAvailable(w, 0, 5);
  }
  index.SetAvailable(250, 0, 1000);
  ASSERT_GT(index.indexed_site_count(), 400u);  // the rest wait for the next rebuild
  Query q = MakeQuery(0, 100, {100, 30});
  StockIndex::SearchStats stats;
  ASSERT_EQ(index.Nearest(q, &stats).size(), 1u);
  EXPECT_EQ(index.Nearest(q)[0].warehouse, 250u);
  EXPECT_EQ(stats.sites_scanned, 1u);  // straight down to the one qualifying place
  EXPECT_LE(stats.nodes_expanded, 12u);
  index.SetAvailable(250, 0, 99);
  EXPECT_TRUE(index.Nearest(q, &stats).empty());
  EXPECT_EQ(stats.sites_scanned, 0u);  // the maxima came down: nothing is even looked at
  EXPECT_EQ(stats.nodes_expanded, 0u);
  q.min_available = 99;
  EXPECT_EQ(index.Nearest(q).size(), 1u);
}

TEST(StockIndexTest, EquidistantPlacesAreMergedByIdAcrossSites) {
  StockIndex index(1);
  // Mirror images around the origin: bit-identical haversine distances from distinct places.
  const GeoPoint east{0.5, 0}, west{-0.5, 0}, north{0, 0.5}, south{0, -0.5};
  const GeoPoint order[] = {east, west, west, east, east, west, north, south};
  for (uint32_t w = 0; w < std::size(order); ++w) {
    index.AddWarehouse(absl::StrCat("W", w), "11", order[w]);
    index.SetAvailable(w, 0, 1);
  }
  ASSERT_EQ(HaversineKm({0, 0}, east), HaversineKm({0, 0}, west));
  ASSERT_EQ(HaversineKm({0, 0}, east), HaversineKm({0, 0}, north));
  Query q = MakeQuery(0, 1, {0, 0}, 3);
  std::vector<uint32_t> seen;
  for (;;) {
    const auto page = index.Nearest(q);
    for (const Hit& h : page) seen.push_back(h.warehouse);
    if (page.size() < q.limit) break;
    q.after_distance_km = page.back().distance_km;
    q.after_warehouse = page.back().warehouse;
  }
  EXPECT_THAT(seen, testing::ElementsAre(0, 1, 2, 3, 4, 5, 6, 7));
}

TEST(StockIndexTest, ZeroAndNegativeAvailableAreNeverReturned) {
  StockIndex index(2);
  index.AddWarehouse("A", "11", {116.4, 39.9});
  index.AddWarehouse("B", "11", {116.4, 39.9});
  index.AddWarehouse("C", "11", {116.5, 39.9});
  index.SetAvailable(0, 0, 0);
  index.SetAvailable(1, 0, -7);
  index.SetAvailable(2, 0, 3);
  for (int64_t q : {-100, -1, 0, 1}) {
    const auto hits = index.Nearest(MakeQuery(0, q, {116.4, 39.9}));
    ASSERT_EQ(hits.size(), 1u) << q;
    EXPECT_EQ(hits[0].warehouse, 2u);
    EXPECT_EQ(hits[0].available, 3);
  }
  EXPECT_TRUE(index.Nearest(MakeQuery(1, -1, {116.4, 39.9})).empty());
}

TEST(StockIndexTest, TiesAtOnePlaceAreOrderedByIdAndPagedWithoutGapsOrRepeats) {
  StockIndex index(1);
  const GeoPoint seat{114.3, 30.6};
  for (int w = 0; w < 1000; ++w) {
    // Registered out of id order relative to quantity, all at one county seat.
    index.AddWarehouse(absl::StrCat("420102-W", w), "420102", seat);
    index.SetAvailable(w, 0, w % 3 == 0 ? 0 : 10 + (w * 7919) % 100);
  }
  Query q = MakeQuery(0, 50, {114.0, 30.0}, 7);
  std::vector<uint32_t> seen;
  for (;;) {
    const auto page = index.Nearest(q);
    for (const Hit& h : page) {
      EXPECT_GE(h.available, 50);
      EXPECT_EQ(h.distance_km, HaversineKm(q.origin, seat));
      seen.push_back(h.warehouse);
    }
    if (page.size() < q.limit) break;
    q.after_distance_km = page.back().distance_km;
    q.after_warehouse = page.back().warehouse;
  }
  std::vector<uint32_t> expected;
  for (uint32_t w = 0; w < 1000; ++w) {
    if (w % 3 != 0 && 10 + (w * 7919) % 100 >= 50) expected.push_back(w);
  }
  EXPECT_EQ(seen, expected);
}

TEST(StockIndexTest, RadiusIsInclusiveAndPrefixFollowsRegionNesting) {
  StockIndex index(1);
  const GeoPoint origin{114.3, 30.6}, far{116.4, 39.9};
  index.AddWarehouse("a", "420102001001", origin);
  index.AddWarehouse("b", "420103", origin);
  index.AddWarehouse("c", "110101", far);
  for (uint32_t w = 0; w < 3; ++w) index.SetAvailable(w, 0, 10);
  const double far_km = HaversineKm(origin, far);
  auto ids = [&](Query q) {
    std::vector<uint32_t> out;
    for (const Hit& h : index.Nearest(q)) out.push_back(h.warehouse);
    return out;
  };
  Query q = MakeQuery(0, 1, origin);
  EXPECT_THAT(ids(q), testing::ElementsAre(0, 1, 2));
  q.radius_km = far_km;
  EXPECT_THAT(ids(q), testing::ElementsAre(0, 1, 2));
  q.radius_km = far_km - 0.001;
  EXPECT_THAT(ids(q), testing::ElementsAre(0, 1));
  q.radius_km = 0;
  q.region_prefix = "42";
  EXPECT_THAT(ids(q), testing::ElementsAre(0, 1));
  q.region_prefix = "420102";
  EXPECT_THAT(ids(q), testing::ElementsAre(0));
  q.region_prefix = "4201020";
  EXPECT_THAT(ids(q), testing::ElementsAre(0));
  q.region_prefix = "1";
  EXPECT_THAT(ids(q), testing::ElementsAre(2));
  q.region_prefix = "43";
  EXPECT_THAT(ids(q), testing::IsEmpty());
}

TEST(StockIndexTest, AddWarehouseIsIdempotentAndUpdatesPlaceAndRegion) {
  StockIndex index(1);
  EXPECT_EQ(index.AddWarehouse("4201-W001", "4201", {114.3, 30.6}), 0u);
  EXPECT_EQ(index.AddWarehouse("4202-W001", "4202", {115.0, 30.2}), 1u);
  index.SetAvailable(0, 0, 5);
  EXPECT_EQ(index.AddWarehouse("4201-W001", "4201", {114.3, 30.6}), 0u);
  EXPECT_EQ(index.warehouse_count(), 2u);
  EXPECT_EQ(index.available(0, 0), 5);
  EXPECT_EQ(index.AddWarehouse("4201-W001", "4203", {110.0, 31.0}), 0u);
  EXPECT_EQ(index.available(0, 0), 5);  // quantities travel with the warehouse
  EXPECT_EQ(index.location(0), (GeoPoint{110.0, 31.0}));
  EXPECT_EQ(index.region_code(0), "4203");
  EXPECT_EQ(index.code(1), "4202-W001");
  EXPECT_EQ(index.Find("4202-W001"), 1u);
  EXPECT_EQ(index.Find("nope"), std::nullopt);
  Query q = MakeQuery(0, 1, {110.0, 31.0});
  q.region_prefix = "4203";
  const auto hits = index.Nearest(q);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].distance_km, 0.0);
}

TEST(StockIndexTest, RejectsOutOfRangeIdsAndItems) {
  StockIndex index(2);
  index.AddWarehouse("a", "11", {116.4, 39.9});
  EXPECT_FALSE(index.SetAvailable(1, 0, 5));
  EXPECT_FALSE(index.SetAvailable(0, 2, 5));
  EXPECT_FALSE(index.SetAvailable(0, -1, 5));
  EXPECT_FALSE(index.MoveWarehouse(7, {1, 1}));
  EXPECT_EQ(index.SetAvailableBatch({{0, 0, 5}, {0, 9, 5}, {3, 0, 5}}), 1u);
  EXPECT_TRUE(index.Nearest(MakeQuery(9, 1, {116.4, 39.9})).empty());
  EXPECT_EQ(index.Nearest(MakeQuery(0, 1, {116.4, 39.9})).size(), 1u);
}

TEST(StockIndexTest, HaversineMatchesKnownDistance) {
  // Beijing (Tiananmen) to Shanghai (People's Square): ~1,067 km on a 6371 km sphere.
  EXPECT_NEAR(HaversineKm({116.3975, 39.9087}, {121.4737, 31.2304}), 1067.3, 1.0);
  EXPECT_EQ(HaversineKm({10, 10}, {10, 10}), 0.0);
  EXPECT_NEAR(HaversineKm({0, 0}, {180, 0}), kEarthRadiusKm * 3.14159265358979, 1e-6);
}

TEST(StockIndexTest, ConcurrentSearchesSeeConsistentResultsDuringWrites) {
  Fixture f(4);
  f.AddWarehouses(2000);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, searches{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      RandomWorld world(100 + t);
      while (!stop.load()) {
        const Query q = world.RandomQuery({});
        const auto hits = f.index.Nearest(q);
        for (size_t k = 0; k < hits.size(); ++k) {
          if (hits[k].available < std::max<int64_t>(1, q.min_available)) ++bad;
          if (k > 0 && hits[k].distance_km < hits[k - 1].distance_km) ++bad;
        }
        ++searches;
      }
    });
  }
  // The writes start once the readers are searching: on a busy machine the readers were not
  // scheduled before the writes ended (0 searches), and the test then checked nothing.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (searches.load() < 3 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  std::vector<StockIndex::Update> batch;
  for (int n = 0; n < 20000; ++n) {
    batch.push_back({static_cast<uint32_t>(f.world.Uniform(2000)),
                     static_cast<int>(f.world.Uniform(kItems)), f.world.RandomQuantity()});
  }
  EXPECT_EQ(f.index.SetAvailableBatch(batch), batch.size());
  for (int n = 0; n < 200; ++n) {
    f.index.MoveWarehouse(f.world.Uniform(2000), f.world.RandomPlace());
    f.index.AddWarehouse(absl::StrCat("late-", n), "11", f.world.RandomPlace());
  }
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(searches.load(), 0);
}

}  // namespace
}  // namespace stockpile::catalogue
