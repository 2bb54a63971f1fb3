#include "tools/stockctl/output/table.h"

#include <algorithm>
#include <utility>

namespace stockpile::stockctl {
namespace {

// Decodes one UTF-8 sequence at `i`; returns the code point or -1 (and advances `i`).
int32_t NextCodePoint(absl::string_view s, size_t& i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = byte(i);
  size_t len = lead < 0x80           ? 1
               : (lead >> 5) == 0x6  ? 2
               : (lead >> 4) == 0xE  ? 3
               : (lead >> 3) == 0x1E ? 4
                                     : 0;
  if (len == 0 || i + len > s.size()) {
    ++i;
    return -1;
  }
  int32_t cp = len == 1 ? lead : lead & (0xFF >> (len + 1));
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) {
      ++i;
      return -1;
    }
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  i += len;
  return cp;
}

bool IsZeroWidth(int32_t cp) {
  return (cp >= 0x0300 && cp <= 0x036F) ||  // combining diacritics
         (cp >= 0x200B && cp <= 0x200F) ||  // zero-width space / joiners / marks
         (cp >= 0xFE00 && cp <= 0xFE0F) ||  // variation selectors
         cp == 0xFEFF;
}

// East Asian Wide (W) and Fullwidth (F) blocks that occur in practice.
bool IsWide(int32_t cp) {
  return (cp >= 0x1100 && cp <= 0x115F) ||    // Hangul Jamo
         (cp >= 0x2E80 && cp <= 0x303E) ||    // CJK radicals, punctuation (、。「」)
         (cp >= 0x3041 && cp <= 0x33FF) ||    // kana, bopomofo, CJK compatibility (㎡)
         (cp >= 0x3400 && cp <= 0x4DBF) ||    // CJK extension A
         (cp >= 0x4E00 && cp <= 0x9FFF) ||    // CJK unified ideographs
         (cp >= 0xA000 && cp <= 0xA4CF) ||    // Yi
         (cp >= 0xAC00 && cp <= 0xD7A3) ||    // Hangul syllables
         (cp >= 0xF900 && cp <= 0xFAFF) ||    // CJK compatibility ideographs
         (cp >= 0xFE30 && cp <= 0xFE4F) ||    // CJK compatibility forms
         (cp >= 0xFF00 && cp <= 0xFF60) ||    // fullwidth forms (（）：，)
         (cp >= 0xFFE0 && cp <= 0xFFE6) ||    // fullwidth signs (￥)
         (cp >= 0x1F300 && cp <= 0x1F64F) ||  // emoji
         (cp >= 0x1F900 && cp <= 0x1F9FF) ||
         (cp >= 0x20000 && cp <= 0x3FFFD);  // CJK extensions B..
}

void AppendPadded(std::string& out, const std::string& cell, size_t width, Table::Align align) {
  const size_t pad = width - std::min(width, DisplayWidth(cell));
  if (align == Table::Align::kRight) out.append(pad, ' ');
  out += cell;
  if (align == Table::Align::kLeft) out.append(pad, ' ');
}

void AppendLine(std::string& out, const std::vector<std::string>& cells,
                const std::vector<size_t>& widths, const std::vector<Table::Align>& aligns) {
  std::string line;
  for (size_t c = 0; c < widths.size(); ++c) {
    if (c > 0) line += "  ";
    AppendPadded(line, c < cells.size() ? cells[c] : "", widths[c], aligns[c]);
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  out += line;
  out += '\n';
}

}  // namespace

size_t DisplayWidth(absl::string_view text) {
  size_t width = 0;
  for (size_t i = 0; i < text.size();) {
    const int32_t cp = NextCodePoint(text, i);
    if (cp < 0) {
      width += 1;
    } else if (IsZeroWidth(cp) || cp < 0x20) {
      continue;
    } else {
      width += IsWide(cp) ? 2 : 1;
    }
  }
  return width;
}

Table::Table(std::vector<std::string> headers)
    : headers_(std::move(headers)), aligns_(headers_.size(), Align::kLeft) {}

Table& Table::AlignRight(size_t column) {
  if (column < aligns_.size()) aligns_[column] = Align::kRight;
  return *this;
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  std::vector<size_t> widths(headers_.size());
  for (size_t c = 0; c < headers_.size(); ++c) {
    widths[c] = DisplayWidth(headers_[c]);
    for (const auto& row : rows_) widths[c] = std::max(widths[c], DisplayWidth(row[c]));
  }
  std::string out;
  AppendLine(out, headers_, widths, aligns_);
  for (const auto& row : rows_) AppendLine(out, row, widths, aligns_);
  return out;
}

std::string RenderKeyValues(const std::vector<std::pair<std::string, std::string>>& pairs) {
  size_t width = 0;
  for (const auto& [key, value] : pairs) width = std::max(width, DisplayWidth(key));
  std::string out;
  for (const auto& [key, value] : pairs) {
    out += key;
    out += ':';
    if (!value.empty()) {  // no padding before nothing: lines end without trailing spaces
      out.append(width - DisplayWidth(key) + 1, ' ');
      out += value;
    }
    out += '\n';
  }
  return out;
}

}  // namespace stockpile::stockctl
