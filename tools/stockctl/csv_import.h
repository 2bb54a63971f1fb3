#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "stockpile/v1/level_service.pb.h"

namespace stockpile::stockctl {

// One CSV record and the 1-based line it starts on (quoted fields may span lines).
struct CsvRecord {
  int line = 0;
  std::vector<std::string> fields;
};

// RFC 4180 CSV: commas, "quoted" fields with "" escapes and embedded newlines, LF or CRLF,
// an optional UTF-8 byte-order mark. An unterminated quote is an error naming its line.
absl::StatusOr<std::vector<CsvRecord>> ParseCsv(absl::string_view text);

// Quotes a field when it holds a comma, quote or newline.
std::string CsvEscape(absl::string_view field);

// The position of the header row: the first record that is not blank (records.size() when
// every record is blank). Blank lines are skipped before the header as after it.
size_t HeaderIndex(const std::vector<CsvRecord>& records);

enum class ImportKind { kReceipts, kStocktake };

// Item code -> shelf life in months (0: no expiry). From ListItems; lets rows be checked locally.
using ItemCatalogue = std::map<std::string, int32_t>;

struct ImportRow {
  int line = 0;
  stockpile::v1::Operation op;
};

struct RowError {
  int line = 0;
  std::string error;
};

// The file after local checks: good rows become operations, bad ones errors.
struct PreparedImport {
  std::vector<ImportRow> rows;
  std::vector<RowError> errors;
};

// Lines of the receipt rows whose expiry is before `today` (days since 1970-01-01, the China
// Standard Time day; common::ExpiredOn). A lot received already expired is issued only when
// named, never held, and is most often a mistyped year: stockctl warns (the level takes it;
// stock past its date does arrive, to be rotated out).
std::vector<int> ReceiptLinesAlreadyExpired(const PreparedImport& prepared, int32_t today);

// A file's bytes as UTF-8 text. `encoding` "utf-8" refuses anything else with a hint (line
// number; GBK is what Excel on Chinese Windows saves as "CSV"); "gb18030" (or "gbk", its
// subset) transcodes. UTF-16 ("Unicode text") is refused: save the sheet as CSV UTF-8.
// A file that is already UTF-8 (a BOM, or non-ASCII text that reads as UTF-8) is refused under
// "gb18030"/"gbk": converted again it would be stored garbled.
absl::StatusOr<std::string> DecodeCsvText(std::string raw, absl::string_view encoding);

// UTF-8 `text` in the `encoding` DecodeCsvText read (GB18030 for "gb18030" and "gbk"), so a
// file stockctl writes from an import's rows goes back in with the same --encoding.
absl::StatusOr<std::string> EncodeCsvText(absl::string_view text, absl::string_view encoding);

// Parses and checks every row. Only a problem with the file as a whole (unterminated quote,
// missing or unknown header columns) is an error; a bad row lands in `errors` with its line.
// `items` may be null: item codes are then checked by the server only.
absl::StatusOr<PreparedImport> PrepareImport(ImportKind kind, absl::string_view csv_text,
                                             const ItemCatalogue* items);

// The header and the rows with an error, as the file had them (CSV): fixed, that file imports
// alone. Empty when the records hold no header. With `original` (the file's text) it keeps the
// file's byte order mark and CRLF line ends: Excel on Chinese Windows reads a UTF-8 CSV
// without the mark as GBK, so the clerk fixing the rows would see (and save) garbled text.
std::string RejectedRowsCsv(const std::vector<CsvRecord>& records,
                            const std::vector<RowError>& errors, absl::string_view original = "");

// Request ids. The base is the user's --request-id or "import-<kind>-<hash of the file>", so
// re-running the same import reuses every id and the server applies nothing twice.
std::string ImportBaseRequestId(ImportKind kind, absl::string_view csv_text,
                                absl::string_view user_request_id);
std::string ChunkRequestId(absl::string_view base, size_t chunk_number);
std::string RowRequestId(absl::string_view base, size_t chunk_number, int line);

}  // namespace stockpile::stockctl
