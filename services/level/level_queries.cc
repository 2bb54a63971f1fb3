#include "services/level/level_queries.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/common/expiring_lots.h"
#include "services/common/page_token.h"
#include "services/common/status_macros.h"
#include "services/common/status_util.h"
#include "services/common/validation.h"
#include "services/level/keys.h"
#include "services/level/ledger.h"
#include "services/level/proto_util.h"
#include "services/level/stored_response.h"
#include "stockpile/internal/level_store.pb.h"

namespace stockpile::level {
namespace {

using namespace stockpile::v1;  // NOLINT

constexpr size_t kDefaultPageSize = 100;
constexpr size_t kMaxScannedPerPage = 200000;  // a sparse filter returns a short page, not a stall

absl::StatusOr<size_t> PageSize(int32_t requested, size_t max) {
  return common::PageSize(requested, kDefaultPageSize, max);
}

// A time from the request as microseconds since 1970, no earlier: movement keys order times as
// unsigned numbers, and the ledger stamps every movement with the server's clock, so nothing
// happened before 1970. A time outside what a Timestamp may hold is refused.
absl::StatusOr<int64_t> QueryMicros(absl::string_view field, const google::protobuf::Timestamp& t) {
  using google::protobuf::util::TimeUtil;
  if (t.seconds() < TimeUtil::kTimestampMinSeconds ||
      t.seconds() > TimeUtil::kTimestampMaxSeconds || t.nanos() < 0 || t.nanos() > 999'999'999) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must lie between 0001-01-01 and 9999-12-31; got ", t.seconds(), " seconds"));
  }
  return std::max<int64_t>(0, ToMicros(t));
}

// A hold whose expiry has passed is released by the sweep (every --hold-sweep-interval-ms, up
// to 10 minutes); until then it reads as what it already is: expired, no longer shippable. The
// stored record, and the stock it holds, change only when the sweep releases it.
Hold AsOfNow(Hold h, int64_t now_micros) {
  if (ActiveHoldExpired(h, now_micros)) h.set_state(HOLD_STATE_EXPIRED);
  return h;
}

// A scan over one column family, resumable with an opaque token (the last key returned, bound
// to the query's filters by `query`: a token of another query or listing is refused).
// Given `hosting`, keys of the form "{warehouse code}[/...]" outside it are passed over: a store
// narrowed by a restart with fewer --regions still holds the warehouses it gave up.
class PagedScan {
 public:
  PagedScan(const LevelStore& store, Cf cf, std::string prefix, const common::PageQuery& query,
            const Hosting* hosting = nullptr)
      : it_(store.NewIterator(cf)), prefix_(std::move(prefix)), query_(query), hosting_(hosting) {}

  absl::Status Start(absl::string_view token, absl::string_view from = "") {
    std::string start = prefix_ + std::string(from);
    if (!token.empty()) {
      ASSIGN_OR_RETURN(std::string last, query_.Position(token));
      if (!absl::StartsWith(last, prefix_)) return query_.Damaged();
      start = last + std::string(1, '\0');
    }
    it_->Seek(start);
    return absl::OkStatus();
  }

  // Calls `visit(key, value)` until it has accepted `limit` rows; returns the next token.
  template <typename Fn>
  absl::StatusOr<std::string> Run(size_t limit, Fn visit, absl::string_view end = "") {
    size_t accepted = 0, scanned = 0;
    std::string last;
    for (; it_->Valid(); it_->Next()) {
      absl::string_view key(it_->key().data(), it_->key().size());
      if (!absl::StartsWith(key, prefix_)) break;
      if (!end.empty() && key >= end) break;
      if (accepted == limit || scanned == kMaxScannedPerPage) return query_.Token(last);
      ++scanned;
      last = std::string(key);
      if (hosting_ != nullptr && !hosting_->HostsCode(key.substr(0, key.find('/')))) continue;
      absl::string_view value(it_->value().data(), it_->value().size());
      ASSIGN_OR_RETURN(bool took, visit(key, value));
      if (took) ++accepted;
    }
    RETURN_IF_ERROR(common::FromRocks(it_->status(), "scan"));
    return std::string();
  }

