#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace stockpile::testing {

// Bytes in the WAL files of the RocksDB database in `db_dir`: what its next start replays.
inline uintmax_t WalBytes(const std::string& db_dir) {
  uintmax_t bytes = 0;
  for (const auto& f : std::filesystem::directory_iterator(db_dir)) {
    if (f.path().extension() == ".log") bytes += f.file_size();
  }
  return bytes;
}

}  // namespace stockpile::testing
