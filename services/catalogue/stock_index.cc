#include "services/catalogue/stock_index.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <queue>
#include <utility>

#include "absl/strings/match.h"

namespace stockpile::catalogue {
namespace {

// Sites per tree leaf: small, because a leaf visit computes the exact distance of each site.
constexpr uint32_t kLeafSize = 8;
// Slack for the chord-derived distance bounds versus the haversine formula (1 mm); rounding
// differs by ~1e-9 km at most, and a looser bound only costs a node visit.
constexpr double kBoundSlackKm = 1e-6;
// Rebuild the tree once this many sites (plus a share of the indexed ones) wait unindexed.
constexpr size_t kPendingBase = 16;
constexpr size_t kPendingDivisor = 32;
constexpr int32_t kNone = -1;

using Vec3 = std::array<double, 3>;

struct Box {
  Vec3 lo{1e9, 1e9, 1e9};
  Vec3 hi{-1e9, -1e9, -1e9};
  void Expand(const Vec3& p) {
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], p[a]);
      hi[a] = std::max(hi[a], p[a]);
    }
  }
  bool Contains(const Vec3& p) const {
    for (int a = 0; a < 3; ++a) {
      if (p[a] < lo[a] || p[a] > hi[a]) return false;
    }
    return true;
  }
  bool Intersects(const Box& o) const {
    for (int a = 0; a < 3; ++a) {
      if (o.hi[a] < lo[a] || o.lo[a] > hi[a]) return false;
    }
    return true;
  }
};

// Great-circle km for a straight-line (chord) distance between two points on the unit sphere.
double KmFromChord(double chord) {
  return 2.0 * kEarthRadiusKm * std::asin(std::min(1.0, chord / 2));
}

// Lower / upper bounds on the great-circle distance from p to any sphere point inside box.
double MinKm(const Vec3& p, const Box& box) {
  double d2 = 0;
  for (int a = 0; a < 3; ++a) {
    const double d = std::max({box.lo[a] - p[a], 0.0, p[a] - box.hi[a]});
    d2 += d * d;
  }
  return KmFromChord(std::sqrt(d2)) - kBoundSlackKm;
}
double MaxKm(const Vec3& p, const Box& box) {
  double d2 = 0;
  for (int a = 0; a < 3; ++a) {
    const double d = std::max(std::abs(p[a] - box.lo[a]), std::abs(p[a] - box.hi[a]));
    d2 += d * d;
  }
  return KmFromChord(std::sqrt(d2)) + kBoundSlackKm;
}

// A point with what distance computations need, precomputed once.
struct Place {
  GeoPoint point;
  double lat_rad = 0, lon_rad = 0, cos_lat = 0;
  Vec3 xyz{};
  explicit Place(GeoPoint p) : point(p) {
    lat_rad = p.lat * kDegToRad;
    lon_rad = p.lon * kDegToRad;
    cos_lat = std::cos(lat_rad);
    xyz = {cos_lat * std::cos(lon_rad), cos_lat * std::sin(lon_rad), std::sin(lat_rad)};
  }
  // Bit-identical to HaversineKm(point, other.point).
  double KmTo(const Place& o) const {
    return KmFromHaversineTerm(
        HaversineTerm(lat_rad, lon_rad, cos_lat, o.lat_rad, o.lon_rad, o.cos_lat));
  }
};

GeoPoint Normalize(GeoPoint p) {
  // +0.0 folds -0.0 into 0.0 so that both land on one site; clamping keeps the tree sane.
  return {std::clamp(p.lon + 0.0, -180.0, 180.0), std::clamp(p.lat + 0.0, -90.0, 90.0)};
}

std::pair<uint64_t, uint64_t> PointKey(GeoPoint p) {
  uint64_t a, b;
  std::memcpy(&a, &p.lon, sizeof a);
  std::memcpy(&b, &p.lat, sizeof b);
  return {a, b};
}

// Region-code prefix lengths whose bounding boxes are kept for pruning (province, city, county;
// longer codes sit at their county's place anyway).
constexpr std::array<size_t, 3> kBoxedPrefixLengths = {6, 4, 2};

}  // namespace

