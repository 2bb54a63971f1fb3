#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "services/common/expiring_lots.h"
#include "services/common/validation.h"
#include "tests/testutil/status_matchers.h"
#include "tools/stockctl/csv_import.h"

namespace stockpile::stockctl {
namespace {

using ::stockpile::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const ItemCatalogue kItems = {{"SH-0001", 0}, {"FW-0001", 12}};

TEST(ParseCsvTest, QuotedFieldsWithCommasQuotesAndNewlines) {
  auto records = ParseCsv("a,b\r\n\"x,1\",\"say \"\"hi\"\"\"\n\"two\nlines\",z\n");
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 3u);
  EXPECT_THAT((*records)[1].fields, ElementsAre("x,1", "say \"hi\""));
  EXPECT_EQ((*records)[1].line, 2);
  EXPECT_THAT((*records)[2].fields, ElementsAre("two\nlines", "z"));
  EXPECT_EQ((*records)[2].line, 3);
}

TEST(ParseCsvTest, LineNumbersCountEmbeddedNewlines) {
  auto records = ParseCsv("h\n\"a\nb\nc\"\nnext\n");
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 3u);
  EXPECT_EQ((*records)[2].line, 5);
}

TEST(ParseCsvTest, ByteOrderMarkIsSkipped) {
  auto records = ParseCsv("\xEF\xBB\xBFwarehouse,item\n");
  ASSERT_TRUE(records.ok());
  EXPECT_EQ((*records)[0].fields[0], "warehouse");
}

TEST(ParseCsvTest, UnterminatedQuoteNamesItsLine) {
  EXPECT_THAT(ParseCsv("a\n\"open\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 2")));
}

TEST(CsvEscapeTest, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(CsvEscape("plain"), "plain");
  EXPECT_EQ(CsvEscape("a,\"b\""), "\"a,\"\"b\"\"\"");
}

TEST(PrepareImportTest, GoodReceiptRowsBecomeReceiveOps) {
  auto prepared = PrepareImport(ImportKind::kReceipts,
                                "warehouse,item,lot,expiry_date,quantity,note\n"
                                "420102-W001,SH-0001,,,5,donor A\n"
                                "warehouses/420102-W001,FW-0001,L1,2027-01-31,10,\n",
                                &kItems);
  ASSERT_TRUE(prepared.ok());
  EXPECT_TRUE(prepared->errors.empty());
  ASSERT_EQ(prepared->rows.size(), 2u);
  const auto& first = prepared->rows[0].op.receive();
  EXPECT_EQ(first.warehouse(), "warehouses/420102-W001");
  EXPECT_EQ(first.quantity(), 5);
  EXPECT_EQ(first.note(), "donor A");
  EXPECT_EQ(prepared->rows[1].line, 3);
  EXPECT_EQ(prepared->rows[1].op.receive().expiry_date(), "2027-01-31");
}

// A receipt of a lot already past its expiry (most often 2025 typed for 2027) goes in but is
// never issued or held unless named: stockctl names the rows so the clerk can check them.
TEST(PrepareImportTest, ReceiptRowsAlreadyExpiredAreFoundByLine) {
  auto prepared = PrepareImport(ImportKind::kReceipts,
                                "warehouse,item,lot,expiry_date,quantity,note\n"
                                "420102-W001,FW-0001,L1,2025-01-31,10,\n"
                                "420102-W001,FW-0001,L2,2027-01-31,10,\n"
                                "420102-W001,SH-0001,,,5,\n"
                                "420102-W001,FW-0001,L3,2026-12-04,10,\n"
                                "420102-W001,FW-0001,L4,2026-12-05,10,\n",
                                &kItems);
  ASSERT_TRUE(prepared.ok());
  const int32_t today = *common::ParseDate("today", "2026-12-05");
  EXPECT_EQ(ReceiptLinesAlreadyExpired(*prepared, today), (std::vector<int>{2, 5}));
  EXPECT_TRUE(common::ExpiredOn("2026-12-04", today));
  EXPECT_FALSE(common::ExpiredOn("2026-12-05", today));  // the last usable day is today
  EXPECT_FALSE(common::ExpiredOn("", today));
  EXPECT_FALSE(common::ExpiredOn("not a date", today));
}

