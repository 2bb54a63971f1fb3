#pragma once

// Server processes log with plain `std::cerr << ...`; this puts the time in front of every line
// they write, so a log read outside Kubernetes (a file, a terminal, a support ticket) still says
// when each thing happened.

#include <ostream>
#include <streambuf>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace stockpile::common {

// Passes everything to `sink`, writing "2026-12-05T09:30:15.123Z " (UTC) before the first
// character of every line. Writes from several threads are serialized per call, as they were.
class TimestampedLines final : public std::streambuf {
 public:
  // `now` is asked once per line (tests pass a fixed clock).
  explicit TimestampedLines(std::streambuf* sink, absl::Time (*now)() = absl::Now)
      : sink_(sink), now_(now) {}

 protected:
  int_type overflow(int_type c) override;
  std::streamsize xsputn(const char* s, std::streamsize n) override;
  int sync() override;

 private:
  bool StampIfLineStarts() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::streambuf* const sink_;
  absl::Time (*const now_)();
  absl::Mutex mu_;
  bool line_start_ ABSL_GUARDED_BY(mu_) = true;
};

// Routes std::cerr through a TimestampedLines for the rest of the process (never undone: other
// static objects may still log while the process exits).
void TimestampStandardError();

}  // namespace stockpile::common