// All warehouses sharing one exact location (a county seat holds hundreds of village
// warehouses). Availability is stored per site, item-major, so the scan of one item at a site is
// a contiguous run of int64.
struct Site {
  explicit Site(GeoPoint p) : place(p) {}
  Place place;
  std::vector<uint32_t> members;  // warehouse ids by slot
  std::vector<int64_t> avail;     // [item * capacity + slot]
  uint32_t capacity = 0;
  bool pending = false;  // has members but is not in the tree yet
};

// Bounding-volume hierarchy over sites (3-D unit vectors, where straight-line order equals
// great-circle order) whose nodes carry, per item, the largest available quantity below them:
// a search descends only into subtrees that hold at least one qualifying warehouse, so a query
// that 1% of warehouses satisfy costs about as much as one that a third satisfy.
struct Tree {
  struct Node {
    Box box;
    int32_t left = kNone, right = kNone, parent = kNone;
    uint32_t begin = 0, end = 0;  // leaf: range in `order`
    bool leaf() const { return left == kNone; }
  };
  std::vector<Node> nodes;         // nodes[0] is the root when not empty
  std::vector<uint32_t> order;     // site ids, leaves' ranges
  std::vector<int64_t> node_max;   // [node * item_count + item]
  std::vector<int32_t> site_leaf;  // by site id; kNone if not in the tree
};

struct StockIndex::State {
  std::vector<std::unique_ptr<Site>> sites;
  std::vector<int64_t> site_max;  // [site * item_count + item], max(0, max member available)
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, uint32_t> site_by_point;
  std::vector<uint32_t> pending;  // sites with members not in the tree

  std::vector<std::string> codes, regions;
  std::vector<uint32_t> wh_site, wh_slot;
  absl::flat_hash_map<std::string, uint32_t> id_by_code;
  absl::flat_hash_map<std::string, Box> prefix_boxes;

  Tree tree;
  int items = 0;

  int32_t LeafOf(uint32_t site) const {
    return site < tree.site_leaf.size() ? tree.site_leaf[site] : kNone;
  }
  uint32_t SiteFor(GeoPoint p);
  void AddMember(uint32_t site, uint32_t id, const int64_t* values);
  void RemoveMember(uint32_t id, int64_t* values_out);
  void Grow(Site& s);
  void Set(uint32_t site, uint32_t slot, int item, int64_t value);
  void RaiseUp(int32_t node, int item, int64_t value);
  void LowerUp(int32_t node, int item);
  void ExpandPrefixBoxes(const std::string& region, const Vec3& xyz);
};

uint32_t StockIndex::State::SiteFor(GeoPoint p) {
  auto [it, inserted] = site_by_point.try_emplace(PointKey(p), sites.size());
  if (inserted) {
    sites.push_back(std::make_unique<Site>(p));
    site_max.resize(site_max.size() + items, 0);
  }
  return it->second;
}

void StockIndex::State::Grow(Site& s) {
  const uint32_t cap = std::max<uint32_t>(4, s.capacity + s.capacity / 2);
  std::vector<int64_t> grown(static_cast<size_t>(cap) * items, 0);
  const size_t n = s.members.size();
  for (int i = 0; i < items; ++i) {
    std::copy_n(s.avail.begin() + static_cast<size_t>(i) * s.capacity, n,
                grown.begin() + static_cast<size_t>(i) * cap);
  }
  s.avail.swap(grown);
  s.capacity = cap;
}

void StockIndex::State::AddMember(uint32_t site, uint32_t id, const int64_t* values) {
  Site& s = *sites[site];
  if (s.members.size() == s.capacity) Grow(s);
  const uint32_t slot = s.members.size();
  s.members.push_back(id);
  wh_site[id] = site;
  wh_slot[id] = slot;
  for (int i = 0; i < items; ++i) {
    s.avail[static_cast<size_t>(i) * s.capacity + slot] = 0;
    if (values != nullptr) Set(site, slot, i, values[i]);
  }
  if (LeafOf(site) == kNone && !s.pending) {
    s.pending = true;
    pending.push_back(site);
  }
}