 private:
  std::unique_ptr<rocksdb::Iterator> it_;
  std::string prefix_;
  const common::PageQuery& query_;
  const Hosting* hosting_;
};

// A warehouse's movement history in time order: movements are keyed by warehouse × item, so
// this merges the warehouse's items (one iterator each; the item catalogue keeps them few).
// The token is the warehouse prefix and the time-id of the last movement returned.
class WarehouseHistoryScan {
 public:
  WarehouseHistoryScan(const LevelStore& store, const std::string& code,
                       const common::PageQuery& query)
      : store_(store), prefix_(code + "/"), query_(query) {}

  absl::Status Start(absl::string_view token, const std::string& from) {
    std::string after;  // resume strictly after this time-id
    if (!token.empty()) {
      ASSIGN_OR_RETURN(std::string last, query_.Position(token));
      if (!absl::StartsWith(last, prefix_) || last.size() != prefix_.size() + keys::kTimeIdSize) {
        return query_.Damaged();
      }
      after = last.substr(prefix_.size());
    }
    auto lister = store_.NewIterator(Cf::kMovements);
    for (lister->Seek(prefix_); lister->Valid();) {
      absl::string_view key(lister->key().data(), lister->key().size());
      if (!absl::StartsWith(key, prefix_) || key.size() < prefix_.size() + keys::kTimeIdSize + 1) {
        break;
      }
      const std::string item_prefix(key.substr(0, key.size() - keys::kTimeIdSize));
      Cursor cursor{store_.NewIterator(Cf::kMovements), item_prefix};
      cursor.it->Seek(item_prefix + (after.empty() ? from : after));
      if (!after.empty() && cursor.Valid() && cursor.time_id() == after) cursor.it->Next();
      RETURN_IF_ERROR(common::FromRocks(cursor.it->status(), "read movements"));
      if (cursor.Valid()) cursors_.push_back(std::move(cursor));
      lister->Seek(keys::PrefixEnd(item_prefix));  // the warehouse's next item
    }
    RETURN_IF_ERROR(common::FromRocks(lister->status(), "read movements"));
    return absl::OkStatus();
  }

  // As PagedScan::Run; `end` is a time-id bound (exclusive), empty for none.
  template <typename Fn>
  absl::StatusOr<std::string> Run(size_t limit, Fn visit, absl::string_view end = "") {
    size_t accepted = 0, scanned = 0;
    std::string last;
    while (true) {
      Cursor* next = nullptr;
      for (Cursor& c : cursors_) {
        if (c.Valid() && (next == nullptr || c.time_id() < next->time_id())) next = &c;
      }
      if (next == nullptr || (!end.empty() && next->time_id() >= end)) break;
      if (accepted == limit || scanned == kMaxScannedPerPage) return query_.Token(last);
      ++scanned;
      last = prefix_ + std::string(next->time_id());
      absl::string_view key(next->it->key().data(), next->it->key().size());
      absl::string_view value(next->it->value().data(), next->it->value().size());
      ASSIGN_OR_RETURN(bool took, visit(key, value));
      if (took) ++accepted;
      next->it->Next();
    }
    for (const Cursor& c : cursors_) {
      RETURN_IF_ERROR(common::FromRocks(c.it->status(), "read movements"));
    }
    return std::string();
  }

