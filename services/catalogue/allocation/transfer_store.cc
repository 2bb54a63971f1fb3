#include "services/catalogue/allocation/transfer_store.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/page_token.h"
#include "services/common/rocks_close.h"
#include "services/common/rocks_open.h"
#include "services/common/status_macros.h"
#include "services/common/status_util.h"
#include "services/common/validation.h"

namespace stockpile::catalogue::allocation {
namespace {

using namespace stockpile::v1;  // NOLINT

constexpr char kTransfer[] = "t/";    // t/{id} -> Transfer
constexpr char kByRegion[] = "x/";    // x/{destination region}/{id} -> ""
constexpr char kUnfinished[] = "u/";  // u/{id} -> ""
constexpr char kRequest[] = "r/";     // r/{request_id} -> fingerprint \0 transfer id
constexpr char kRevision[] = "e/";    // e/{id} -> etcd mod_revision of the stored copy
constexpr char kSequence[] = "m/sequence";
constexpr size_t kDefaultPage = 50, kMaxPage = 500;

std::string RegionKey(const Transfer& t) {
  return absl::StrCat(kByRegion, t.destination_region(), "/", t.id());
}

// The positions in the tokens List hands out: "{destination region code}/{transfer id}".
bool IsRegionKeyToken(absl::string_view token) {
  const size_t slash = token.find('/');
  if (slash == absl::string_view::npos || slash + 1 == token.size()) return false;
  return common::LevelOfRegionCode(token.substr(0, slash)) != LEVEL_UNSPECIFIED;
}

}  // namespace

bool Unfinished(const Transfer& t) {
  switch (t.state()) {
    case TRANSFER_STATE_HOLDING:
    case TRANSFER_STATE_READY:
    case TRANSFER_STATE_IN_TRANSIT:
      return true;
    case TRANSFER_STATE_PENDING_APPROVAL:
      return false;  // waits for a dispatcher, not for the coordinator
    default:
      break;
  }
  for (const auto& leg : t.legs()) {
    if (leg.state() == LEG_STATE_HELD || leg.state() == LEG_STATE_RECEIVED) return true;
    // Approved and ended before the hold was confirmed: a hold may stand; release it.
    if (leg.state() == LEG_STATE_PLANNED && !t.approved_by().empty()) return true;
  }
  return false;
}

bool Finished(const Transfer& t) {
  const bool ended = t.state() == TRANSFER_STATE_RECEIVED ||
                     t.state() == TRANSFER_STATE_CANCELLED || t.state() == TRANSFER_STATE_FAILED;
  return ended && !Unfinished(t);
}

TransferStore::TransferStore(std::unique_ptr<rocksdb::DB> db, bool sync)
    : db_(std::move(db)), sync_(sync) {}
TransferStore::~TransferStore() {
  if (db_) common::FlushBeforeClose(*db_);
}

absl::StatusOr<std::unique_ptr<TransferStore>> TransferStore::Open(const std::string& path,
                                                                   bool sync) {
  rocksdb::Options options;
  RETURN_IF_ERROR(common::PrepareToOpen(path, /*synced_writes=*/sync, options));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) return common::OpenFailure(s, path, options, "the transfer store");
  return std::unique_ptr<TransferStore>(new TransferStore(std::unique_ptr<rocksdb::DB>(raw), sync));
}

std::string EncodeRequest(const RequestRecord& request) {
  return absl::StrCat(request.fingerprint, std::string(1, '\0'), request.transfer_id);
}

absl::StatusOr<RequestRecord> DecodeRequest(absl::string_view request_id, absl::string_view raw) {
  const size_t zero = raw.rfind('\0');
  if (zero == absl::string_view::npos) return absl::DataLossError("stored request is unreadable");
  return RequestRecord{std::string(request_id), std::string(raw.substr(0, zero)),
                       std::string(raw.substr(zero + 1))};
}

absl::Status TransferStore::Save(const Transfer& t, const RequestRecord* request) {
  return Write(t, request, 0);
}

absl::Mutex& TransferStore::StripeFor(absl::string_view id) {
  return stripes_[absl::HashOf(id) % (sizeof(stripes_) / sizeof(stripes_[0]))];
}