// Takes a warehouse out of its site (the site's last member fills the hole), returning its
// quantities in values_out.
void StockIndex::State::RemoveMember(uint32_t id, int64_t* values_out) {
  const uint32_t site = wh_site[id], slot = wh_slot[id];
  Site& s = *sites[site];
  const uint32_t last = s.members.size() - 1;
  for (int i = 0; i < items; ++i) {
    const int64_t* col = s.avail.data() + static_cast<size_t>(i) * s.capacity;
    values_out[i] = col[slot];
    if (slot != last) Set(site, slot, i, col[last]);
    Set(site, last, i, 0);  // through Set, so the site's maximum forgets the leaving value
  }
  const uint32_t moved = s.members[last];
  s.members[slot] = moved;
  wh_slot[moved] = slot;
  s.members.pop_back();
}

void StockIndex::State::Set(uint32_t site, uint32_t slot, int item, int64_t value) {
  Site& s = *sites[site];
  int64_t& cell = s.avail[static_cast<size_t>(item) * s.capacity + slot];
  const int64_t old = cell;
  if (old == value) return;
  cell = value;
  int64_t& max = site_max[static_cast<size_t>(site) * items + item];
  if (value > max) {
    max = value;
    RaiseUp(LeafOf(site), item, value);
  } else if (old == max && old > 0) {
    // The maximum went down: rescan this item's column (amortised O(1) for random updates).
    const int64_t* col = s.avail.data() + static_cast<size_t>(item) * s.capacity;
    const int64_t rescanned = std::max<int64_t>(0, *std::max_element(col, col + s.members.size()));
    if (rescanned != max) {
      max = rescanned;
      LowerUp(LeafOf(site), item);
    }
  }
}

void StockIndex::State::RaiseUp(int32_t node, int item, int64_t value) {
  for (; node != kNone; node = tree.nodes[node].parent) {
    int64_t& m = tree.node_max[static_cast<size_t>(node) * items + item];
    if (m >= value) return;
    m = value;
  }
}

void StockIndex::State::LowerUp(int32_t node, int item) {
  for (; node != kNone; node = tree.nodes[node].parent) {
    const Tree::Node& n = tree.nodes[node];
    int64_t m = 0;
    if (n.leaf()) {
      for (uint32_t k = n.begin; k < n.end; ++k) {
        m = std::max(m, site_max[static_cast<size_t>(tree.order[k]) * items + item]);
      }
    } else {
      m = std::max(tree.node_max[static_cast<size_t>(n.left) * items + item],
                   tree.node_max[static_cast<size_t>(n.right) * items + item]);
    }
    int64_t& stored = tree.node_max[static_cast<size_t>(node) * items + item];
    if (stored == m) return;
    stored = m;
  }
}

void StockIndex::State::ExpandPrefixBoxes(const std::string& region, const Vec3& xyz) {
  for (size_t len : kBoxedPrefixLengths) {
    if (region.size() >= len) prefix_boxes[region.substr(0, len)].Expand(xyz);
  }
}

namespace {

// Builds the tree over every site that has members. Deterministic: splits at the median of the
// longest axis, ties broken by site id.
class TreeBuilder {
 public:
  TreeBuilder(const std::vector<std::unique_ptr<Site>>& sites, const std::vector<int64_t>& site_max,
              int items)
      : sites_(sites), site_max_(site_max), items_(items) {}

  Tree Build() {
    for (uint32_t s = 0; s < sites_.size(); ++s) {
      if (!sites_[s]->members.empty()) tree_.order.push_back(s);
    }
    tree_.site_leaf.assign(sites_.size(), kNone);
    if (!tree_.order.empty()) BuildNode(0, tree_.order.size(), kNone);
    return std::move(tree_);
  }

