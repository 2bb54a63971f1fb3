#include "tools/stockctl/csv_import.h"

#include <iconv.h>
#include <openssl/evp.h>

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/common/expiring_lots.h"
#include "services/common/status_macros.h"
#include "services/common/validation.h"

namespace stockpile::stockctl {
namespace {

namespace v1 = stockpile::v1;

struct CsvParser {
  absl::string_view text;
  size_t pos = 0;
  int line = 1;

  // Reads one record starting at `pos`; returns false at the end of input.
  absl::StatusOr<bool> Next(CsvRecord& record) {
    if (pos >= text.size()) return false;
    record = CsvRecord{line, {}};
    std::string field;
    bool quoted = false;
    while (pos < text.size()) {
      const char c = text[pos++];
      if (quoted) {
        if (c == '"' && pos < text.size() && text[pos] == '"') {
          field += '"';
          ++pos;
        } else if (c == '"') {
          quoted = false;
        } else {
          if (c == '\n') ++line;
          field += c;
        }
      } else if (c == '"' && field.empty()) {
        quoted = true;
      } else if (c == ',') {
        record.fields.push_back(std::move(field));
        field.clear();
      } else if (c == '\n' || c == '\r') {
        if (c == '\r' && pos < text.size() && text[pos] == '\n') ++pos;
        ++line;
        break;
      } else {
        field += c;
      }
    }
    if (quoted) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", record.line, ": quoted field is never closed"));
    }
    record.fields.push_back(std::move(field));
    return true;
  }
};

struct Columns {
  std::map<std::string, size_t> index;  // lower-case name -> position

  std::string Get(const CsvRecord& record, const std::string& name) const {
    auto it = index.find(name);
    if (it == index.end() || it->second >= record.fields.size()) return "";
    return std::string(absl::StripAsciiWhitespace(record.fields[it->second]));
  }
};

absl::StatusOr<Columns> ReadHeader(ImportKind kind, const CsvRecord& header) {
  const std::vector<std::string> required =
      kind == ImportKind::kReceipts ? std::vector<std::string>{"warehouse", "item", "quantity"}
                                    : std::vector<std::string>{"warehouse", "item", "counted"};
  const std::set<std::string> known =
      kind == ImportKind::kReceipts
          ? std::set<std::string>{"warehouse", "item", "lot", "expiry_date", "quantity", "note"}
          : std::set<std::string>{"warehouse", "item", "lot", "expiry_date", "counted", "reason"};
  Columns columns;
  for (size_t i = 0; i < header.fields.size(); ++i) {
    std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(header.fields[i]));
    if (!known.count(name)) {
      return absl::InvalidArgumentError(absl::StrCat("line ", header.line, ": unknown column \"",
                                                     name, "\"; expected ",
                                                     absl::StrJoin(known, ",")));
    }
    if (!columns.index.emplace(name, i).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", header.line, ": column \"", name, "\" appears twice"));
    }
  }
  for (const auto& name : required) {
    if (!columns.index.count(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", header.line, ": required column \"", name, "\" is missing"));
    }
  }
  return columns;
}

absl::StatusOr<std::string> CheckWarehouse(const std::string& value) {
  if (value.empty()) return absl::InvalidArgumentError("warehouse is required");
  absl::string_view code = value;
  absl::ConsumePrefix(&code, "warehouses/");  // a code or a resource name
  auto region = common::RegionOfWarehouseCode(code);
  if (!region.ok()) return region.status();
  return common::WarehouseName(code);
}

absl::StatusOr<int64_t> ParseQuantity(absl::string_view field, const std::string& value,
                                      bool allow_zero) {
  int64_t q = 0;
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  if (!absl::SimpleAtoi(value, &q)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be a whole number; got \"", value.substr(0, 40), "\""));
  }
  if (allow_zero && q == 0) return q;
  if (q < 0 && allow_zero) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must not be negative; got ", q));
  }
  RETURN_IF_ERROR(common::CheckPositiveQuantity(field, q));
  return q;
}

// Item code, and lot / expiry as the item's shelf life requires.
absl::Status CheckItemLot(const std::string& item, const std::string& lot,
                          const std::string& expiry, const ItemCatalogue* items) {
  RETURN_IF_ERROR(common::CheckId("item", item, /*required=*/true));
  RETURN_IF_ERROR(common::CheckId("lot", lot, /*required=*/false));
  if (!expiry.empty()) RETURN_IF_ERROR(common::ParseDate("expiry_date", expiry).status());
  if (items == nullptr) return absl::OkStatus();
  auto it = items->find(item);
  if (it == items->end()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown item \"", item, "\""));
  }
  if (it->second > 0 && (lot.empty() || expiry.empty())) {
    return absl::InvalidArgumentError(
        absl::StrCat("item ", item, " has a shelf life: lot and expiry_date are required"));
  }
  return absl::OkStatus();
}

