#include "services/common/rocks_close.h"

#include <rocksdb/db.h>

namespace stockpile::common {

void FlushBeforeClose(rocksdb::DB& db, std::vector<rocksdb::ColumnFamilyHandle*> families) {
  if (families.empty()) families.push_back(db.DefaultColumnFamily());
  rocksdb::FlushOptions flush;
  flush.allow_write_stall = true;
  db.Flush(flush, families).PermitUncheckedError();
}

}  // namespace stockpile::common