 private:
  int32_t BuildNode(uint32_t begin, uint32_t end, int32_t parent) {
    const int32_t id = tree_.nodes.size();
    tree_.nodes.emplace_back();
    tree_.node_max.resize(tree_.node_max.size() + items_, 0);
    Box box;
    for (uint32_t k = begin; k < end; ++k) box.Expand(sites_[tree_.order[k]]->place.xyz);
    if (end - begin <= kLeafSize) {
      for (uint32_t k = begin; k < end; ++k) {
        tree_.site_leaf[tree_.order[k]] = id;
        for (int i = 0; i < items_; ++i) {
          int64_t& m = tree_.node_max[static_cast<size_t>(id) * items_ + i];
          m = std::max(m, site_max_[static_cast<size_t>(tree_.order[k]) * items_ + i]);
        }
      }
      tree_.nodes[id] = {box, kNone, kNone, parent, begin, end};
      return id;
    }
    const int axis = LongestAxis(box);
    const uint32_t mid = begin + (end - begin) / 2;
    std::nth_element(tree_.order.begin() + begin, tree_.order.begin() + mid,
                     tree_.order.begin() + end, [&](uint32_t a, uint32_t b) {
                       const double pa = sites_[a]->place.xyz[axis];
                       const double pb = sites_[b]->place.xyz[axis];
                       return pa < pb || (pa == pb && a < b);
                     });
    const int32_t left = BuildNode(begin, mid, id);
    const int32_t right = BuildNode(mid, end, id);
    tree_.nodes[id] = {box, left, right, parent, begin, end};
    for (int i = 0; i < items_; ++i) {
      tree_.node_max[static_cast<size_t>(id) * items_ + i] =
          std::max(tree_.node_max[static_cast<size_t>(left) * items_ + i],
                   tree_.node_max[static_cast<size_t>(right) * items_ + i]);
    }
    return id;
  }

  static int LongestAxis(const Box& b) {
    int axis = 0;
    for (int a = 1; a < 3; ++a) {
      if (b.hi[a] - b.lo[a] > b.hi[axis] - b.lo[axis]) axis = a;
    }
    return axis;
  }

  const std::vector<std::unique_ptr<Site>>& sites_;
  const std::vector<int64_t>& site_max_;
  const int items_;
  Tree tree_;
};

}  // namespace

StockIndex::StockIndex(int item_count)
    : item_count_(std::max(0, item_count)), state_(std::make_unique<State>()) {
  state_->items = item_count_;
}

StockIndex::~StockIndex() = default;

uint32_t StockIndex::AddWarehouse(std::string code, std::string region_code, GeoPoint location) {
  location = Normalize(location);
  uint32_t id;
  {
    absl::MutexLock writer(&writer_mu_);
    {
      absl::MutexLock lock(&mu_);
      State& st = *state_;
      auto found = st.id_by_code.find(code);
      if (found != st.id_by_code.end()) {
        id = found->second;
        if (st.regions[id] != region_code) {
          st.ExpandPrefixBoxes(region_code, st.sites[st.wh_site[id]]->place.xyz);
          st.regions[id] = std::move(region_code);
        }
      } else {
        id = st.codes.size();
        st.id_by_code.emplace(code, id);
        st.codes.push_back(std::move(code));
        st.regions.push_back(std::move(region_code));
        st.wh_site.push_back(0);
        st.wh_slot.push_back(0);
        const uint32_t site = st.SiteFor(location);
        st.AddMember(site, id, nullptr);
        st.ExpandPrefixBoxes(st.regions[id], st.sites[site]->place.xyz);
      }
    }
    MaybeRebuild();
  }
  MoveWarehouse(id, location);  // no-op unless an existing warehouse changed place
  return id;
}

bool StockIndex::MoveWarehouse(uint32_t id, GeoPoint location) {
  location = Normalize(location);
  absl::MutexLock writer(&writer_mu_);
  {
    absl::MutexLock lock(&mu_);
    State& st = *state_;
    if (id >= st.codes.size()) return false;
    if (st.sites[st.wh_site[id]]->place.point == location) return true;
    std::vector<int64_t> values(item_count_);
    st.RemoveMember(id, values.data());
    const uint32_t site = st.SiteFor(location);
    st.AddMember(site, id, values.data());
    st.ExpandPrefixBoxes(st.regions[id], st.sites[site]->place.xyz);
  }
  MaybeRebuild();
  return true;
}

bool StockIndex::SetAvailableLocked(uint32_t id, int item, int64_t available) {
  State& st = *state_;
  if (id >= st.codes.size() || item < 0 || item >= item_count_) return false;
  st.Set(st.wh_site[id], st.wh_slot[id], item, available);
  return true;
}

bool StockIndex::SetAvailable(uint32_t id, int item, int64_t available) {
  absl::MutexLock writer(&writer_mu_);
  absl::MutexLock lock(&mu_);
  return SetAvailableLocked(id, item, available);
}

