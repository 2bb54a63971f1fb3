#include "services/common/reference_data.h"

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "services/common/status_macros.h"
#include "services/common/validation.h"

#ifndef STOCKPILE_SOURCE_DIR
#define STOCKPILE_SOURCE_DIR "."
#endif

namespace stockpile::common {
namespace {

using stockpile::v1::Level;

// Reads a gzip (or plain) text file line by line. zlib hands back what it could decompress
// and only then says the stream was cut short or damaged, so Next() stops on that too and
// error() tells the two ends apart.
class LineReader {
 public:
  explicit LineReader(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
    if (file_ != nullptr) gzbuffer(file_, 1 << 18);
  }
  ~LineReader() {
    if (file_ != nullptr) gzclose(file_);
  }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  bool ok() const { return file_ != nullptr; }
  // Complete lines returned so far.
  int64_t lines() const { return lines_; }
  // Empty at the end of the file; zlib's message once the gzip stream was truncated or corrupt.
  const std::string& error() const { return error_; }

  // False at the end of the file or on a gzip error; a line cut off by the error is dropped.
  bool Next(std::string& line) {
    line.clear();
    if (!error_.empty()) return false;
    char buf[4096];
    while (true) {
      if (gzgets(file_, buf, sizeof(buf)) == nullptr) {
        if (CheckError()) {
          line.clear();
          return false;
        }
        break;
      }
      line.append(buf);
      if (!line.empty() && line.back() == '\n') break;
    }
    if (line.empty()) return false;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    ++lines_;
    return true;
  }

  // Reads the rest of the file, counting its lines: true when that finds a gzip error.
  bool DrainFindsError() {
    if (!error_.empty()) return true;
    std::string line;
    while (Next(line)) {
    }
    return !error_.empty();
  }

 private:
  // After gzgets returned nothing: records zlib's error, if there is one.
  bool CheckError() {
    int errnum = Z_OK;
    const char* msg = gzerror(file_, &errnum);
    if (errnum == Z_OK) return false;
    absl::string_view text = msg != nullptr && *msg ? msg : "read error";
    // zlib prefixes its message with the path it was given.
    absl::ConsumePrefix(&text, path_ + ": ");
    error_ = std::string(text);
    return true;
  }

  std::string path_;
  gzFile file_;
  int64_t lines_ = 0;
  std::string error_;
};

absl::Status GzipError(const std::string& path, const LineReader& reader) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": truncated or corrupt gzip after line ",
                                                 reader.lines(), " (", reader.error(), ")"));
}

// Files that went through Chinese Excel are often saved in GBK (or GB18030).
constexpr absl::string_view kNotUtf8 = "not valid UTF-8 (saved as GBK? save the file as UTF-8)";

// Calls `row(fields, line_number)` for each data row of a CSV with the given header columns.
template <typename Fn>
absl::Status ForEachCsvRow(const std::string& path, const std::vector<std::string>& header,
                           Fn row) {
  LineReader reader(path);
  if (!reader.ok()) {
    return absl::NotFoundError(absl::StrCat("reference data file ", path, " cannot be opened"));
  }
  // A damaged gzip stream can decompress to garbage before zlib notices: a row that looks
  // wrong is reported as the damage it came from when the rest of the file shows any.
  auto row_error = [&](int64_t line_no, absl::string_view message) {
    if (reader.DrainFindsError()) {
      return absl::InvalidArgumentError(absl::StrCat(GzipError(path, reader).message(),
                                                     "; the damage already shows at line ", line_no,
                                                     ": ", message));
    }
    return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": ", message));
  };
  std::string line;
  if (!reader.Next(line)) {
    if (!reader.error().empty()) return GzipError(path, reader);
    return absl::InvalidArgumentError(absl::StrCat(path, ":1: empty file, expected a header"));
  }
  if (absl::StartsWith(line, "\xEF\xBB\xBF")) line.erase(0, 3);
  if (!IsValidUtf8(line)) return row_error(1, kNotUtf8);
  auto columns = ParseCsvLine(line);
  if (!columns.ok()) return row_error(1, columns.status().message());
  if (columns->size() < header.size() ||
      !std::equal(header.begin(), header.end(), columns->begin())) {
    return row_error(1, absl::StrCat("header must start with ", absl::StrJoin(header, ","),
                                     "; got ", line.substr(0, 200)));
  }
  int64_t line_no = 1;
  while (reader.Next(line)) {
    ++line_no;
    if (line.empty()) continue;
    // Names reach protobuf strings, which must be UTF-8: refuse them here, not in every RPC.
    if (!IsValidUtf8(line)) return row_error(line_no, kNotUtf8);
    auto fields = ParseCsvLine(line);
    if (!fields.ok()) return row_error(line_no, fields.status().message());
    if (fields->size() < header.size()) {
      return row_error(line_no,
                       absl::StrCat("expected ", header.size(), " columns, got ", fields->size()));
    }
    absl::Status s = row(*fields, line_no);
    if (!s.ok()) return row_error(line_no, s.message());
  }
  if (!reader.error().empty()) return GzipError(path, reader);
  return absl::OkStatus();
}