// A note typed over several lines in a spreadsheet cell (Alt+Enter in Excel): the ledger keeps
// one-line notes, so each line break becomes "; ".
std::string OneLine(absl::string_view text) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::ConsumeSuffix(&line, "\r");
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    if (!out.empty()) out += "; ";
    out.append(line.data(), line.size());
  }
  return out;
}

absl::StatusOr<v1::Operation> ReceiptRow(const Columns& cols, const CsvRecord& r,
                                         const ItemCatalogue* items) {
  v1::Operation op;
  v1::ReceiveOp* receive = op.mutable_receive();
  ASSIGN_OR_RETURN(*receive->mutable_warehouse(), CheckWarehouse(cols.Get(r, "warehouse")));
  receive->set_item(cols.Get(r, "item"));
  receive->set_lot(cols.Get(r, "lot"));
  receive->set_expiry_date(cols.Get(r, "expiry_date"));
  RETURN_IF_ERROR(CheckItemLot(receive->item(), receive->lot(), receive->expiry_date(), items));
  ASSIGN_OR_RETURN(int64_t q, ParseQuantity("quantity", cols.Get(r, "quantity"), false));
  receive->set_quantity(q);
  receive->set_note(OneLine(cols.Get(r, "note")));
  RETURN_IF_ERROR(common::CheckText("note", receive->note(), common::kMaxTextLength, false));
  return op;
}

absl::StatusOr<v1::Operation> StocktakeRow(const Columns& cols, const CsvRecord& r,
                                           const ItemCatalogue* items) {
  v1::Operation op;
  v1::StocktakeOp* take = op.mutable_stocktake();
  ASSIGN_OR_RETURN(*take->mutable_warehouse(), CheckWarehouse(cols.Get(r, "warehouse")));
  take->set_item(cols.Get(r, "item"));
  v1::StocktakeCount* count = take->add_counts();
  count->set_lot(cols.Get(r, "lot"));
  count->set_expiry_date(cols.Get(r, "expiry_date"));
  // A shelf-life item's count must name its lot. Others go without one, so the level can tell
  // an empty lot (the whole shelf: refused where stock is kept in named lots) from "DEFAULT".
  const bool shelf_life =
      items != nullptr && items->count(take->item()) && items->at(take->item()) > 0;
  if (shelf_life && count->lot().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("item ", take->item(), " has a shelf life: lot is required"));
  }
  RETURN_IF_ERROR(CheckItemLot(take->item(), count->lot(), "", nullptr));
  if (!count->expiry_date().empty()) {
    RETURN_IF_ERROR(common::ParseDate("expiry_date", count->expiry_date()).status());
  }
  if (items != nullptr && !items->count(take->item())) {
    return absl::InvalidArgumentError(absl::StrCat("unknown item \"", take->item(), "\""));
  }
  ASSIGN_OR_RETURN(int64_t counted, ParseQuantity("counted", cols.Get(r, "counted"), true));
  count->set_counted(counted);
  take->set_reason(OneLine(cols.Get(r, "reason")));
  RETURN_IF_ERROR(common::CheckText("reason", take->reason(), common::kMaxTextLength, false));
  return op;
}

bool IsBlank(const CsvRecord& record) {
  return std::all_of(record.fields.begin(), record.fields.end(),
                     [](const std::string& f) { return absl::StripAsciiWhitespace(f).empty(); });
}

// Two counts of the same lot in one sheet would make the second silently win. A count without
// a lot is the DEFAULT lot's where the level takes it at all.
std::string StocktakeKey(const v1::Operation& op) {
  const auto& take = op.stocktake();
  const std::string& lot = take.counts(0).lot();
  return absl::StrCat(take.warehouse(), "|", take.item(), "|", lot.empty() ? "DEFAULT" : lot);
}

}  // namespace

absl::StatusOr<std::vector<CsvRecord>> ParseCsv(absl::string_view text) {
  if (absl::StartsWith(text, "\xEF\xBB\xBF")) text.remove_prefix(3);
  CsvParser parser{text};
  std::vector<CsvRecord> records;
  CsvRecord record;
  while (true) {
    ASSIGN_OR_RETURN(bool more, parser.Next(record));
    if (!more) break;
    records.push_back(std::move(record));
  }
  return records;
}

