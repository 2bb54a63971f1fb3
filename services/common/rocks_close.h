#pragma once

#include <vector>

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
}  // namespace rocksdb

namespace stockpile::common {

// Flushes the memtables of `families` (the default family when empty) before a store closes.
// RocksDB flushes at close only what was written without a WAL, so a store closed without
// this leaves its unflushed memtables in the WAL for the next start to replay: after a heavy
// load 3.9 s for a level's 260 MB. Flushed here they are written while the process drains, and
// a planned restart serves at once; a crash still replays, within the WAL size bound. A failed
// flush is not an error: the WAL is still there to replay.
void FlushBeforeClose(rocksdb::DB& db, std::vector<rocksdb::ColumnFamilyHandle*> families = {});

}  // namespace stockpile::common