absl::Status CheckRegionCode(absl::string_view code, Level want, absl::string_view parent) {
  if (LevelOfRegionCode(code) != want) {
    return absl::InvalidArgumentError(absl::StrCat("region code \"", code.substr(0, 20),
                                                   "\" is not a ", LevelName(want), " code"));
  }
  if (!parent.empty() && !absl::StartsWith(code, parent)) {
    return absl::InvalidArgumentError(
        absl::StrCat("region code ", code, " does not start with its parent's code ", parent));
  }
  return absl::OkStatus();
}

// The level whose code an ancestor column of the region files holds ("cityCode": city).
Level LevelOfColumn(absl::string_view column) {
  if (column == "provinceCode") return Level::LEVEL_PROVINCE;
  if (column == "cityCode") return Level::LEVEL_CITY;
  if (column == "areaCode") return Level::LEVEL_COUNTY;
  if (column == "streetCode") return Level::LEVEL_TOWNSHIP;
  return Level::LEVEL_UNSPECIFIED;
}

// Columns after the parent's name further ancestors. The parent's code starts the region's
// code (CheckRegionCode) and its own ancestors were checked when it was read, so each ancestor
// column must hold the region's code cut to that ancestor's length.
absl::Status CheckAncestorColumns(const std::vector<std::string>& header,
                                  const std::vector<std::string>& f) {
  for (size_t c = 3; c < header.size(); ++c) {
    const Level level = LevelOfColumn(header[c]);
    const absl::string_view want = absl::string_view(f[0]).substr(0, RegionCodeLength(level));
    if (f[c] != want) {
      return absl::InvalidArgumentError(absl::StrCat(
          "region ", f[0], " has ", header[c], " ", absl::string_view(f[c]).substr(0, 20),
          ", but its parent ", f[2], " lies in ", LevelName(level), " ", want));
    }
  }
  return absl::OkStatus();
}

// One file of the region tree: its level, its name under regions/ and the header columns read
// (code, name, the parent's code, then further ancestors' codes).
struct RegionFile {
  Level level;
  const char* name;
  std::vector<std::string> header;
};

// The region tree as read so far: the regions of the file before, whose codes the rows being
// read name as their parents, are sorted by code.
struct RegionTreeReader {
  explicit RegionTreeReader(std::vector<RegionInfo>& r) : regions(r) {}

  std::vector<RegionInfo>& regions;
  size_t parents_begin = 0, parents_end = 0;  // the file before's regions
  std::string last_parent;                    // rows come grouped by parent: found last time

  bool HasParent(absl::string_view code) {
    if (code == last_parent) return true;
    auto first = regions.begin() + static_cast<ptrdiff_t>(parents_begin);
    auto last = regions.begin() + static_cast<ptrdiff_t>(parents_end);
    auto it = std::lower_bound(first, last, code,
                               [](const RegionInfo& r, absl::string_view c) { return r.code < c; });
    if (it == last || it->code != code) return false;
    last_parent = std::string(code);
    return true;
  }

