#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stockpile::common {

// The page tokens of every listing (level, catalogue, transfers): opaque to clients, short, and
// bound to the query that handed them out. A token is web-safe base64 (no padding) of
//
//   version (1 byte) | query fingerprint (4 bytes) | position | check (4 bytes)
//
// The fingerprint hashes the listing's name and every filter of its request (page_size is not
// one: a client may change it from page to page); the position is where the listing goes on
// (the last key returned, ...), in the listing's own form; the check hashes everything before it,
// so a token cut short, mistyped or made up is told apart from one of another query. Both hashes
// are FNV-1a (64 bits, truncated), the same in every process, build and replica.
//
// A listing builds one PageQuery per request from its filters, reads the position of the token
// it was sent with Position() and hands out Token(next position):
//
//   PageQuery query("ListBalances");
//   query.Add("region_prefix", req.region_prefix()).Add("item", req.item())
//       .AddInt("skip_zero", req.skip_zero());
//   ASSIGN_OR_RETURN(std::string after, query.Position(req.page_token()));
//   ...
//   resp.set_next_page_token(query.Token(last_key));
//
// A token of another listing or with other filters is INVALID_ARGUMENT naming the filters that
// must match; a damaged one is INVALID_ARGUMENT too. Neither ever lists from a wrong position.
class PageQuery {
 public:
  explicit PageQuery(absl::string_view listing);

  // Filters, in the same order for every request of a listing. An unset filter is added too
  // (as its empty or zero value): "no item" is a query of its own.
  PageQuery& Add(absl::string_view field, absl::string_view value);
  PageQuery& AddInt(absl::string_view field, int64_t value);
  PageQuery& AddDouble(absl::string_view field, double value);

  // The token that goes on after `position`; empty for an empty position (nothing follows).
  std::string Token(absl::string_view position) const;
  // The position in `token`: empty for an empty token (the first page); INVALID_ARGUMENT for a
  // token this query did not hand out.
  absl::StatusOr<std::string> Position(absl::string_view token) const;

  // The words of the refusals, for a listing that finds a position it cannot use.
  absl::Status Damaged() const;
  absl::Status OtherQuery() const;

 private:
  std::string listing_;
  std::vector<std::string> fields_;
  uint64_t hash_;
};

// A listing's page size: `default_size` for 0, at most `max`; INVALID_ARGUMENT when negative.
absl::StatusOr<size_t> PageSize(int32_t requested, size_t default_size, size_t max);

// FNV-1a, 64 bits, continuing from `hash` (exposed for the tests).
uint64_t Fnv1a64(absl::string_view data, uint64_t hash = 0xcbf29ce484222325ULL);

}  // namespace stockpile::common