// A note or reason typed over several lines in one spreadsheet cell (Alt+Enter, saved with LF or
// CRLF) is imported as one line joined by "; ", not refused as a control character.
TEST(PrepareImportTest, MultiLineNotesAndReasonsBecomeOneLine) {
  auto receipts = PrepareImport(ImportKind::kReceipts,
                                "warehouse,item,lot,expiry_date,quantity,note\r\n"
                                "420102-W001,SH-0001,,,5,\"donor A\r\ntruck 7\r\n\"\r\n",
                                &kItems);
  ASSERT_TRUE(receipts.ok()) << receipts.status();
  EXPECT_TRUE(receipts->errors.empty());
  ASSERT_EQ(receipts->rows.size(), 1u);
  EXPECT_EQ(receipts->rows[0].op.receive().note(), "donor A; truck 7");
  auto counts = PrepareImport(ImportKind::kStocktake,
                              "warehouse,item,lot,expiry_date,counted,reason\n"
                              "420102-W001,SH-0001,,,97,\"3 damaged\nby water\"\n",
                              &kItems);
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_TRUE(counts->errors.empty());
  ASSERT_EQ(counts->rows.size(), 1u);
  EXPECT_EQ(counts->rows[0].op.stocktake().reason(), "3 damaged; by water");
}

// Excel on Chinese Windows saves "CSV" as GBK: such a file is refused before anything is sent,
// naming the first line that is not UTF-8 and how to import it; --encoding=gb18030 (or gbk)
// converts it. UTF-16 ("Unicode text") is refused with what to save instead.
TEST(DecodeCsvTextTest, GbkIsRefusedWithAHintOrConverted) {
  const std::string header = "warehouse,item,quantity,note\n420102-W001,SH-0006,2,ascii\n";
  const std::string gbk = header + "420102-W001,SH-0006,1,\xca\xa1\xc3\xf1\xd5\xfe\xcc\xfc\n";
  auto refused = DecodeCsvText(gbk, "utf-8");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              AllOf(HasSubstr("line 3 is not UTF-8"), HasSubstr("--encoding=gb18030")));
  auto converted = DecodeCsvText(gbk, "GB18030");
  ASSERT_TRUE(converted.ok()) << converted.status();
  EXPECT_EQ(*converted, header + "420102-W001,SH-0006,1,省民政厅\n");
  EXPECT_EQ(*DecodeCsvText(header, "utf-8"), header);
  EXPECT_EQ(*DecodeCsvText(header, "gbk"), header);  // ASCII is the same in both
  auto utf16 = DecodeCsvText(std::string("\xff\xfew\0a\0", 6), "utf-8");
  ASSERT_FALSE(utf16.ok());
  EXPECT_THAT(std::string(utf16.status().message()), HasSubstr("CSV UTF-8"));
  EXPECT_FALSE(DecodeCsvText(header, "latin1").ok());
}

// A UTF-8 file read as GB18030 mostly converts without an error (省民政厅调拨's UTF-8 bytes are
// valid GB18030) and its notes would be stored garbled for good: it is refused, saying why.
TEST(DecodeCsvTextTest, AFileAlreadyUtf8IsRefusedUnderGb18030) {
  const std::string utf8 = "warehouse,item,quantity,note\r\n420111-W001,SH-0001,6,省民政厅调拨\r\n";
  for (const char* encoding : {"gb18030", "gbk"}) {
    auto refused = DecodeCsvText(utf8, encoding);
    ASSERT_FALSE(refused.ok()) << encoding << ": " << *refused;
    EXPECT_THAT(std::string(refused.status().message()),
                AllOf(HasSubstr("already UTF-8"), HasSubstr("without --encoding")));
  }
  EXPECT_FALSE(DecodeCsvText("\xEF\xBB\xBFwarehouse,item,quantity\n", "gbk").ok());
  EXPECT_EQ(*DecodeCsvText(utf8, "utf-8"), utf8);
}

