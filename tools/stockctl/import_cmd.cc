// import receipts FILE.csv | import stocktake FILE.csv
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "services/common/status_macros.h"
#include "services/common/validation.h"
#include "tools/stockctl/commands.h"
#include "tools/stockctl/csv_import.h"
#include "tools/stockctl/exit_codes.h"
#include "tools/stockctl/import_runner.h"
#include "tools/stockctl/output/progress.h"
#include "tools/stockctl/output/table.h"

namespace stockpile::stockctl {
namespace {

struct ImportFlags {
  std::string file;
  std::string errors_out;
  std::string rejected_out;
  size_t chunk_size = 1000;
  bool no_progress = false;
  std::string encoding = "utf-8";
};

// A redrawn bar on a terminal; otherwise a plain line at most every two seconds and at the end.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool enabled) : enabled_(enabled), tty_(isatty(STDERR_FILENO) == 1) {}

  void operator()(size_t done, size_t total) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (tty_) {
      std::cerr << "\r" << ProgressBar(done, total) << (done == total ? "\n" : "") << std::flush;
      return;
    }
    if (done == total || now - last_ >= std::chrono::seconds(2)) {
      std::cerr << "import: " << done << "/" << total << " rows sent\n";
      last_ = now;
    }
  }

 private:
  bool enabled_;
  bool tty_;
  std::chrono::steady_clock::time_point last_{};
};

absl::StatusOr<ItemCatalogue> FetchItems(Context& ctx) {
  v1::ListItemsResponse items;
  grpc::Status status =
      Call(ctx, &v1::LevelService::Stub::ListItems, v1::ListItemsRequest(), &items);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  ItemCatalogue catalogue;
  for (const auto& item : items.items()) catalogue[item.code()] = item.shelf_life_months();
  return catalogue;
}

absl::Status CannotWrite(const std::string& flag, const std::string& path, int error) {
  return absl::FailedPreconditionError(
      absl::StrCat(flag, ": cannot write ", path, ": ", std::strerror(error)));
}

// Checked before anything is sent: a script that reads the errors file must not find rows
// applied and no file. A file there is opened for appending (its content stays until the
// import rewrites it at the end); a new one is created and removed again.
absl::Status CheckWritable(const std::string& flag, const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) ::unlink(path.c_str());
  }
  if (fd < 0) return CannotWrite(flag, path, errno);
  ::close(fd);
  return absl::OkStatus();
}

absl::Status CheckOutputsWritable(const ImportFlags& f) {
  RETURN_IF_ERROR(CheckWritable("--errors-out", f.errors_out));
  return CheckWritable("--rejected-out", f.rejected_out);
}

// Writes the whole of `text`; a full disk shows only when the buffer is flushed at fclose.
absl::Status WriteOutputFile(const std::string& flag, const std::string& path,
                             const std::string& text) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) return CannotWrite(flag, path, errno);
  const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  const int write_error = errno;
  if (std::fclose(file) != 0) return CannotWrite(flag, path, errno);
  if (!written) return CannotWrite(flag, path, write_error);
  return absl::OkStatus();
}

std::string ErrorsCsv(const std::vector<RowError>& errors) {
  std::string csv = "line,error\n";
  for (const auto& e : errors) absl::StrAppend(&csv, e.line, ",", CsvEscape(e.error), "\n");
  return csv;
}

// The failed rows in the file's own encoding: staff fix them and run the same command again,
// --encoding included; UTF-8 rows read as GB18030 would go in garbled (or be refused).
absl::Status WriteRejectedRows(const ImportFlags& f, absl::string_view csv_text,
                               const ImportSummary& summary) {
  auto records = ParseCsv(csv_text);  // PrepareImport read it already: it parses
  const std::string rejected =
      records.ok() ? RejectedRowsCsv(*records, summary.errors, csv_text) : "";
  ASSIGN_OR_RETURN(std::string encoded, EncodeCsvText(rejected, f.encoding));
  return WriteOutputFile("--rejected-out", f.rejected_out, encoded);
}

// --errors-out and --rejected-out; false (and said on stderr) when one could not be written.
bool WriteReports(const ImportFlags& f, absl::string_view csv_text, const ImportSummary& summary) {
  std::vector<absl::Status> written;
  if (!f.errors_out.empty()) {
    written.push_back(WriteOutputFile("--errors-out", f.errors_out, ErrorsCsv(summary.errors)));
  }
  if (!f.rejected_out.empty()) written.push_back(WriteRejectedRows(f, csv_text, summary));
  bool ok = true;
  for (const absl::Status& s : written) {
    if (s.ok()) continue;
    std::cerr << "stockctl: " << s.message()
              << " (the rows sent stay applied; run the same import again to write it)\n";
    ok = false;
  }
  return ok;
}

