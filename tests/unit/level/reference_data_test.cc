// ReferenceData::Load on tiny synthetic folders: each test breaks one file of a valid folder and
// expects start-up to stop with the file and line named.
#include "services/common/reference_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/testutil/process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::common {
namespace {

using ::stockpile::testing::IsOk;
using ::stockpile::testing::StatusIs;
using stockpile::v1::Level;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kProvinces[] = "code,name\n42,\"湖北省\"\n";
constexpr char kCities[] = "code,name,provinceCode\n4201,\"武汉市\",42\n";
constexpr char kAreas[] =
    "code,name,cityCode,provinceCode\n420102,\"江岸区\",4201,42\n420103,\"江汉区\",4201,42\n";
constexpr char kStreets[] =
    "code,name,areaCode,provinceCode,cityCode\n420102003,\"大智街道\",420102,42,4201\n";
constexpr char kVillagesHeader[] = "code,name,streetCode,provinceCode,cityCode,areaCode\n";
constexpr char kCenters[] = "code,name,longitude,latitude\n420102,\"江岸区\",114.30,30.60\n";
constexpr char kItems[] =
    "code,name_zh,name_en,category,unit_zh,unit_en,shelf_life_months\n"
    "SH-0001,帐篷,tent,shelter,顶,tent,0\n";

// `n` villages of township 420102003, one a line after the header.
std::string Villages(int n) {
  std::string out = kVillagesHeader;
  for (int i = 1; i <= n; ++i) {
    absl::StrAppendFormat(&out, "420102003%03d,\"第%d社区居委会\",420102003,42,4201,420102\n", i,
                          i);
  }
  return out;
}

std::string Gzip(const std::string& text) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, text.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = text.size();
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = out.size();
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// A valid folder: province 42, city 4201, counties 420102 and 420103, township 420102003 and
// two villages. Put() replaces one file (gzipped when its name ends in .gz).
class RefFolder {
 public:
  RefFolder() {
    std::filesystem::create_directories(dir_.Sub("regions"));
    std::filesystem::create_directories(dir_.Sub("items"));
    Put("regions/provinces.csv.gz", kProvinces);
    Put("regions/cities.csv.gz", kCities);
    Put("regions/areas.csv.gz", kAreas);
    Put("regions/streets.csv.gz", kStreets);
    Put("regions/villages.csv.gz", Villages(2));
    Put("regions/county_centers.csv.gz", kCenters);
    Put("items/items.csv", kItems);
  }
  void Put(const std::string& name, const std::string& text) {
    PutBytes(name, name.ends_with(".gz") ? Gzip(text) : text);
  }
  void PutBytes(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_.Sub(name), std::ios::binary | std::ios::trunc) << bytes;
  }
  absl::Status Load() const { return ReferenceData::Load(dir_.path()).status(); }
  absl::StatusOr<std::unique_ptr<ReferenceData>> LoadData(
      const ReferenceData::Options& options = {}) const {
    return ReferenceData::Load(dir_.path(), options);
  }

 private:
  stockpile::testing::TempDir dir_;
};

TEST(ReferenceDataTest, LoadsASmallValidFolder) {
  RefFolder folder;
  auto data = folder.LoadData();
  ASSERT_THAT(data.status(), IsOk());
  EXPECT_EQ((*data)->regions().size(), 7u);
  EXPECT_EQ((*data)->CountAtLevel(Level::LEVEL_VILLAGE), 2u);
  ASSERT_NE((*data)->FindRegion("420102003002"), nullptr);
  EXPECT_EQ((*data)->FindRegion("420102003002")->parent_code, "420102003");
  EXPECT_EQ((*data)->FindRegion("420103")->name, "江汉区");
  // FindRegion still points into the sorted list after the load's checks.
  for (const auto& r : (*data)->regions()) EXPECT_EQ((*data)->FindRegion(r.code), &r);

  // Townships and villages under a prefix only: the parents of those are still there.
  ReferenceData::Options options;
  options.fine_region_prefixes = {"420102003002"};
  auto some = folder.LoadData(options);
  ASSERT_THAT(some.status(), IsOk());
  EXPECT_EQ((*some)->regions().size(), 6u);
  EXPECT_NE((*some)->FindRegion("420102003002"), nullptr);
}

