#pragma once

#include <cstddef>
#include <string>

namespace stockpile::stockctl {

// "[#########.....................]  30%  300/1000 rows" (`width` cells between brackets).
std::string ProgressBar(size_t done, size_t total, size_t width = 30);

}  // namespace stockpile::stockctl
