#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "tools/bench/driver.h"

namespace stockpile::bench {

// JSON view of a run: rates, latency quantiles (ms) overall and per kind, errors by code.
nlohmann::json ResultToJson(const DriverResult& result);
// Human-readable lines for the same.
std::string ResultToText(const std::string& title, const DriverResult& result);

}  // namespace stockpile::bench
