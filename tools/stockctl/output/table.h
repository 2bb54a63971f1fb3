#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace stockpile::stockctl {

// Terminal columns a UTF-8 string occupies: East Asian wide and fullwidth characters (Chinese,
// Japanese, Korean, fullwidth forms) count 2, combining marks and zero-width characters 0,
// everything else 1. Bytes that are not valid UTF-8 count 1 each.
size_t DisplayWidth(absl::string_view text);

// A text table with a header row; columns are padded to their widest cell by display width.
class Table {
 public:
  enum class Align { kLeft, kRight };

  explicit Table(std::vector<std::string> headers);

  // Right-aligns a column (numbers).
  Table& AlignRight(size_t column);
  // Missing cells render empty; extra cells are dropped.
  void AddRow(std::vector<std::string> cells);
  size_t row_count() const { return rows_.size(); }

  // Columns separated by two spaces; no trailing spaces; one '\n' per line.
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<Align> aligns_;
  std::vector<std::vector<std::string>> rows_;
};

// "key: value" lines with the keys padded to the same display width.
std::string RenderKeyValues(const std::vector<std::pair<std::string, std::string>>& pairs);

}  // namespace stockpile::stockctl
