#include "tools/stockctl/output/progress.h"

#include "absl/strings/str_cat.h"

namespace stockpile::stockctl {

std::string ProgressBar(size_t done, size_t total, size_t width) {
  if (done > total) done = total;
  const size_t percent = total == 0 ? 100 : done * 100 / total;
  const size_t filled = total == 0 ? width : done * width / total;
  std::string bar = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
  return absl::StrCat(bar, " ",
                      percent < 10    ? "  "
                      : percent < 100 ? " "
                                      : "",
                      percent, "%  ", done, "/", total, " rows");
}

}  // namespace stockpile::stockctl
