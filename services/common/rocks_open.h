#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rocksdb {
struct DBOptions;
class Status;
}  // namespace rocksdb

namespace stockpile::common {

// Where a store may make a new RocksDB database. With create_if_missing RocksDB makes a new,
// empty database wherever it finds no CURRENT file, and its recovery then deletes the table
// files of the old database that the new one does not know: a lost CURRENT (or a --db pointing
// at the wrong directory) would start an empty store and destroy what the directory held. So a
// database is made only in a directory that does not exist yet or holds no files;
// subdirectories are not looked into (a volume's lost+found, the catalogue's transfers/:
// RocksDB keeps its own files in the directory itself). Creates the directory when it is
// missing and sets `options` for opening it: create_if_missing only when the directory holds
// no files; with `synced_writes` (every write is synced before it is answered), a WAL
// recovery that refuses to open on corruption other than a torn last record.
absl::Status PrepareToOpen(const std::string& path, bool synced_writes,
                           rocksdb::DBOptions& options);

// The error for a DB::Open of `path` that failed with `s` after PrepareToOpen. A database that
// was there but cannot be opened as it is (Corruption, no CURRENT, a file RocksDB needs is
// missing) is DATA_LOSS, naming the directory and saying its files were left alone; anything
// else (the lock held by another process, a permission) maps as FromRocks does. `what` names
// the store ("the ledger").
absl::Status OpenFailure(const rocksdb::Status& s, const std::string& path,
                         const rocksdb::DBOptions& options, absl::string_view what);

}  // namespace stockpile::common