std::string CsvEscape(absl::string_view field) {
  if (field.find_first_of(",\"\r\n") == absl::string_view::npos) return std::string(field);
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

size_t HeaderIndex(const std::vector<CsvRecord>& records) {
  size_t i = 0;
  while (i < records.size() && IsBlank(records[i])) ++i;
  return i;
}

std::string RejectedRowsCsv(const std::vector<CsvRecord>& records,
                            const std::vector<RowError>& errors, absl::string_view original) {
  const size_t header = HeaderIndex(records);
  if (header == records.size()) return "";
  std::set<int> failed;
  for (const auto& e : errors) failed.insert(e.line);
  constexpr absl::string_view kBom = "\xEF\xBB\xBF";
  std::string out(absl::StartsWith(original, kBom) ? kBom : "");
  const size_t first_end = original.find('\n');
  const bool crlf =
      first_end != absl::string_view::npos && first_end > 0 && original[first_end - 1] == '\r';
  for (size_t i = header; i < records.size(); ++i) {
    if (i != header && !failed.contains(records[i].line)) continue;
    std::vector<std::string> fields;
    for (const auto& f : records[i].fields) fields.push_back(CsvEscape(f));
    absl::StrAppend(&out, absl::StrJoin(fields, ","), crlf ? "\r\n" : "\n");
  }
  return out;
}

namespace {

// 1-based line of byte `offset` in `text`.
int LineAt(absl::string_view text, size_t offset) {
  return 1 + int(std::count(text.begin(), text.begin() + std::min(offset, text.size()), '\n'));
}

// 1-based number of the first line that is not valid UTF-8 (0: none).
int FirstLineNotUtf8(absl::string_view text) {
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    if (!common::IsValidUtf8(line)) return number;
  }
  return 0;
}

bool IsGb18030(absl::string_view encoding) {
  const std::string name = absl::AsciiStrToLower(encoding);
  return name == "gb18030" || name == "gbk";
}

// `text` converted by iconv; on failure, the offset of the first byte it could not convert.
absl::StatusOr<std::string> Convert(absl::string_view text, const char* from, const char* to,
                                    size_t* bad_offset) {
  iconv_t cd = iconv_open(to, from);
  if (cd == reinterpret_cast<iconv_t>(-1)) {
    return absl::InternalError(absl::StrCat("this system cannot convert ", from, " (iconv)"));
  }
  // Neither direction more than doubles the size (a 2-byte UTF-8 character may take 4 bytes).
  std::string out(text.size() * 2 + 16, '\0');
  char* in = const_cast<char*>(text.data());
  size_t in_left = text.size();
  char* dest = out.data();
  size_t dest_left = out.size();
  const size_t done = iconv(cd, &in, &in_left, &dest, &dest_left);
  iconv_close(cd);
  if (done == static_cast<size_t>(-1)) {
    *bad_offset = text.size() - in_left;
    return absl::InvalidArgumentError("not convertible");
  }
  out.resize(out.size() - dest_left);
  return out;
}

// A UTF-8 file (a "CSV UTF-8" sheet, or a --rejected-out file of an earlier stockctl) read as
// GB18030 would mostly convert without an error and store garbled text for good.
bool IsAlreadyUtf8(absl::string_view raw) {
  if (absl::StartsWith(raw, "\xEF\xBB\xBF")) return true;
  const bool non_ascii =
      std::any_of(raw.begin(), raw.end(), [](char c) { return (c & 0x80) != 0; });
  return non_ascii && common::IsValidUtf8(raw);
}

absl::StatusOr<std::string> FromGb18030(absl::string_view raw) {
  if (IsAlreadyUtf8(raw)) {
    return absl::InvalidArgumentError(
        "the file is already UTF-8 (its text reads as UTF-8), so --encoding=gb18030 would garble "
        "it: import it without --encoding; nothing was sent");
  }
  size_t bad = 0;
  auto converted = Convert(raw, "GB18030", "UTF-8", &bad);
  if (converted.ok() || converted.status().code() != absl::StatusCode::kInvalidArgument) {
    return converted;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("line ", LineAt(raw, bad), " is not GB18030/GBK text either"));
}

}  // namespace