  // Checked while reading, so that the message can name the line: the code against its level
  // and its parent's code, that its parent was read, and (CheckAncestorColumns) that the further
  // ancestor columns agree with the parent chain. Duplicates are found once the file is read
  // and sorted (FindDuplicate): that takes no memory beyond the regions themselves.
  absl::Status Add(const RegionFile& file, const RegionFile* parents,
                   const std::vector<std::string>& f) {
    const std::string& code = f[0];
    const absl::string_view parent = parents != nullptr ? absl::string_view(f[2]) : "";
    RETURN_IF_ERROR(CheckRegionCode(code, file.level, parent));
    if (parents != nullptr && parent.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("region ", code, " has an empty ", file.header[2], " (its parent's code)"));
    }
    if (parents != nullptr && !HasParent(parent)) {
      return absl::InvalidArgumentError(absl::StrCat("region ", code, " names parent ", parent,
                                                     ", which is not in ", parents->name));
    }
    RETURN_IF_ERROR(CheckAncestorColumns(file.header, f));
    RegionInfo r;
    r.code = code;
    r.name = f[1];
    r.level = file.level;
    r.parent_code = std::string(parent);
    regions.push_back(std::move(r));
    return absl::OkStatus();
  }

  // The regions read from here on become the parents of the next file's rows.
  void NextFile(size_t begin) {
    parents_begin = begin;
    parents_end = regions.size();
    last_parent.clear();
  }
};

bool ByCode(const RegionInfo& a, const RegionInfo& b) { return a.code < b.code; }

// The code of two equal neighbours in regions sorted by code, if any.
std::optional<std::string> FindDuplicate(std::vector<RegionInfo>::const_iterator first,
                                         std::vector<RegionInfo>::const_iterator last) {
  auto dup = std::adjacent_find(
      first, last, [](const RegionInfo& a, const RegionInfo& b) { return a.code == b.code; });
  if (dup == last) return std::nullopt;
  return dup->code;
}

// Reads `path` again to name the two lines of region `code`, which it holds twice.
absl::Status DuplicateError(const std::string& path, const RegionFile& file,
                            const std::string& code) {
  int64_t first = 0;
  absl::Status s = ForEachCsvRow(
      path, file.header, [&](const std::vector<std::string>& f, int64_t line) -> absl::Status {
        if (f[0] != code) return absl::OkStatus();
        if (first == 0) {
          first = line;
          return absl::OkStatus();
        }
        return absl::InvalidArgumentError(
            absl::StrCat("region ", code, " appears twice (first at ", file.name, ":", first, ")"));
      });
  if (!s.ok()) return s;
  return absl::InvalidArgumentError(absl::StrCat(path, ": region ", code, " appears twice"));
}