bool ContentNotOlder(const Transfer& a, const Transfer& b) {
  if (a.audit_size() != b.audit_size()) return a.audit_size() > b.audit_size();
  const auto& x = a.update_time();
  const auto& y = b.update_time();
  return x.seconds() != y.seconds() ? x.seconds() > y.seconds() : x.nanos() >= y.nanos();
}

absl::StatusOr<bool> TransferStore::SaveIfNewer(const Transfer& t, const RequestRecord* request,
                                                int64_t revision) {
  absl::MutexLock lock(&StripeFor(t.id()));
  ASSIGN_OR_RETURN(int64_t stored, Revision(t.id()));
  bool older = revision <= stored;
  if (stored == 0) {
    ASSIGN_OR_RETURN(std::optional<Transfer> local, Get(t.id()));
    older = local.has_value() && !ContentNotOlder(t, *local);
  }
  if (older) {
    // The mirror saved this copy first; the request record (never changes) is still wanted.
    if (request != nullptr) RETURN_IF_ERROR(SaveRequest(*request));
    return false;
  }
  RETURN_IF_ERROR(Write(t, request, revision));
  return true;
}

absl::StatusOr<int64_t> TransferStore::Revision(absl::string_view id) const {
  std::string raw;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), absl::StrCat(kRevision, id), &raw);
  if (s.IsNotFound()) return 0;
  RETURN_IF_ERROR(common::FromRocks(s, "read transfer revision"));
  int64_t revision = 0;
  if (!absl::SimpleAtoi(raw, &revision)) return absl::DataLossError("bad transfer revision");
  return revision;
}

absl::StatusOr<int64_t> TransferStore::MaxRevision() const {
  int64_t max = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(kRevision); it->Valid() && it->key().starts_with(kRevision); it->Next()) {
    int64_t revision = 0;
    if (absl::SimpleAtoi(absl::string_view(it->value().data(), it->value().size()), &revision)) {
      max = std::max(max, revision);
    }
  }
  RETURN_IF_ERROR(common::FromRocks(it->status(), "read transfer revisions"));
  return max;
}

absl::Status TransferStore::ForgetRevision(absl::string_view id) {
  absl::MutexLock lock(&StripeFor(id));
  rocksdb::WriteOptions wo;
  wo.sync = sync_;
  return common::FromRocks(db_->Delete(wo, absl::StrCat(kRevision, id)), "forget a revision");
}

absl::Status TransferStore::ForgetRevisions() {
  std::vector<std::unique_ptr<absl::MutexLock>> locks;  // no SaveIfNewer in between
  for (absl::Mutex& stripe : stripes_) locks.push_back(std::make_unique<absl::MutexLock>(&stripe));
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(kRevision); it->Valid() && it->key().starts_with(kRevision); it->Next()) {
    batch.Delete(it->key());
  }
  RETURN_IF_ERROR(common::FromRocks(it->status(), "read transfer revisions"));
  rocksdb::WriteOptions wo;
  wo.sync = sync_;
  return common::FromRocks(db_->Write(wo, &batch), "forget revisions");
}

absl::Status TransferStore::SaveRequest(const RequestRecord& request) {
  rocksdb::WriteOptions wo;
  wo.sync = sync_;
  return common::FromRocks(
      db_->Put(wo, absl::StrCat(kRequest, request.request_id), EncodeRequest(request)),
      "save request record");
}