absl::StatusOr<std::string> DecodeCsvText(std::string raw, absl::string_view encoding) {
  const bool utf16 = absl::StartsWith(raw, "\xFF\xFE") || absl::StartsWith(raw, "\xFE\xFF") ||
                     raw.find('\0') != std::string::npos;
  if (utf16) {
    return absl::InvalidArgumentError(
        "the file is UTF-16 (Excel's \"Unicode text\"), not CSV: save it as \"CSV UTF-8\"");
  }
  if (IsGb18030(encoding)) return FromGb18030(raw);
  const std::string wanted = absl::AsciiStrToLower(encoding);
  if (wanted != "utf-8" && wanted != "utf8") {
    return absl::InvalidArgumentError(
        absl::StrCat("--encoding must be utf-8, gb18030 or gbk; got ", encoding));
  }
  const int bad_line = FirstLineNotUtf8(raw);
  if (bad_line == 0) return raw;
  return absl::InvalidArgumentError(absl::StrCat(
      "line ", bad_line,
      " is not UTF-8; the file looks like GBK/GB18030, which Excel on Chinese Windows saves as "
      "\"CSV\": pass --encoding=gb18030, or save it as \"CSV UTF-8\"; nothing was sent"));
}

std::vector<int> ReceiptLinesAlreadyExpired(const PreparedImport& prepared, int32_t today) {
  std::vector<int> lines;
  for (const ImportRow& row : prepared.rows) {
    if (row.op.has_receive() && common::ExpiredOn(row.op.receive().expiry_date(), today)) {
      lines.push_back(row.line);
    }
  }
  return lines;
}

absl::StatusOr<std::string> EncodeCsvText(absl::string_view text, absl::string_view encoding) {
  if (!IsGb18030(encoding)) return std::string(text);
  size_t bad = 0;
  auto converted = Convert(text, "UTF-8", "GB18030", &bad);
  if (converted.ok() || converted.status().code() != absl::StatusCode::kInvalidArgument) {
    return converted;
  }
  // GB18030 encodes every Unicode character: only text that is not UTF-8 gets here.
  return absl::InternalError(absl::StrCat("cannot write line ", LineAt(text, bad), " as GB18030"));
}

absl::StatusOr<PreparedImport> PrepareImport(ImportKind kind, absl::string_view csv_text,
                                             const ItemCatalogue* items) {
  ASSIGN_OR_RETURN(std::vector<CsvRecord> records, ParseCsv(csv_text));
  // Blank lines are skipped before the header as after it; lines keep the file's numbers.
  const size_t header = HeaderIndex(records);
  if (header == records.size()) {
    return absl::InvalidArgumentError("the file is empty: no header row");
  }
  ASSIGN_OR_RETURN(Columns columns, ReadHeader(kind, records[header]));
  const size_t field_count = records[header].fields.size();
  PreparedImport prepared;
  std::map<std::string, int> first_line_of_lot;
  for (size_t i = header + 1; i < records.size(); ++i) {
    const CsvRecord& record = records[i];
    if (IsBlank(record)) continue;
    if (record.fields.size() != field_count) {
      prepared.errors.push_back({record.line, absl::StrCat("expected ", field_count,
                                                           " fields, got ", record.fields.size())});
      continue;
    }
    auto op = kind == ImportKind::kReceipts ? ReceiptRow(columns, record, items)
                                            : StocktakeRow(columns, record, items);
    if (!op.ok()) {
      prepared.errors.push_back({record.line, std::string(op.status().message())});
      continue;
    }
    if (kind == ImportKind::kStocktake) {
      auto [it, fresh] = first_line_of_lot.emplace(StocktakeKey(*op), record.line);
      if (!fresh) {
        prepared.errors.push_back(
            {record.line, absl::StrCat("the same lot is already counted on line ", it->second)});
        continue;
      }
    }
    prepared.rows.push_back({record.line, *std::move(op)});
  }
  return prepared;
}

std::string ImportBaseRequestId(ImportKind kind, absl::string_view csv_text,
                                absl::string_view user_request_id) {
  if (!user_request_id.empty()) return std::string(user_request_id);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(csv_text.data(), csv_text.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < 12 && i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xF];
  }
  return absl::StrCat("import-", kind == ImportKind::kReceipts ? "receipts-" : "stocktake-", hex);
}

std::string ChunkRequestId(absl::string_view base, size_t chunk_number) {
  return absl::StrCat(base, "-c", chunk_number);
}

std::string RowRequestId(absl::string_view base, size_t chunk_number, int line) {
  return absl::StrCat(base, "-c", chunk_number, "-l", line);
}

}  // namespace stockpile::stockctl