// --rejected-out of a GB18030 import is written in GB18030, so the same command reads it back.
TEST(EncodeCsvTextTest, WritesTheEncodingTheFileWasReadIn) {
  const std::string text = "warehouse,item,quantity,note\n420111-W001,SH-0002,abc,防汛物资\n";
  auto gbk = EncodeCsvText(text, "GBK");
  ASSERT_TRUE(gbk.ok()) << gbk.status();
  EXPECT_THAT(*gbk, HasSubstr("\xB7\xC0\xD1\xB4\xCE\xEF\xD7\xCA"));  // 防汛物资 in GBK
  auto back = DecodeCsvText(*gbk, "gbk");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, text);
  EXPECT_EQ(*EncodeCsvText(text, "utf-8"), text);
}

TEST(PrepareImportTest, BadRowsAreReportedWithLineAndDoNotStopTheRest) {
  auto prepared = PrepareImport(ImportKind::kReceipts,
                                "warehouse,item,quantity,lot,expiry_date\n"
                                "420102-W001,SH-0001,abc,,\n"            // 2: not a number
                                "420102-W001,SH-0001,-4,,\n"             // 3: negative
                                "bad-code,SH-0001,1,,\n"                 // 4: warehouse code
                                "420102-W001,XX-9999,1,,\n"              // 5: unknown item
                                "420102-W001,FW-0001,1,,\n"              // 6: shelf life needs lot
                                "420102-W001,FW-0001,1,L1,2027-02-30\n"  // 7: bad date
                                "420102-W001,SH-0001,1\n"                // 8: short row
                                "\n"                                     // 9: blank, skipped
                                "420102-W001,SH-0001,7,,\n",             // 10: good
                                &kItems);
  ASSERT_TRUE(prepared.ok());
  ASSERT_EQ(prepared->rows.size(), 1u);
  EXPECT_EQ(prepared->rows[0].line, 10);
  ASSERT_EQ(prepared->errors.size(), 7u);
  std::vector<int> lines;
  for (const auto& e : prepared->errors) lines.push_back(e.line);
  EXPECT_THAT(lines, ElementsAre(2, 3, 4, 5, 6, 7, 8));
  EXPECT_THAT(prepared->errors[0].error, HasSubstr("whole number"));
  EXPECT_THAT(prepared->errors[1].error, HasSubstr("positive"));
  EXPECT_THAT(prepared->errors[2].error, HasSubstr("warehouse code"));
  EXPECT_THAT(prepared->errors[3].error, HasSubstr("unknown item"));
  EXPECT_THAT(prepared->errors[4].error, HasSubstr("shelf life"));
  EXPECT_THAT(prepared->errors[5].error, HasSubstr("a date that exists; got \"2027-02-30\""));
  EXPECT_THAT(prepared->errors[6].error, HasSubstr("expected 5 fields"));
}