bool UnderAnyPrefix(absl::string_view code, const std::vector<std::string>& prefixes) {
  if (prefixes.empty()) return true;
  for (const auto& p : prefixes) {
    // A township/village is wanted if it lies under a prefix or a prefix lies under it.
    if (absl::StartsWith(code, p) || absl::StartsWith(p, code)) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseCsvLine(absl::string_view line) {
  std::vector<std::string> out;
  std::string field;
  size_t i = 0;
  while (true) {
    field.clear();
    if (i < line.size() && line[i] == '"') {
      ++i;
      while (true) {
        if (i >= line.size()) return absl::InvalidArgumentError("unterminated quoted field");
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field.push_back(line[i++]);
      }
      if (i < line.size() && line[i] != ',') {
        return absl::InvalidArgumentError("unexpected character after a quoted field");
      }
    } else {
      while (i < line.size() && line[i] != ',') field.push_back(line[i++]);
    }
    out.push_back(field);
    if (i >= line.size()) break;
    ++i;  // the comma
  }
  return out;
}

std::string ReferenceData::DefaultDir() {
  if (const char* env = std::getenv("STOCKPILE_REFERENCE_DATA"); env != nullptr && *env) {
    return env;
  }
  return std::string(STOCKPILE_SOURCE_DIR) + "/../shared/data";
}

absl::StatusOr<std::unique_ptr<ReferenceData>> ReferenceData::Load(const std::string& dir,
                                                                   const Options& options) {
  std::unique_ptr<ReferenceData> data(new ReferenceData());
  RETURN_IF_ERROR(data->LoadItems(dir));
  RETURN_IF_ERROR(data->LoadCenters(dir));
  RETURN_IF_ERROR(data->LoadRegions(dir, options));
  data->PlaceRegions();
  return data;
}

absl::Status ReferenceData::LoadItems(const std::string& dir) {
  const std::string path = dir + "/items/items.csv";
  return ForEachCsvRow(
      path, {"code", "name_zh", "name_en", "category", "unit_zh", "unit_en", "shelf_life_months"},
      [&](const std::vector<std::string>& f, int64_t) -> absl::Status {
        ItemInfo item{f[0], f[1], f[2], f[3], f[4], f[5], 0};
        RETURN_IF_ERROR(CheckId("item code", item.code, true));
        if (!absl::SimpleAtoi(f[6], &item.shelf_life_months) || item.shelf_life_months < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("shelf_life_months must be a whole number >= 0; got \"", f[6], "\""));
        }
        if (!item_index_.emplace(item.code, items_.size()).second) {
          return absl::InvalidArgumentError(absl::StrCat("item ", item.code, " appears twice"));
        }
        items_.push_back(std::move(item));
        return absl::OkStatus();
      });
}

absl::Status ReferenceData::LoadCenters(const std::string& dir) {
  return ForEachCsvRow(dir + "/regions/county_centers.csv.gz",
                       {"code", "name", "longitude", "latitude"},
                       [&](const std::vector<std::string>& f, int64_t) -> absl::Status {
                         double lon, lat;
                         if (!absl::SimpleAtod(f[2], &lon) || !absl::SimpleAtod(f[3], &lat) ||
                             lon < -180 || lon > 180 || lat < -90 || lat > 90) {
                           return absl::InvalidArgumentError(
                               absl::StrCat("bad coordinates \"", f[2], "\",\"", f[3], "\""));
                         }
                         county_centers_[f[0]] = {lon, lat};
                         return absl::OkStatus();
                       });
}

absl::Status ReferenceData::LoadRegions(const std::string& dir, const Options& options) {
  // From the top: a file's rows name their parents in the one before.
  const std::vector<RegionFile> files = {
      {Level::LEVEL_PROVINCE, "provinces.csv.gz", {"code", "name"}},
      {Level::LEVEL_CITY, "cities.csv.gz", {"code", "name", "provinceCode"}},
      {Level::LEVEL_COUNTY, "areas.csv.gz", {"code", "name", "cityCode", "provinceCode"}},
      {Level::LEVEL_TOWNSHIP,
       "streets.csv.gz",
       {"code", "name", "areaCode", "provinceCode", "cityCode"}},
      {Level::LEVEL_VILLAGE,
       "villages.csv.gz",
       {"code", "name", "streetCode", "provinceCode", "cityCode", "areaCode"}},
  };
  fine_region_prefixes_ = options.fine_region_prefixes;
  const auto& prefixes = fine_region_prefixes_;
  RegionTreeReader tree(regions_);
  for (size_t k = 0; k < files.size(); ++k) {
    const RegionFile& file = files[k];
    const RegionFile* parents = k > 0 ? &files[k - 1] : nullptr;
    const std::string path = dir + "/regions/" + file.name;
    // Provinces, cities and counties are always loaded: they carry the coordinates.
    const bool filtered = file.level == Level::LEVEL_TOWNSHIP || file.level == Level::LEVEL_VILLAGE;
    const size_t begin = regions_.size();
    RETURN_IF_ERROR(ForEachCsvRow(path, file.header,
                                  [&](const std::vector<std::string>& f, int64_t) -> absl::Status {
                                    if (filtered && !UnderAnyPrefix(f[0], prefixes)) {
                                      return absl::OkStatus();
                                    }
                                    return tree.Add(file, parents, f);
                                  }));
    if (k + 1 < files.size()) {
      // Sorted for the next file's parent look-ups, which also shows a duplicate. The last
      // (villages, most regions) is checked in the sort of all below instead.
      std::sort(regions_.begin() + static_cast<ptrdiff_t>(begin), regions_.end(), ByCode);
      if (auto dup =
              FindDuplicate(regions_.begin() + static_cast<ptrdiff_t>(begin), regions_.end())) {
        return DuplicateError(path, file, *dup);
      }
    }
    tree.NextFile(begin);
  }
  std::sort(regions_.begin(), regions_.end(), ByCode);
  if (auto dup = FindDuplicate(regions_.begin(), regions_.end())) {
    // Only the last file can still hold one; its codes' length says which file anyway.
    const auto& file = files[static_cast<size_t>(LevelOfRegionCode(*dup)) - 1];
    return DuplicateError(dir + "/regions/" + file.name, file, *dup);
  }
  region_index_.reserve(regions_.size());
  for (size_t i = 0; i < regions_.size(); ++i) region_index_.emplace(regions_[i].code, i);
  return absl::OkStatus();
}

// Counties take their seat; a county without one, and every city and province, takes the
// centroid of the county seats under it; townships and villages take their county's.
void ReferenceData::PlaceRegions() {
  struct Sum {
    double lon = 0, lat = 0;
    int n = 0;
  };
  absl::flat_hash_map<std::string, Sum> sums;  // by city and province code
  for (auto& r : regions_) {
    if (r.level != Level::LEVEL_COUNTY) continue;
    auto it = county_centers_.find(r.code);
    if (it == county_centers_.end()) continue;
    r.longitude = it->second.first;
    r.latitude = it->second.second;
    for (const std::string& up : {r.code.substr(0, 4), r.code.substr(0, 2)}) {
      Sum& s = sums[up];
      s.lon += r.longitude;
      s.lat += r.latitude;
      ++s.n;
    }
  }
  auto centroid = [&](const std::string& code, RegionInfo& r) {
    for (const std::string& up : {code.substr(0, 4), code.substr(0, 2)}) {
      auto it = sums.find(up);
      if (it != sums.end() && it->second.n > 0) {
        r.longitude = it->second.lon / it->second.n;
        r.latitude = it->second.lat / it->second.n;
        return;
      }
    }
  };
  for (auto& r : regions_) {
    switch (r.level) {
      case Level::LEVEL_PROVINCE:
      case Level::LEVEL_CITY:
        centroid(r.code, r);
        break;
      case Level::LEVEL_COUNTY:
        if (!county_centers_.contains(r.code)) {
          centroid(r.code, r);
          r.location_estimated = true;
        }
        break;
      default: {
        const RegionInfo* county = FindRegion(r.code.substr(0, 6));
        if (county != nullptr) {
          r.longitude = county->longitude;
          r.latitude = county->latitude;
          r.location_estimated = county->location_estimated;
        }
      }
    }
  }
  county_centers_.clear();
}

const RegionInfo* ReferenceData::FindRegion(absl::string_view code) const {
  auto it = region_index_.find(code);
  return it == region_index_.end() ? nullptr : &regions_[it->second];
}

const ItemInfo* ReferenceData::FindItem(absl::string_view code) const {
  auto it = item_index_.find(code);
  return it == item_index_.end() ? nullptr : &items_[it->second];
}

bool ReferenceData::MayBeRegion(absl::string_view code) const {
  if (FindRegion(code) != nullptr) return true;
  constexpr size_t kCountyDigits = 6;
  if (code.size() <= kCountyDigits || UnderAnyPrefix(code, fine_region_prefixes_)) return false;
  return FindRegion(code.substr(0, kCountyDigits)) != nullptr;
}

absl::Status ReferenceData::CheckRegionFilter(absl::string_view prefix) const {
  if (LevelOfRegionCode(prefix) == Level::LEVEL_UNSPECIFIED || MayBeRegion(prefix)) {
    return absl::OkStatus();
  }
  return absl::NotFoundError(
      absl::StrCat("region ", prefix, " is not in the reference data: no region has this code"));
}

size_t ReferenceData::CountAtLevel(Level level) const {
  return std::count_if(regions_.begin(), regions_.end(),
                       [level](const RegionInfo& r) { return r.level == level; });
}

stockpile::v1::Region ReferenceData::ToProto(const RegionInfo& r) const {
  stockpile::v1::Region p;
  p.set_name("regions/" + r.code);
  p.set_code(r.code);
  p.set_display_name(r.name);
  p.set_level(r.level);
  p.set_parent_code(r.parent_code);
  p.mutable_location()->set_longitude(r.longitude);
  p.mutable_location()->set_latitude(r.latitude);
  p.set_location_estimated(r.location_estimated);
  return p;
}

stockpile::v1::Item ReferenceData::ToProto(const ItemInfo& i) {
  stockpile::v1::Item p;
  p.set_name("items/" + i.code);
  p.set_code(i.code);
  p.set_name_zh(i.name_zh);
  p.set_name_en(i.name_en);
  p.set_category(i.category);
  p.set_unit_zh(i.unit_zh);
  p.set_unit_en(i.unit_en);
  p.set_shelf_life_months(i.shelf_life_months);
  return p;
}

}  // namespace stockpile::common