// D7: a .csv.gz cut short (an interrupted copy) is refused, not loaded with part of its rows.
TEST(ReferenceDataTest, TruncatedGzipIsRefused) {
  const std::string full = Gzip(Villages(500));
  {
    // Every line is there; only the 8-byte gzip trailer is missing.
    RefFolder folder;
    folder.PutBytes("regions/villages.csv.gz", full.substr(0, full.size() - 8));
    EXPECT_THAT(folder.Load(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("regions/villages.csv.gz: truncated or corrupt gzip after "
                                   "line 501")));
  }
  {
    // Cut in the middle of the compressed data (most likely inside a line).
    RefFolder folder;
    folder.PutBytes("regions/villages.csv.gz", full.substr(0, full.size() / 2));
    EXPECT_THAT(folder.Load(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("regions/villages.csv.gz: truncated or corrupt gzip after "
                                   "line ")));
  }
}

// D7: a damaged byte in the middle is reported as a damaged file, whatever the garbage it
// decompressed to looked like.
TEST(ReferenceDataTest, CorruptGzipIsReportedAsCorrupt) {
  const std::string full = Gzip(Villages(500));
  for (size_t at : {size_t{20}, full.size() / 3, full.size() / 2, full.size() - 12}) {
    std::string bad = full;
    bad[at] = static_cast<char>(bad[at] ^ 0x55);
    RefFolder folder;
    folder.PutBytes("regions/villages.csv.gz", bad);
    EXPECT_THAT(folder.Load(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("regions/villages.csv.gz: truncated or corrupt gzip after "
                                   "line ")))
        << "byte " << at << " of " << full.size();
  }
}

// D7: when the damage decompresses to rows that do not parse, zlib only notices at the
// checksum. The file is big enough (over the 512 KiB zlib decompresses at a time) for rows to be
// read first; the loader reads on to the end and blames the gzip damage.
TEST(ReferenceDataTest, GarbageFromCorruptGzipIsBlamedOnTheGzip) {
  std::string text = kVillagesHeader;
  uint32_t seed = 1;
  for (int i = 1; i <= 999; ++i) {
    std::string name;
    for (int k = 0; k < 250; ++k) {
      seed = seed * 1103515245 + 12345;
      const uint32_t cp = 0x4E00 + ((seed >> 16) & 0xFF);  // one of 256 CJK ideographs
      name += static_cast<char>(0xE0 | (cp >> 12));
      name += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      name += static_cast<char>(0x80 | (cp & 0x3F));
    }
    absl::StrAppendFormat(&text, "420102003%03d,\"%s\",420102003,42,4201,420102\n", i, name);
  }
  const std::string full = Gzip(text);
  std::string bad = full;
  bad[full.size() / 4] = static_cast<char>(bad[full.size() / 4] ^ 0x55);
  RefFolder folder;
  folder.PutBytes("regions/villages.csv.gz", bad);
  // The garbage has its own newlines: the line count after it means little.
  EXPECT_THAT(folder.Load(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("regions/villages.csv.gz: truncated or corrupt gzip after "
                                       "line "),
                             HasSubstr("(incorrect data check); the damage already shows at "
                                       "line "))));
}