absl::Status TransferStore::Write(const Transfer& t, const RequestRecord* request,
                                  int64_t revision) {
  rocksdb::WriteBatch batch;
  if (revision > 0) batch.Put(absl::StrCat(kRevision, t.id()), std::to_string(revision));
  batch.Put(absl::StrCat(kTransfer, t.id()), t.SerializeAsString());
  batch.Put(RegionKey(t), "");
  if (Unfinished(t)) {
    batch.Put(absl::StrCat(kUnfinished, t.id()), "");
  } else {
    batch.Delete(absl::StrCat(kUnfinished, t.id()));
  }
  if (request != nullptr) {
    batch.Put(absl::StrCat(kRequest, request->request_id), EncodeRequest(*request));
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync_;
  return common::FromRocks(db_->Write(wo, &batch), "save transfer");
}

absl::StatusOr<std::optional<Transfer>> TransferStore::Get(absl::string_view id) const {
  std::string raw;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), absl::StrCat(kTransfer, id), &raw);
  if (s.IsNotFound()) return std::nullopt;
  RETURN_IF_ERROR(common::FromRocks(s, "read transfer"));
  Transfer t;
  if (!t.ParseFromString(raw)) return absl::DataLossError("stored transfer is unreadable");
  return t;
}

absl::StatusOr<std::optional<RequestRecord>> TransferStore::GetRequest(
    absl::string_view request_id) const {
  std::string raw;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), absl::StrCat(kRequest, request_id), &raw);
  if (s.IsNotFound()) return std::nullopt;
  RETURN_IF_ERROR(common::FromRocks(s, "read request record"));
  return DecodeRequest(request_id, raw);
}

absl::StatusOr<ListTransfersResponse> TransferStore::List(const ListTransfersRequest& req) const {
  ASSIGN_OR_RETURN(const size_t page, common::PageSize(req.page_size(), kDefaultPage, kMaxPage));
  const std::string prefix = absl::StrCat(kByRegion, req.region_prefix());
  common::PageQuery query("catalogue ListTransfers");
  query.Add("region_prefix", req.region_prefix()).AddInt("state", req.state());
  ASSIGN_OR_RETURN(const std::string position, query.Position(req.page_token()));
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  if (position.empty()) {
    it->Seek(prefix);
  } else {
    const std::string after = absl::StrCat(kByRegion, position);
    if (!absl::StartsWith(after, prefix) || !IsRegionKeyToken(position)) return query.Damaged();
    it->Seek(after);
    if (it->Valid() && it->key().ToString() == after) it->Next();
  }
  ListTransfersResponse resp;
  std::string last;
  for (; it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const std::string key = it->key().ToString();
    if (static_cast<size_t>(resp.transfers_size()) == page) {
      break;
    }
    const std::string id = key.substr(key.rfind('/') + 1);
    ASSIGN_OR_RETURN(auto t, Get(id));
    if (!t.has_value()) continue;
    if (req.state() != TRANSFER_STATE_UNSPECIFIED && t->state() != req.state()) continue;
    *resp.add_transfers() = std::move(*t);
    last = key.substr(strlen(kByRegion));
  }
  if (it->Valid() && it->key().starts_with(prefix)) resp.set_next_page_token(query.Token(last));
  RETURN_IF_ERROR(common::FromRocks(it->status(), "list transfers"));
  return resp;
}

absl::StatusOr<std::vector<std::string>> TransferStore::UnfinishedIds() const {
  std::vector<std::string> ids;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(kUnfinished); it->Valid() && it->key().starts_with(kUnfinished); it->Next()) {
    ids.push_back(it->key().ToString().substr(strlen(kUnfinished)));
  }
  RETURN_IF_ERROR(common::FromRocks(it->status(), "list unfinished transfers"));
  return ids;
}

absl::StatusOr<std::string> TransferStore::NewId(int64_t now_micros) {
  std::string raw;
  uint64_t seq = 0;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kSequence, &raw);
  if (s.ok()) (void)absl::SimpleAtoi(raw, &seq);
  ++seq;
  rocksdb::WriteOptions wo;
  wo.sync = sync_;
  RETURN_IF_ERROR(common::FromRocks(db_->Put(wo, kSequence, std::to_string(seq)), "sequence"));
  // The random part keeps ids of different replicas (separate stores, same second, same
  // sequence) apart: hold and request ids at the level services derive from this id.
  std::random_device random;
  const uint64_t salt = (uint64_t{random()} << 32) ^ random();
  return absl::StrCat("T", now_micros / 1'000'000, "-", seq, "-",
                      absl::Hex(salt & 0xffffffffffULL, absl::kZeroPad10));
}

}  // namespace stockpile::catalogue::allocation
