#include "services/common/log_lines.h"

#include <cstring>
#include <iostream>
#include <string>

namespace stockpile::common {

bool TimestampedLines::StampIfLineStarts() {
  if (!line_start_) return true;
  const std::string stamp = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ ", now_(), absl::UTCTimeZone());
  line_start_ = false;
  return sink_->sputn(stamp.data(), std::streamsize(stamp.size())) == std::streamsize(stamp.size());
}

TimestampedLines::int_type TimestampedLines::overflow(int_type c) {
  if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
  absl::MutexLock lock(&mu_);
  if (!StampIfLineStarts()) return traits_type::eof();
  line_start_ = traits_type::to_char_type(c) == '\n';
  return sink_->sputc(traits_type::to_char_type(c));
}

std::streamsize TimestampedLines::xsputn(const char* s, std::streamsize n) {
  absl::MutexLock lock(&mu_);
  std::streamsize written = 0;
  while (written < n) {
    if (!StampIfLineStarts()) break;
    const void* newline = std::memchr(s + written, '\n', size_t(n - written));
    const std::streamsize line =
        newline == nullptr ? n - written : static_cast<const char*>(newline) - (s + written) + 1;
    const std::streamsize put = sink_->sputn(s + written, line);
    written += put;
    if (put != line) break;
    line_start_ = newline != nullptr;
  }
  return written;
}

int TimestampedLines::sync() { return sink_->pubsync(); }

void TimestampStandardError() {
  static auto* const lines = new TimestampedLines(std::cerr.rdbuf());
  std::cerr.rdbuf(lines);
}

}  // namespace stockpile::common