 private:
  struct Cursor {
    std::unique_ptr<rocksdb::Iterator> it;
    std::string prefix;  // "{code}/{item}/"
    bool Valid() const {
      return it->Valid() && it->key().starts_with(rocksdb::Slice(prefix.data(), prefix.size()));
    }
    absl::string_view time_id() const {
      return absl::string_view(it->key().data() + prefix.size(), keys::kTimeIdSize);
    }
  };
  const LevelStore& store_;
  std::string prefix_;  // "{code}/"
  const common::PageQuery& query_;
  std::vector<Cursor> cursors_;
};

template <typename Response>
absl::Status SetToken(Response* resp, absl::StatusOr<std::string> token) {
  if (!token.ok()) return token.status();
  resp->set_next_page_token(*std::move(token));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> LevelQueries::HostedCode(absl::string_view warehouse_name) const {
  ASSIGN_OR_RETURN(std::string code, common::WarehouseCodeFromName(warehouse_name));
  ASSIGN_OR_RETURN(std::string region, common::RegionOfWarehouseCode(code));
  RETURN_IF_ERROR(hosting_.CheckRegion(region));
  return code;
}

absl::StatusOr<std::string> LevelQueries::ExistingCode(absl::string_view warehouse_name) const {
  ASSIGN_OR_RETURN(std::string code, HostedCode(warehouse_name));
  ASSIGN_OR_RETURN(auto raw, store_.Get(Cf::kWarehouses, code));
  if (!raw.has_value()) {
    return absl::NotFoundError(absl::StrCat("warehouse ", warehouse_name, " does not exist"));
  }
  return code;
}

absl::Status LevelQueries::CheckKnownItem(absl::string_view item) const {
  if (item.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(common::CheckId("item", item, false));
  if (reference_.FindItem(item) == nullptr) {
    return absl::NotFoundError(absl::StrCat("item ", item, " is not in the item catalogue"));
  }
  return absl::OkStatus();
}

absl::Status LevelQueries::CheckListedPrefix(absl::string_view prefix) const {
  RETURN_IF_ERROR(common::CheckRegionPrefix(prefix));
  if (prefix.empty()) return absl::OkStatus();
  // A code no region has (4021 for 4201) is a typo wherever it falls: sending the clerk to
  // "the instance that hosts it" would have them look for one that cannot exist.
  RETURN_IF_ERROR(reference_.CheckRegionFilter(prefix));
  for (const std::string& hosted : hosting_.prefixes()) {
    if (absl::StartsWith(prefix, hosted) || absl::StartsWith(hosted, prefix)) {
      return absl::OkStatus();
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("region_prefix ", prefix, " is outside what this instance hosts (",
                   absl::StrJoin(hosting_.prefixes(), ","), "); ask the instance that hosts it"));
}

template <typename Request>
absl::StatusOr<std::string> LevelQueries::WarehouseOrPrefix(const Request& req) const {
  if (req.warehouse().empty()) return req.region_prefix();
  if (!req.region_prefix().empty()) {
    // Both used to list the warehouse and drop the prefix, an answer against the prefix.
    return absl::InvalidArgumentError(
        absl::StrCat("give warehouse or region_prefix, not both; got warehouse ",
                     req.warehouse().substr(0, 64), " and region_prefix ", req.region_prefix()));
  }
  ASSIGN_OR_RETURN(std::string code, ExistingCode(req.warehouse()));
  return code + "/";
}

absl::StatusOr<Warehouse> LevelQueries::GetWarehouse(absl::string_view name) const {
  ASSIGN_OR_RETURN(std::string code, HostedCode(name));
  ASSIGN_OR_RETURN(auto raw, store_.Get(Cf::kWarehouses, code));
  if (!raw.has_value()) {
    return absl::NotFoundError(absl::StrCat("warehouse ", name, " does not exist"));
  }
  return Parse<Warehouse>(*raw, "warehouse");
}

absl::StatusOr<ListWarehousesResponse> LevelQueries::ListWarehouses(
    const ListWarehousesRequest& req) const {
  RETURN_IF_ERROR(CheckListedPrefix(req.region_prefix()));
  ASSIGN_OR_RETURN(size_t limit, PageSize(req.page_size(), 1000));
  ListWarehousesResponse resp;
  common::PageQuery query("level ListWarehouses");
  query.Add("region_prefix", req.region_prefix());
  PagedScan scan(store_, Cf::kWarehouses, req.region_prefix(), query, &hosting_);
  RETURN_IF_ERROR(scan.Start(req.page_token()));
  RETURN_IF_ERROR(SetToken(
      &resp, scan.Run(limit, [&](absl::string_view, absl::string_view v) -> absl::StatusOr<bool> {
        ASSIGN_OR_RETURN(*resp.add_warehouses(), Parse<Warehouse>(v, "warehouse"));
        return true;
      })));
  return resp;
}

absl::StatusOr<Balance> LevelQueries::GetBalance(const GetBalanceRequest& req) const {
  RETURN_IF_ERROR(HostedCode(req.warehouse()).status());  // a foreign warehouse before an item
  RETURN_IF_ERROR(common::CheckId("item", req.item(), true));
  RETURN_IF_ERROR(CheckKnownItem(req.item()));
  ASSIGN_OR_RETURN(std::string code, ExistingCode(req.warehouse()));
  ASSIGN_OR_RETURN(auto raw, store_.Get(Cf::kBalances, keys::WarehouseItem(code, req.item())));
  Balance b;
  if (raw.has_value()) {
    ASSIGN_OR_RETURN(b, Parse<Balance>(*raw, "balance"));
  } else {
    b.set_warehouse(req.warehouse());
    b.set_item(req.item());
  }
  if (req.has_as_of_time()) {
    ASSIGN_OR_RETURN(const int64_t as_of, QueryMicros("as_of_time", req.as_of_time()));
    RETURN_IF_ERROR(AsOf(code, as_of, &b));
  }
  return b;
}

// Rebuilds the lots of `b` as they stood at `micros` from the newest movement of each lot at or
// before that time (every movement records its lot's balance after it).
absl::Status LevelQueries::AsOf(const std::string& code, int64_t micros, Balance* b) const {
  const std::string prefix = keys::MovementPrefix(code, b->item());
  std::map<std::string, LotBalance> lots;
  uint64_t newest_sequence = 0;  // of the first movement met going back: the newest
  size_t wanted = static_cast<size_t>(b->lots_size());
  auto it = store_.NewIterator(Cf::kMovements);
  it->SeekForPrev(prefix + keys::TimeId(micros, UINT64_MAX));
  for (; it->Valid() && lots.size() < wanted; it->Prev()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (!absl::StartsWith(key, prefix)) break;
    ASSIGN_OR_RETURN(
        Movement m,
        Parse<Movement>(absl::string_view(it->value().data(), it->value().size()), "movement"));
    if (newest_sequence == 0) newest_sequence = m.sequence();
    if (lots.contains(m.lot())) continue;
    LotBalance& lot = lots[m.lot()];
    lot.set_lot(m.lot());
    lot.set_expiry_date(m.expiry_date());
    lot.set_on_hand(m.on_hand_after());
    lot.set_held(m.held_after());
  }
  RETURN_IF_ERROR(common::FromRocks(it->status(), "read movements"));
  b->clear_lots();
  for (auto& [name, lot] : lots) {
    if (lot.on_hand() != 0 || lot.held() != 0) *b->add_lots() = lot;
  }
  b->set_in_transit(0);  // not reconstructed for past times (documented on as_of_time)
  b->set_sequence(newest_sequence);
  NormalizeBalance(b);
  *b->mutable_update_time() = ToTimestamp(micros);
  return absl::OkStatus();
}

absl::StatusOr<ListBalancesResponse> LevelQueries::ListBalances(
    const ListBalancesRequest& req) const {
  RETURN_IF_ERROR(CheckListedPrefix(req.region_prefix()));
  RETURN_IF_ERROR(CheckKnownItem(req.item()));
  ASSIGN_OR_RETURN(size_t limit, PageSize(req.page_size(), 10000));
  ASSIGN_OR_RETURN(const std::string prefix, WarehouseOrPrefix(req));
  const std::string item_suffix = req.item().empty() ? "" : "/" + req.item();
  ListBalancesResponse resp;
  common::PageQuery query("level ListBalances");
  query.Add("warehouse", req.warehouse())
      .Add("region_prefix", req.region_prefix())
      .Add("item", req.item())
      .AddInt("skip_zero", req.skip_zero());
  PagedScan scan(store_, Cf::kBalances, prefix, query, &hosting_);
  RETURN_IF_ERROR(scan.Start(req.page_token()));
  RETURN_IF_ERROR(SetToken(
      &resp, scan.Run(limit, [&](absl::string_view k, absl::string_view v) -> absl::StatusOr<bool> {
        if (!item_suffix.empty() && !absl::EndsWith(k, item_suffix)) return false;
        ASSIGN_OR_RETURN(Balance b, Parse<Balance>(v, "balance"));
        if (req.skip_zero() && b.on_hand() == 0 && b.in_transit() == 0) return false;
        *resp.add_balances() = std::move(b);
        return true;
      })));
  return resp;
}

absl::StatusOr<ListMovementsResponse> LevelQueries::ListMovements(
    const ListMovementsRequest& req) const {
  RETURN_IF_ERROR(CheckKnownItem(req.item()));
  RETURN_IF_ERROR(common::CheckId("reference", req.reference(), false));
  RETURN_IF_ERROR(common::CheckId("request_id", req.request_id(), false));
  ASSIGN_OR_RETURN(size_t limit, PageSize(req.page_size(), 1000));
  int64_t start = 0, end = INT64_MAX;
  if (req.has_start_time()) {
    ASSIGN_OR_RETURN(start, QueryMicros("start_time", req.start_time()));
  }
  if (req.has_end_time()) {
    ASSIGN_OR_RETURN(end, QueryMicros("end_time", req.end_time()));
  }
  if (req.has_start_time() && req.has_end_time() &&
      ToMicros(req.end_time()) < ToMicros(req.start_time())) {
    return absl::InvalidArgumentError("end_time is before start_time");
  }
  std::string code;
  if (!req.warehouse().empty()) {
    ASSIGN_OR_RETURN(code, ExistingCode(req.warehouse()));
  }
  ListMovementsResponse resp;
  auto keep = [&](const Movement& m) {
    const int64_t t = ToMicros(m.create_time());
    return t >= start && t < end && (req.item().empty() || m.item() == req.item()) &&
           (req.reference().empty() || m.reference() == req.reference()) &&
           (req.request_id().empty() || m.request_id() == req.request_id()) &&
           (code.empty() || m.warehouse() == req.warehouse()) &&
           hosting_.HostsWarehouseName(m.warehouse());
  };
  if (code.empty() && req.item().empty() && req.reference().empty() && req.request_id().empty()) {
    return absl::InvalidArgumentError("give warehouse, item, reference or request_id");
  }
  common::PageQuery query("level ListMovements");
  query.Add("warehouse", req.warehouse())
      .Add("item", req.item())
      .Add("reference", req.reference())
      .Add("request_id", req.request_id())
      .AddInt("start_time", start)
      .AddInt("end_time", end);
  if (!req.request_id().empty() && req.item().empty() && req.reference().empty()) {
    RETURN_IF_ERROR(RequestMovements(req, keep, limit, query, &resp));
    return resp;
  }
  auto take = [&](absl::string_view key, absl::string_view value) -> absl::StatusOr<bool> {
    ASSIGN_OR_RETURN(Movement m, MovementFromRecord(key, value));
    if (!keep(m)) return false;
    *resp.add_movements() = std::move(m);
    return true;
  };
  const std::string from = keys::TimeId(start, 0);
  const std::string end_time_id = end == INT64_MAX ? "" : keys::TimeId(end, 0);
  if (!code.empty() && req.item().empty()) {
    WarehouseHistoryScan scan(store_, code, query);
    RETURN_IF_ERROR(scan.Start(req.page_token(), from));
    RETURN_IF_ERROR(SetToken(&resp, scan.Run(limit, take, end_time_id)));
    return resp;
  }
  if (!code.empty()) {  // a warehouse × item: its own key range
    const std::string prefix = keys::MovementPrefix(code, req.item());
    PagedScan scan(store_, Cf::kMovements, prefix, query);
    RETURN_IF_ERROR(scan.Start(req.page_token(), from));
    RETURN_IF_ERROR(
        SetToken(&resp, scan.Run(limit, take, end_time_id.empty() ? "" : prefix + end_time_id)));
    return resp;
  }
  // An item or a reference: the index gives each movement's primary key.
  const std::string prefix =
      !req.item().empty() ? keys::ByItem(req.item()) : keys::ByReference(req.reference());
  PagedScan scan(store_, Cf::kMovementIndex, prefix, query);
  RETURN_IF_ERROR(scan.Start(req.page_token(), from));
  RETURN_IF_ERROR(SetToken(
      &resp, scan.Run(
                 limit,
                 [&](absl::string_view, absl::string_view primary) -> absl::StatusOr<bool> {
                   ASSIGN_OR_RETURN(auto raw, store_.Get(Cf::kMovements, primary));
                   if (!raw.has_value()) return false;
                   return take(primary, *raw);
                 },
                 end_time_id.empty() ? "" : prefix + end_time_id)));
  return resp;
}

// A request's movements are in its stored first result (filtered by warehouse if one is given:
// staff scoped to a region name their warehouse, and need not scan its history), in the order
// it wrote them. A page's position is how many of them (kept or not) the pages before it read:
// the stored result never changes. A batch may hold 1,000 operations: a page is page_size.
absl::Status LevelQueries::RequestMovements(const ListMovementsRequest& req,
                                            const std::function<bool(const Movement&)>& keep,
                                            size_t limit, const common::PageQuery& query,
                                            ListMovementsResponse* resp) const {
  const std::string& request_id = req.request_id();
  ASSIGN_OR_RETURN(const std::string position, query.Position(req.page_token()));
  size_t skip = 0;
  if (!position.empty() && !absl::SimpleAtoi(position, &skip)) return query.Damaged();
  ASSIGN_OR_RETURN(auto raw, store_.Get(Cf::kRequests, request_id));
  if (!raw.has_value()) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto record, Parse<internal::RequestRecord>(*raw, "request"));
  ApplyBatchResponse results;
  if (HoldsStockReply(record)) {
    // Only the movements are wanted: the balances' change entry is not read.
    ASSIGN_OR_RETURN(auto response, StoredResponse(record, request_id, nullptr));
    if (auto* batch = dynamic_cast<ApplyBatchResponse*>(response.get())) {
      results = std::move(*batch);
    } else {
      *results.add_results() = std::move(dynamic_cast<MovementResult&>(*response));
    }
  }
  size_t read = 0;
  for (auto& result : *results.mutable_results()) {
    for (auto& m : *result.mutable_movements()) {
      if (read++ < skip || !keep(m)) continue;
      if (static_cast<size_t>(resp->movements_size()) == limit) {
        resp->set_next_page_token(query.Token(absl::StrCat(read - 1)));
        return absl::OkStatus();
      }
      *resp->add_movements() = std::move(m);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Hold> LevelQueries::GetHold(absl::string_view name) const {
  if (!absl::StartsWith(name, "holds/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("hold name must be holds/{hold_id}; got ", name.substr(0, 64)));
  }
  absl::string_view id = name.substr(6);
  RETURN_IF_ERROR(common::CheckId("hold_id", id, true));
  ASSIGN_OR_RETURN(auto raw, store_.Get(Cf::kHolds, keys::Hold(id)));
  if (!raw.has_value()) return absl::NotFoundError(absl::StrCat("hold ", name, " does not exist"));
  ASSIGN_OR_RETURN(Hold h, Parse<Hold>(*raw, "hold"));
  return AsOfNow(std::move(h), clock_.NowMicros());
}

absl::StatusOr<ListHoldsResponse> LevelQueries::ListHolds(const ListHoldsRequest& req) const {
  ASSIGN_OR_RETURN(size_t limit, PageSize(req.page_size(), 1000));
  if (!req.warehouse().empty()) RETURN_IF_ERROR(ExistingCode(req.warehouse()).status());
  ListHoldsResponse resp;
  const int64_t now = clock_.NowMicros();
  common::PageQuery query("level ListHolds");
  query.Add("warehouse", req.warehouse()).AddInt("state", req.state());
  PagedScan scan(store_, Cf::kHolds, "h", query);
  RETURN_IF_ERROR(scan.Start(req.page_token()));
  RETURN_IF_ERROR(SetToken(
      &resp, scan.Run(limit, [&](absl::string_view, absl::string_view v) -> absl::StatusOr<bool> {
        ASSIGN_OR_RETURN(Hold stored, Parse<Hold>(v, "hold"));
        Hold h = AsOfNow(std::move(stored), now);
        if (!req.warehouse().empty() && h.warehouse() != req.warehouse()) {
          return false;
        }
        if (!hosting_.HostsWarehouseName(h.warehouse())) return false;
        if (req.state() != HOLD_STATE_UNSPECIFIED && h.state() != req.state()) {
          return false;
        }
        *resp.add_holds() = std::move(h);
        return true;
      })));
  return resp;
}

// Quotas and reserves are keyed "{warehouse code}/{item}...": one warehouse, or every hosted
// warehouse under a region prefix, optionally one item.
template <typename Record, typename Request, typename Response, typename Add>
absl::StatusOr<Response> LevelQueries::ListPerWarehouseItem(Cf cf, const Request& req,
                                                            absl::string_view listing,
                                                            absl::string_view what, Add add) const {
  RETURN_IF_ERROR(CheckListedPrefix(req.region_prefix()));
  RETURN_IF_ERROR(CheckKnownItem(req.item()));
  ASSIGN_OR_RETURN(size_t limit, PageSize(req.page_size(), 10000));
  ASSIGN_OR_RETURN(const std::string prefix, WarehouseOrPrefix(req));
  Response resp;
  common::PageQuery query(listing);
  query.Add("warehouse", req.warehouse())
      .Add("region_prefix", req.region_prefix())
      .Add("item", req.item());
  PagedScan scan(store_, cf, prefix, query, &hosting_);
  RETURN_IF_ERROR(scan.Start(req.page_token()));
  RETURN_IF_ERROR(SetToken(
      &resp, scan.Run(limit, [&](absl::string_view, absl::string_view v) -> absl::StatusOr<bool> {
        ASSIGN_OR_RETURN(Record r, Parse<Record>(v, what));
        if (!req.item().empty() && r.item() != req.item()) return false;
        add(resp, std::move(r));
        return true;
      })));
  return resp;
}

absl::StatusOr<ListQuotasResponse> LevelQueries::ListQuotas(const ListQuotasRequest& req) const {
  return ListPerWarehouseItem<Quota, ListQuotasRequest, ListQuotasResponse>(
      Cf::kQuotas, req, "level ListQuotas", "quota",
      [](ListQuotasResponse& resp, Quota q) { *resp.add_quotas() = std::move(q); });
}

absl::StatusOr<ListReservesResponse> LevelQueries::ListReserves(
    const ListReservesRequest& req) const {
  return ListPerWarehouseItem<Reserve, ListReservesRequest, ListReservesResponse>(
      Cf::kReserves, req, "level ListReserves", "reserve",
      [](ListReservesResponse& resp, Reserve r) { *resp.add_reserves() = std::move(r); });
}

absl::StatusOr<ListQuotaStatusResponse> LevelQueries::ListQuotaStatus(
    const ListQuotaStatusRequest& req, bool shortages) const {
  RETURN_IF_ERROR(CheckListedPrefix(req.region_prefix()));
  RETURN_IF_ERROR(CheckKnownItem(req.item()));
  ASSIGN_OR_RETURN(size_t limit, PageSize(req.page_size(), 10000));
  const int32_t today = Ledger::ReserveDay(clock_.NowMicros());
  ListQuotaStatusResponse resp;
  common::PageQuery query(shortages ? "level ListShortages" : "level ListOverstock");
  query.Add("region_prefix", req.region_prefix()).Add("item", req.item());
  PagedScan scan(store_, Cf::kQuotas, req.region_prefix(), query, &hosting_);
  RETURN_IF_ERROR(scan.Start(req.page_token()));
  RETURN_IF_ERROR(SetToken(
      &resp, scan.Run(limit, [&](absl::string_view k, absl::string_view v) -> absl::StatusOr<bool> {
        ASSIGN_OR_RETURN(Quota q, Parse<Quota>(v, "quota"));
        if (!req.item().empty() && q.item() != req.item()) return false;
        if (shortages ? q.min() <= 0 : q.max() <= 0) return false;
        ASSIGN_OR_RETURN(auto raw, store_.Get(Cf::kBalances, k));
        Balance b;
        if (raw.has_value()) {
          ASSIGN_OR_RETURN(b, Parse<Balance>(*raw, "balance"));
        }
        const int64_t usable = common::UsableStock(b, today);
        const int64_t gap = shortages ? q.min() - usable : b.on_hand() - q.max();
        if (gap <= 0) return false;
        QuotaStatus* s = resp.add_entries();
        s->set_warehouse(q.warehouse());
        s->set_item(q.item());
        s->set_on_hand(b.on_hand());
        s->set_available(b.available());
        s->set_min(q.min());
        s->set_max(q.max());
        s->set_gap(gap);
        s->set_usable(usable);
        return true;
      })));
  return resp;
}

absl::StatusOr<ListExpiringLotsResponse> LevelQueries::ListExpiringLots(
    const ListExpiringLotsRequest& req) const {
  RETURN_IF_ERROR(CheckListedPrefix(req.region_prefix()));
  ASSIGN_OR_RETURN(size_t limit, PageSize(req.page_size(), 10000));
  ASSIGN_OR_RETURN(const int32_t within, common::ExpiryWindowDays(req));
  const int32_t today = Ledger::ReserveDay(clock_.NowMicros());
  ListExpiringLotsResponse resp;
  common::PageQuery query("level ListExpiringLots");
  query.Add("region_prefix", req.region_prefix()).AddInt("within_days", within);
  PagedScan scan(store_, Cf::kBalances, req.region_prefix(), query, &hosting_);
  RETURN_IF_ERROR(scan.Start(req.page_token()));
  RETURN_IF_ERROR(SetToken(
      &resp, scan.Run(limit, [&](absl::string_view, absl::string_view v) -> absl::StatusOr<bool> {
        ASSIGN_OR_RETURN(Balance b, Parse<Balance>(v, "balance"));
        return common::AppendExpiringLots(b, today, within, &resp) > 0;
      })));
  return resp;
}

absl::Status LevelQueries::ReadChanges(uint64_t after, size_t max_entries, size_t max_bytes,
                                       std::vector<ChangeEntry>* out) const {
  auto it = store_.NewIterator(Cf::kChanges);
  size_t bytes = 0;
  for (it->Seek(keys::U64(after + 1));
       it->Valid() && out->size() < max_entries && bytes < max_bytes; it->Next()) {
    ChangeEntry e;
    if (!e.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat(
          "change entry ", keys::ReadU64(absl::string_view(it->key().data(), it->key().size())),
          " is unreadable"));
    }
    bytes += it->value().size();
    out->push_back(std::move(e));
  }
  RETURN_IF_ERROR(common::FromRocks(it->status(), "read changes"));
  return absl::OkStatus();
}

absl::StatusOr<std::string> LevelQueries::HistoryMismatch(
    uint64_t from, const google::protobuf::Timestamp* from_commit_time, uint64_t head) const {
  if (from == 0) return std::string();
  if (from > head) {
    return absl::StrCat("this instance's history ends at sequence ", head,
                        ", but the consumer has applied up to sequence ", from);
  }
  if (from_commit_time == nullptr) return std::string();
  std::vector<ChangeEntry> entry;
  RETURN_IF_ERROR(ReadChanges(from - 1, 1, 1, &entry));
  if (entry.empty() || entry[0].sequence() != from) {
    return absl::StrCat("this instance has no change entry ", from);
  }
  using google::protobuf::util::TimeUtil;
  if (entry[0].commit_time() != *from_commit_time) {
    return absl::StrCat("entry ", from, " here was committed at ",
                        TimeUtil::ToString(entry[0].commit_time()), ", the consumer's entry ", from,
                        " at ", TimeUtil::ToString(*from_commit_time));
  }
  return std::string();
}

}  // namespace stockpile::level