// D5: the duplicate is named with its line and the line of the first.
TEST(ReferenceDataTest, DuplicateRegionNamesBothLines) {
  RefFolder folder;
  folder.Put("regions/areas.csv.gz", absl::StrCat(kAreas, "420103,\"江汉区\",4201,42\n"));
  EXPECT_THAT(folder.Load(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("regions/areas.csv.gz:4: region 420103 appears twice "
                                 "(first at areas.csv.gz:3)")));

  RefFolder villages;
  villages.Put("regions/villages.csv.gz",
               Villages(3) + "420102003002,\"又一个\",420102003,42,4201,420102\n");
  EXPECT_THAT(villages.Load(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("regions/villages.csv.gz:5: region 420102003002 appears twice "
                                 "(first at villages.csv.gz:3)")));
}

// D5: a parent that is not in the file above is named with the child's file and line.
TEST(ReferenceDataTest, MissingParentNamesFileAndLine) {
  RefFolder folder;
  folder.Put("regions/cities.csv.gz", "code,name,provinceCode\n4202,\"黄石市\",42\n");
  EXPECT_THAT(folder.Load(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("regions/areas.csv.gz:2: region 420102 names parent 4201, "
                                 "which is not in cities.csv.gz")));

  RefFolder streets;
  streets.Put("regions/villages.csv.gz",
              Villages(2) + "420102004001,\"无街道村\",420102004,42,4201,420102\n");
  EXPECT_THAT(streets.Load(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("regions/villages.csv.gz:4: region 420102004001 names parent "
                                 "420102004, which is not in streets.csv.gz")));

  RefFolder empty;
  empty.Put("regions/cities.csv.gz", "code,name,provinceCode\n4201,\"武汉市\",\n");
  EXPECT_THAT(empty.Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("regions/cities.csv.gz:2: region 4201 has an empty "
                                               "provinceCode (its parent's code)")));
}

// D6: GBK (what Chinese Excel saves) is refused at load, not when an RPC serializes the name.
TEST(ReferenceDataTest, NamesThatAreNotUtf8AreRefused) {
  RefFolder folder;
  // "江汉区" in GBK.
  folder.Put("regions/areas.csv.gz",
             "code,name,cityCode,provinceCode\n420102,\"江岸区\",4201,42\n"
             "420103,\"\xbd\xad\xba\xba\xc7\xf8\",4201,42\n");
  EXPECT_THAT(folder.Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                                      HasSubstr("regions/areas.csv.gz:3: not valid UTF-8 (saved "
                                                "as GBK? save the file as UTF-8)")));

  RefFolder items;
  // "帐篷" in GB18030.
  items.Put("items/items.csv",
            "code,name_zh,name_en,category,unit_zh,unit_en,shelf_life_months\n"
            "SH-0001,\xd5\xca\xc5\xf1,tent,shelter,x,tent,0\n");
  EXPECT_THAT(items.Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("items/items.csv:2: not valid UTF-8")));
}

// D14: every ancestor column is checked against the parent chain, not only the parent's.
TEST(ReferenceDataTest, WrongAncestorColumnIsRefused) {
  RefFolder areas;
  areas.Put("regions/areas.csv.gz",
            "code,name,cityCode,provinceCode\n420102,\"江岸区\",4201,42\n"
            "420103,\"江汉区\",4201,43\n");
  EXPECT_THAT(areas.Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("regions/areas.csv.gz:3: region 420103 has "
                                               "provinceCode 43, but its parent 4201 lies in "
                                               "province 42")));

  RefFolder streets;
  streets.Put("regions/streets.csv.gz",
              "code,name,areaCode,provinceCode,cityCode\n420102003,\"大智街道\",420102,42,4202\n");
  EXPECT_THAT(streets.Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("regions/streets.csv.gz:2: region 420102003 has "
                                                 "cityCode 4202, but its parent 420102 lies in "
                                                 "city 4201")));

  RefFolder villages;
  villages.Put("regions/villages.csv.gz",
               Villages(1) + "420102003002,\"村\",420102003,42,4201,420103\n");
  EXPECT_THAT(villages.Load(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("regions/villages.csv.gz:3: region 420102003002 has areaCode "
                                 "420103, but its parent 420102003 lies in county 420102")));
}

}  // namespace
}  // namespace stockpile::common
