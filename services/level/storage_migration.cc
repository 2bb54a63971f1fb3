#include "services/level/storage_migration.h"

#include <rocksdb/write_batch.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/status_macros.h"
#include "services/common/status_util.h"
#include "services/level/keys.h"
#include "services/level/proto_util.h"
#include "stockpile/v1/stock.pb.h"

namespace stockpile::level {
namespace {

constexpr size_t kRecordsPerWrite = 10000;

// Writes `batch` when it has grown (or `force`), then starts it again.
absl::Status Flush(LevelStore& store, rocksdb::WriteBatch& batch, bool force) {
  if (batch.Count() == 0 || (!force && batch.Count() < kRecordsPerWrite)) return absl::OkStatus();
  RETURN_IF_ERROR(store.Write(batch, /*sync=*/false));
  batch.Clear();
  return absl::OkStatus();
}

// An old movement key "{code}/" + time-id; a format-2 key has the item in between.
bool IsOldMovementKey(absl::string_view key) {
  return key.size() > keys::kTimeIdSize && key.find('/') == key.size() - keys::kTimeIdSize - 1;
}

// Index entries: the item and reference entries held the warehouse code; they now hold the
// primary key. An item entry names its item; a reference entry's item is read from the movement
// it points at (still under its old key here). The warehouse × item entries go: the primary key
// took their place.
absl::Status MigrateIndex(LevelStore& store) {
  rocksdb::WriteBatch batch;
  auto it = store.NewIterator(Cf::kMovementIndex);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    absl::string_view value(it->value().data(), it->value().size());
    if (key.empty() || key[0] == 'w') {
      RETURN_IF_ERROR(
          common::FromRocks(batch.Delete(store.handle(Cf::kMovementIndex), it->key()), "convert"));
    } else if (absl::StrContains(value, "/") || key.size() < keys::kTimeIdSize) {
      continue;  // converted already (codes never hold '/')
    } else {
      const std::string time_id(key.substr(key.size() - keys::kTimeIdSize));
      std::string item;
      if (key[0] == 'i') {  // "i{item}/" + time-id
        item = std::string(key.substr(1, key.size() - keys::kTimeIdSize - 2));
      } else {
        ASSIGN_OR_RETURN(auto raw, store.Get(Cf::kMovements, absl::StrCat(value, "/", time_id)));
        if (!raw.has_value()) continue;
        ASSIGN_OR_RETURN(auto m, Parse<stockpile::v1::Movement>(*raw, "movement"));
        item = m.item();
      }
      RETURN_IF_ERROR(common::FromRocks(batch.Put(store.handle(Cf::kMovementIndex), it->key(),
                                                  keys::MovementPrefix(value, item) + time_id),
                                        "convert"));
    }
    RETURN_IF_ERROR(Flush(store, batch, false));
  }
  RETURN_IF_ERROR(common::FromRocks(it->status(), "convert"));
  return Flush(store, batch, true);
}

}  // namespace

absl::StatusOr<uint64_t> MigrateToFormat2(LevelStore& store, internal::StoreMeta& meta) {
  RETURN_IF_ERROR(MigrateIndex(store));
  uint64_t moved = 0;
  rocksdb::WriteBatch batch;
  auto it = store.NewIterator(Cf::kMovements);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (!IsOldMovementKey(key)) continue;
    ASSIGN_OR_RETURN(auto m,
                     Parse<stockpile::v1::Movement>(
                         absl::string_view(it->value().data(), it->value().size()), "movement"));
    const absl::string_view code = key.substr(0, key.size() - keys::kTimeIdSize - 1);
    const std::string primary =
        keys::MovementPrefix(code, m.item()) + std::string(key.substr(code.size() + 1));
    RETURN_IF_ERROR(common::FromRocks(batch.Put(store.handle(Cf::kMovements), primary, it->value()),
                                      "convert"));
    RETURN_IF_ERROR(
        common::FromRocks(batch.Delete(store.handle(Cf::kMovements), it->key()), "convert"));
    ++moved;
    RETURN_IF_ERROR(Flush(store, batch, false));
  }
  RETURN_IF_ERROR(common::FromRocks(it->status(), "convert"));
  meta.set_storage_format(kStorageFormat);
  RETURN_IF_ERROR(common::FromRocks(
      batch.Put(store.handle(Cf::kDefault), std::string(keys::kMeta), meta.SerializeAsString()),
      "convert"));
  RETURN_IF_ERROR(store.Write(batch, /*sync=*/true));
  return moved;
}

}  // namespace stockpile::level
