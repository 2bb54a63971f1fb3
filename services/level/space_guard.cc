#include "services/level/space_guard.h"

#include <sys/statvfs.h>

#include "absl/strings/str_cat.h"

namespace stockpile::level {

namespace {
constexpr int64_t kReadEveryMicros = 100'000;
constexpr uint64_t kMiB = 1 << 20;
}  // namespace

SpaceGuard::SpaceGuard(std::string path, uint64_t min_free_bytes, const common::Clock* clock)
    : path_(std::move(path)), min_free_bytes_(min_free_bytes), clock_(clock) {
  RefreshIfOld();
}

uint64_t SpaceGuard::free_bytes() const {
  RefreshIfOld();
  return free_bytes_.load(std::memory_order_relaxed);
}

void SpaceGuard::RefreshIfOld() const {
  const int64_t now = clock_->NowMicros();
  int64_t read_at = read_at_micros_.load(std::memory_order_relaxed);
  if (read_at != 0 && now - read_at < kReadEveryMicros) return;
  // One caller reads; the others go on with the figure they have.
  if (!read_at_micros_.compare_exchange_strong(read_at, now)) return;
  struct statvfs fs;
  const bool ok = statvfs(path_.c_str(), &fs) == 0;
  free_bytes_.store(ok ? uint64_t{fs.f_bavail} * fs.f_frsize : 0, std::memory_order_relaxed);
  readable_.store(ok, std::memory_order_relaxed);
}

absl::Status SpaceGuard::CheckRoom() {
  const uint64_t free = free_bytes();
  // A volume that cannot be read is not taken for a full one: the write itself will tell.
  if (min_free_bytes_ == 0 || !readable_.load(std::memory_order_relaxed)) {
    return absl::OkStatus();
  }
  if (free >= min_free_bytes_) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "the database volume (", path_, ") has ", free / kMiB, " MiB free, less than the ",
      min_free_bytes_ / kMiB,
      " MiB --min-free-mb keeps back: writes are refused until space is freed (nothing of "
      "this request was applied; retry it then with the same request_id)"));
}

}  // namespace stockpile::level