void PrintSummary(Context& ctx, const std::string& base_id, const ImportSummary& s) {
  if (ctx.json()) {
    nlohmann::json doc{{"request_id", base_id},
                       {"rows_ok", s.rows_ok},
                       {"rows_already_in", s.rows_already_in},
                       {"rows_failed", s.rows_failed},
                       {"rows_not_sent", s.rows_not_sent},
                       {"errors", nlohmann::json::array()}};
    for (const auto& e : s.errors) doc["errors"].push_back({{"line", e.line}, {"error", e.error}});
    std::cout << doc.dump() << "\n";
    return;
  }
  std::cout << "rows ok: " << s.rows_ok;
  if (s.rows_already_in > 0) {
    std::cout << " (" << s.rows_already_in << " already in from an earlier run)";
  }
  std::cout << "\nrows failed: " << s.rows_failed << "\n";
  if (s.rows_not_sent > 0) std::cout << "rows not sent: " << s.rows_not_sent << "\n";
  if (s.errors.empty()) return;
  Table table({"LINE", "ERROR"});
  table.AlignRight(0);
  for (const auto& e : s.errors) table.AddRow({std::to_string(e.line), e.error});
  std::cout << "\n" << table.Render();
  if (s.rows_ok > 0) {
    // Request ids come from the file's content: an edited copy is a new import.
    std::cout << "\nFix the failed rows in a file of their own (--rejected-out writes one) and\n"
                 "import that, or fix their cause on the server (a suspended or missing\n"
                 "warehouse, stock an issue lacked) and run this same import again. Importing\n"
                 "an edited copy of this file would apply its "
              << s.rows_ok << (s.rows_ok == 1 ? " good row" : " good rows") << " again.\n";
  }
}

// Rows answered from an earlier run's first result were not applied now. That is what a re-run
// after an interruption needs; but a byte-identical sheet brought in on a later day (the same
// counts, the same weekly delivery list) is also "the same import", and for a stocktake a count
// silently not applied leaves the ledger wrong. So it is said loudly, with the way out.
void PrintAlreadyInNotice(ImportKind kind, const std::string& base_id, const ImportSummary& s) {
  if (s.rows_already_in == 0) return;
  const bool all = s.rows_already_in == s.rows_ok && s.rows_failed == 0 && s.rows_not_sent == 0;
  const bool count = kind == ImportKind::kStocktake;
  std::cerr << "stockctl: NOTE: "
            << (all ? std::string("every row") : absl::StrCat(s.rows_already_in, " rows"))
            << " of this file had been applied already, by an earlier run of this import\n"
            << "  (request ids " << base_id << "-c*: the same file content or --request-id);\n"
            << "  nothing new was applied for " << (all ? "any row" : "those rows") << ".\n"
            << "  If this finishes or repeats that run, nothing more is needed. If it is a new "
            << (count ? "count" : "receipt list") << "\n"
            << "  that only looks like the earlier sheet, import it on purpose with a new "
               "--request-id\n"
            << "  (e.g. --request-id=" << (count ? "stocktake-" : "receipts-")
            << "YYYY-MM-DD): every row of the file is then applied again.\n";
}

// Receipts of lots already past their expiry go in (expired stock does arrive, to be rotated
// out) but are issued only when named, never held or planned: most are a mistyped year, so say
// which rows.
void WarnOfExpiredReceipts(const PreparedImport& prepared) {
  const int32_t today = common::ReserveDay(absl::ToUnixMicros(absl::Now()));
  const std::vector<int> lines = ReceiptLinesAlreadyExpired(prepared, today);
  if (lines.empty()) return;
  std::cerr << "stockctl: warning: " << lines.size() << " receipt row"
            << (lines.size() == 1 ? "" : "s") << " had an expiry before today ("
            << common::FormatDate(today) << ", China Standard Time), line"
            << (lines.size() == 1 ? " " : "s ") << absl::StrJoin(lines, ", ")
            << ": stocked as expired, issued only when named, never held or planned. A mistyped "
               "year? "
               "Move such a lot with `stockctl rotate`\n";
}

// The level's change-stream head now (0 when it cannot be read): rows whose reply is at or
// below it were applied by an earlier run of the import.
uint64_t LevelHead(Context& ctx) {
  v1::InstanceInfo info;
  grpc::Status s =
      Call(ctx, &v1::LevelService::Stub::GetInstanceInfo, v1::GetInstanceInfoRequest(), &info);
  return s.ok() ? info.last_sequence() : 0;
}

// The server's advice for a reused request id ("use a new request_id") is wrong for an
// import: a new --request-id applies every row of the file again.
void PrintImportedBeforeHint(size_t rows_ok) {
  std::cerr << "stockctl: this file (or this --request-id) was imported before by another --actor, "
               "with\n"
               "  another --chunk-size or with a token of another scope, so the server refused to "
               "reuse its\n"
               "  request ids"
            << (rows_ok == 0 ? "; nothing more was applied" : "") << ".\n"
            << "  To finish that import or see its errors again, run it with the first run's "
               "--actor,\n"
               "  --chunk-size and token; rows refused as outside a token's scope go in from a "
               "file of\n"
               "  their own (--rejected-out writes one).\n"
               "  A new --request-id would apply the file's rows a second time.\n";
}