size_t StockIndex::SetAvailableBatch(const std::vector<Update>& updates) {
  absl::MutexLock writer(&writer_mu_);
  size_t applied = 0;
  for (size_t begin = 0; begin < updates.size(); begin += kBatchChunk) {
    // Released between chunks so that searches never wait behind the whole batch.
    absl::MutexLock lock(&mu_);
    const size_t end = std::min(updates.size(), begin + kBatchChunk);
    for (size_t k = begin; k < end; ++k) {
      applied += SetAvailableLocked(updates[k].warehouse, updates[k].item, updates[k].available);
    }
  }
  return applied;
}

void StockIndex::MaybeRebuild() {
  Tree fresh;
  {
    // Only writers change the state and we are the writer: build under the readers' lock so
    // searches continue meanwhile, then swap in under the exclusive lock.
    absl::ReaderMutexLock lock(&mu_);
    const State& st = *state_;
    const size_t indexed = st.tree.order.size();
    if (st.pending.size() <= kPendingBase + indexed / kPendingDivisor) return;
    fresh = TreeBuilder(st.sites, st.site_max, item_count_).Build();
  }
  absl::MutexLock lock(&mu_);
  State& st = *state_;
  st.tree = std::move(fresh);
  for (uint32_t site : st.pending) st.sites[site]->pending = false;
  st.pending.clear();
}

// One Nearest call: best-first search over the tree (nodes keyed by a lower bound of their
// distance, sites by their exact distance), skipping every subtree whose per-item maximum is
// below Q or that lies outside the radius, before the page or outside the prefix's box.
class StockIndex::Search {
 public:
  Search(const State& st, const Query& q, SearchStats& stats)
      : st_(st),
        q_(q),
        stats_(stats),
        origin_(q.origin),
        min_available_(std::max<int64_t>(1, q.min_available)) {}

  std::vector<Hit> Run() {
    if (!ResolvePrefixBox()) return {};
    for (uint32_t site : st_.pending) PushSite(site);
    if (!st_.tree.nodes.empty()) PushNode(0);
    double stop_km = std::numeric_limits<double>::infinity();
    while (!heap_.empty()) {
      const Entry e = heap_.top();
      heap_.pop();
      if (e.key > stop_km) break;  // everything left is farther than `limit` hits already found
      if (e.is_site) {
        VisitSite(e.index, e.key);
        if (hits_.size() >= q_.limit) stop_km = e.key;
      } else {
        ExpandNode(e.index);
      }
    }
    std::sort(hits_.begin(), hits_.end(), [](const Hit& a, const Hit& b) {
      return a.distance_km < b.distance_km ||
             (a.distance_km == b.distance_km && a.warehouse < b.warehouse);
    });
    if (hits_.size() > q_.limit) hits_.resize(q_.limit);
    return std::move(hits_);
  }

 private:
  struct Entry {
    double key;
    uint32_t index;
    bool is_site;
    bool operator>(const Entry& o) const {
      if (key != o.key) return key > o.key;
      if (is_site != o.is_site) return is_site;  // nodes first: they may hold lower ids
      return index > o.index;
    }
  };

  // The bounding box of the prefix's longest boxed head (superset of its warehouses' places).
  // False if no warehouse can match.
  bool ResolvePrefixBox() {
    const std::string& prefix = q_.region_prefix;
    for (size_t len : kBoxedPrefixLengths) {
      if (prefix.size() < len) continue;
      auto it = st_.prefix_boxes.find(prefix.substr(0, len));
      if (it == st_.prefix_boxes.end()) return false;
      prefix_box_ = &it->second;
      return true;
    }
    return true;
  }

  int64_t NodeMax(uint32_t node) const {
    return st_.tree.node_max[static_cast<size_t>(node) * st_.items + q_.item];
  }

  void PushNode(uint32_t node) {
    if (NodeMax(node) < min_available_) return;
    const Box& box = st_.tree.nodes[node].box;
    if (prefix_box_ != nullptr && !box.Intersects(*prefix_box_)) return;
    const double min_km = MinKm(origin_.xyz, box);
    if (q_.radius_km > 0 && min_km > q_.radius_km) return;
    if (q_.after_distance_km >= 0 && MaxKm(origin_.xyz, box) < q_.after_distance_km) return;
    heap_.push({min_km, node, false});
  }