// Blank lines are skipped before the header as after it, and rows keep the file's numbers.
TEST(PrepareImportTest, BlankLinesBeforeTheHeaderAreSkipped) {
  auto prepared = PrepareImport(ImportKind::kReceipts,
                                "\n"                         // 1
                                " , \r\n"                    // 2: blank too
                                "warehouse,item,quantity\n"  // 3: the header
                                "420102-W001,SH-0001,5\n"    // 4
                                "420102-W001,SH-0001,x\n",   // 5
                                &kItems);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  ASSERT_EQ(prepared->rows.size(), 1u);
  EXPECT_EQ(prepared->rows[0].line, 4);
  ASSERT_EQ(prepared->errors.size(), 1u);
  EXPECT_EQ(prepared->errors[0].line, 5);
  EXPECT_THAT(PrepareImport(ImportKind::kReceipts, "\n\n", &kItems),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no header row")));
}

TEST(RejectedRowsCsvTest, HeaderAndFailedRowsAsTheFileHadThem) {
  auto records = ParseCsv(
      "\nwarehouse,item,quantity,note\n"
      "420102-W001,SH-0001,5,ok\n"
      "420102-W001,SH-0001,x,\"truck 1, door 2\"\n");
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(RejectedRowsCsv(*records, {{4, "quantity must be a whole number"}}),
            "warehouse,item,quantity,note\n"
            "420102-W001,SH-0001,x,\"truck 1, door 2\"\n");
}

// Excel's "CSV UTF-8" starts with a byte order mark and ends lines with CRLF; without the mark
// Excel on Chinese Windows opens the rejected rows as GBK, garbled.
TEST(RejectedRowsCsvTest, KeepsTheFilesByteOrderMarkAndLineEnds) {
  const std::string excel =
      "\xEF\xBB\xBFwarehouse,item,quantity,note\r\n"
      "420102-W001,SH-0001,x,\xE7\xA0\xB4\xE6\x8D\x9F\r\n";
  auto records = ParseCsv(excel);
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(RejectedRowsCsv(*records, {{2, "quantity must be a whole number"}}, excel),
            "\xEF\xBB\xBFwarehouse,item,quantity,note\r\n"
            "420102-W001,SH-0001,x,\xE7\xA0\xB4\xE6\x8D\x9F\r\n");
}

TEST(PrepareImportTest, MissingOrUnknownHeaderColumnIsAFileError) {
  EXPECT_THAT(PrepareImport(ImportKind::kReceipts, "warehouse,item\n", &kItems),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("quantity")));
  EXPECT_THAT(PrepareImport(ImportKind::kReceipts, "warehouse,item,quantity,notes\n", &kItems),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown column")));
  EXPECT_THAT(PrepareImport(ImportKind::kReceipts, "", &kItems),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// A count without a lot goes to the level as it is: only the level knows whether the item is
// kept in named lots there (then it refuses the count) or in DEFAULT alone.
TEST(PrepareImportTest, StocktakeRowsCountOneLotEachAndLeaveAMissingLotToTheLevel) {
  auto prepared = PrepareImport(ImportKind::kStocktake,
                                "warehouse,item,lot,expiry_date,counted,reason\n"
                                "420102-W001,SH-0001,,,0,lost in flood\n"
                                "420102-W001,FW-0001,L1,,12,\n"
                                "420102-W001,FW-0001,,,3,\n"          // shelf life: lot needed
                                "420102-W001,FW-0001,L1,,13,\n"       // same lot twice
                                "420102-W001,SH-0001,DEFAULT,,1,\n",  // line 2's lot again
                                &kItems);
  ASSERT_TRUE(prepared.ok());
  ASSERT_EQ(prepared->rows.size(), 2u);
  const auto& take = prepared->rows[0].op.stocktake();
  EXPECT_EQ(take.counts(0).lot(), "");
  EXPECT_EQ(take.counts(0).counted(), 0);
  EXPECT_EQ(take.reason(), "lost in flood");
  ASSERT_EQ(prepared->errors.size(), 3u);
  EXPECT_EQ(prepared->errors[0].line, 4);
  EXPECT_EQ(prepared->errors[1].line, 5);
  EXPECT_THAT(prepared->errors[1].error, HasSubstr("line 3"));
  EXPECT_EQ(prepared->errors[2].line, 6);
  EXPECT_THAT(prepared->errors[2].error, HasSubstr("line 2"));
}

TEST(PrepareImportTest, WithoutCatalogueItemsAreCheckedOnlyForSyntax) {
  auto prepared = PrepareImport(ImportKind::kReceipts,
                                "warehouse,item,quantity\n420102-W001,ZZ-1,1\n", nullptr);
  ASSERT_TRUE(prepared.ok());
  EXPECT_EQ(prepared->rows.size(), 1u);
}

TEST(ImportRequestIdTest, DerivedFromContentOrUserIdAndStable) {
  const std::string a = ImportBaseRequestId(ImportKind::kReceipts, "x", "");
  EXPECT_EQ(a, ImportBaseRequestId(ImportKind::kReceipts, "x", ""));
  EXPECT_NE(a, ImportBaseRequestId(ImportKind::kReceipts, "y", ""));
  EXPECT_NE(a, ImportBaseRequestId(ImportKind::kStocktake, "x", ""));
  EXPECT_THAT(a, ::testing::StartsWith("import-receipts-"));
  EXPECT_EQ(ImportBaseRequestId(ImportKind::kReceipts, "x", "mine"), "mine");
  EXPECT_EQ(ChunkRequestId("mine", 3), "mine-c3");
  EXPECT_EQ(RowRequestId("mine", 3, 2041), "mine-c3-l2041");
}

}  // namespace
}  // namespace stockpile::stockctl
