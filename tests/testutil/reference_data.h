#pragma once

// The repository's reference data (../shared/data), loaded once per test binary and prefix:
// townships and villages only under `fine_prefix` (empty: all of them; a full load takes seconds).
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "services/common/reference_data.h"
#include "tests/testutil/process.h"

namespace stockpile::testing {

inline const common::ReferenceData& SharedReferenceData(const std::string& fine_prefix) {
  static std::mutex mu;
  static auto* loaded = new std::map<std::string, std::unique_ptr<common::ReferenceData>>();
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = (*loaded)[fine_prefix];
  if (slot == nullptr) {
    common::ReferenceData::Options options;
    if (!fine_prefix.empty()) options.fine_region_prefixes = {fine_prefix};
    // A test without its reference data cannot say anything: stop with the loader's message.
    slot = std::move(common::ReferenceData::Load(ReferenceDataDir(), options).value());
  }
  return *slot;
}

}  // namespace stockpile::testing