  void PushSite(uint32_t site) {
    if (st_.site_max[static_cast<size_t>(site) * st_.items + q_.item] < min_available_) return;
    const Place& place = st_.sites[site]->place;
    if (prefix_box_ != nullptr && !prefix_box_->Contains(place.xyz)) return;
    const double km = origin_.KmTo(place);
    if (q_.radius_km > 0 && km > q_.radius_km) return;
    if (km < q_.after_distance_km) return;
    heap_.push({km, site, true});
  }

  void ExpandNode(uint32_t node) {
    ++stats_.nodes_expanded;
    const Tree::Node& n = st_.tree.nodes[node];
    if (n.leaf()) {
      for (uint32_t k = n.begin; k < n.end; ++k) PushSite(st_.tree.order[k]);
    } else {
      PushNode(n.left);
      PushNode(n.right);
    }
  }

  // Collects the site's qualifying warehouses; at most `limit` of them (the lowest ids) can
  // make the page, since they all share one distance.
  void VisitSite(uint32_t site, double km) {
    ++stats_.sites_scanned;
    const Site& s = *st_.sites[site];
    const int64_t* col = s.avail.data() + static_cast<size_t>(q_.item) * s.capacity;
    const bool on_page_boundary = km == q_.after_distance_km;
    const size_t first = hits_.size();
    for (size_t k = 0; k < s.members.size(); ++k) {
      if (col[k] < min_available_) continue;
      const uint32_t w = s.members[k];
      if (on_page_boundary && w <= q_.after_warehouse) continue;
      if (!q_.region_prefix.empty() && !absl::StartsWith(st_.regions[w], q_.region_prefix)) {
        continue;
      }
      hits_.push_back({w, col[k], km});
    }
    if (hits_.size() - first > q_.limit) {
      auto by_id = [](const Hit& a, const Hit& b) { return a.warehouse < b.warehouse; };
      std::nth_element(hits_.begin() + first, hits_.begin() + first + q_.limit, hits_.end(), by_id);
      hits_.resize(first + q_.limit);
    }
  }

  const State& st_;
  const Query& q_;
  SearchStats& stats_;
  const Place origin_;
  const int64_t min_available_;
  const Box* prefix_box_ = nullptr;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
  std::vector<Hit> hits_;
};

std::vector<StockIndex::Hit> StockIndex::Nearest(const Query& q) const {
  SearchStats ignored;
  return Nearest(q, &ignored);
}

std::vector<StockIndex::Hit> StockIndex::Nearest(const Query& q, SearchStats* stats) const {
  *stats = {};
  if (q.item < 0 || q.item >= item_count_ || q.limit == 0) return {};
  absl::ReaderMutexLock lock(&mu_);
  return Search(*state_, q, *stats).Run();
}

size_t StockIndex::warehouse_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return state_->codes.size();
}

std::string StockIndex::code(uint32_t id) const {
  absl::ReaderMutexLock lock(&mu_);
  return state_->codes.at(id);
}

std::string StockIndex::region_code(uint32_t id) const {
  absl::ReaderMutexLock lock(&mu_);
  return state_->regions.at(id);
}

GeoPoint StockIndex::location(uint32_t id) const {
  absl::ReaderMutexLock lock(&mu_);
  return state_->sites[state_->wh_site.at(id)]->place.point;
}

int64_t StockIndex::available(uint32_t id, int item) const {
  absl::ReaderMutexLock lock(&mu_);
  const State& st = *state_;
  if (item < 0 || item >= item_count_) std::abort();
  const Site& s = *st.sites[st.wh_site.at(id)];
  return s.avail[static_cast<size_t>(item) * s.capacity + st.wh_slot[id]];
}

std::optional<uint32_t> StockIndex::Find(absl::string_view code) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = state_->id_by_code.find(std::string(code));
  if (it == state_->id_by_code.end()) return std::nullopt;
  return it->second;
}

size_t StockIndex::site_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return state_->sites.size();
}

size_t StockIndex::indexed_site_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return state_->tree.order.size();
}

}  // namespace stockpile::catalogue