// Sends the prepared rows in chunks, with a progress line on stderr.
ImportSummary SendRows(Context& ctx, const ImportFlags& f, const std::string& base_id,
                       const PreparedImport& prepared) {
  ImportRunner::Options options{
      base_id,
      ctx.actor(),
      f.chunk_size,
      3,
      [](int attempt) { std::this_thread::sleep_for(std::chrono::milliseconds(200 * attempt)); },
      LevelHead(ctx)};
  ProgressPrinter progress(!f.no_progress);
  ImportRunner runner(
      options,
      [&ctx](const v1::ApplyBatchRequest& request, uint64_t* sequence) {
        v1::ApplyBatchResponse response;
        grpc::Status status = Call(ctx, &v1::LevelService::Stub::ApplyBatch, request, &response);
        *sequence = response.sequence();
        return status;
      },
      [&progress](size_t done, size_t total) { progress(done, total); });
  return runner.Run(prepared);
}

// The file's bytes, or why they cannot be read (missing, a directory, no permission).
absl::StatusOr<std::string> ReadImportFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is a directory, not a CSV file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::PermissionDeniedError(
        absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

int Import(Context& ctx, ImportKind kind, const ImportFlags& f) {
  absl::StatusOr<std::string> raw = ReadImportFile(f.file);
  if (!raw.ok()) return ctx.UsageError(std::string(raw.status().message()));
  absl::StatusOr<std::string> decoded = DecodeCsvText(*std::move(raw), f.encoding);
  if (!decoded.ok()) {
    return ctx.UsageError(absl::StrCat(f.file, ": ", decoded.status().message()));
  }
  std::stringstream text;
  text << *decoded;
  const std::string& user_id = ctx.options().request_id;
  if (!user_id.empty()) {
    auto ok = common::CheckId("--request-id", user_id, true);
    if (!ok.ok() || user_id.size() > 96) {
      return ctx.UsageError("--request-id for an import: 1-96 of [A-Za-z0-9._:-]");
    }
  }
  auto items = FetchItems(ctx);
  if (!items.ok()) {
    return ctx.Fail(grpc::Status(static_cast<grpc::StatusCode>(items.status().code()),
                                 std::string(items.status().message())));
  }
  auto prepared = PrepareImport(kind, text.str(), &*items);
  if (!prepared.ok())
    return ctx.UsageError(f.file + ": " + std::string(prepared.status().message()));
  if (absl::Status s = CheckOutputsWritable(f); !s.ok()) {
    return ctx.UsageError(absl::StrCat(s.message(), "; nothing was sent"));
  }
  const std::string base_id = ImportBaseRequestId(kind, text.str(), user_id);
  (ctx.json() ? std::cerr : std::cout) << "request-id: " << base_id << "\n";
  const ImportSummary summary = SendRows(ctx, f, base_id, *prepared);
  PrintSummary(ctx, base_id, summary);
  PrintAlreadyInNotice(kind, base_id, summary);
  WarnOfExpiredReceipts(*prepared);
  const bool reports_written = WriteReports(f, text.str(), summary);
  if (!summary.fatal.ok()) {
    const int code = ctx.Fail(summary.fatal);
    if (IsRequestIdConflict(summary.fatal)) PrintImportedBeforeHint(summary.rows_ok);
    return code;
  }
  if (!reports_written) return kExitUsage;
  return summary.rows_failed > 0 ? kExitImportBadRows : kExitOk;
}

void AddImportFlags(CLI::App* cmd, ImportFlags& f) {
  cmd->add_option("--errors-out", f.errors_out, "Write the per-row errors as CSV (line,error)");
  cmd->add_option("--rejected-out", f.rejected_out,
                  "Write the header and the failed rows as they were: fix and import that file");
  cmd->add_option("--chunk-size", f.chunk_size, "Operations per ApplyBatch (1-1000)")
      ->check(CLI::Range(1, 1000));
  cmd->add_flag("--no-progress", f.no_progress, "No progress output on stderr");
  cmd->add_option("--encoding", f.encoding,
                  "The file's text encoding: utf-8 (default), or gb18030/gbk (Excel's \"CSV\" on "
                  "Chinese Windows), converted to UTF-8; --rejected-out is written in it too");
}

}  // namespace

void AddImportCommands(CLI::App& app, Context& ctx, ActionMap& actions) {
  auto receipts = std::make_shared<ImportFlags>();
  auto stocktake = std::make_shared<ImportFlags>();
  auto* import = app.add_subcommand("import", "Import a CSV receipt list or stocktake sheet");
  auto* r = import->add_subcommand("receipts",
                                   "CSV columns: warehouse,item,lot,expiry_date,quantity,note");
  r->add_option("file", receipts->file, "CSV file with a header row")->required();
  AddImportFlags(r, *receipts);
  actions[r] = [&ctx, receipts] { return Import(ctx, ImportKind::kReceipts, *receipts); };
  auto* s = import->add_subcommand("stocktake",
                                   "CSV columns: warehouse,item,lot,expiry_date,counted,reason");
  s->add_option("file", stocktake->file, "CSV file with a header row")->required();
  AddImportFlags(s, *stocktake);
  actions[s] = [&ctx, stocktake] { return Import(ctx, ImportKind::kStocktake, *stocktake); };
}

}  // namespace stockpile::stockctl
