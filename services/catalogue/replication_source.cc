#include "services/catalogue/replication_source.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <deque>
#include <iostream>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "services/common/status_macros.h"
#include "stockpile/v1/level_service.grpc.pb.h"

namespace stockpile::catalogue {

using stockpile::v1::LevelService;
using stockpile::v1::WatchChangesRequest;
using stockpile::v1::WatchChangesResponse;

namespace {

// Messages received from one stream and not yet applied. Bounded (the reader waits when the
// applier is behind by kMaxQueued messages); TakeAll hands over everything queued as one batch
// (up to kMaxEntries entries) so a burst of small messages costs one synced write, not one each.
class ReceivedBatches {
 public:
  static constexpr size_t kMaxQueued = 16;
  static constexpr int kMaxEntries = 8192;

  // False when closed (the message is dropped: the stream is ending).
  bool Push(WatchChangesResponse message) {
    absl::MutexLock lock(&mu_);
    auto room = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return closed_ || queue_.size() < kMaxQueued;
    };
    mu_.Await(absl::Condition(&room));
    if (closed_) return false;
    queue_.push_back(std::move(message));
    return true;
  }

  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

  // Waits for a message; nothing once closed and drained. Queued messages after the first are
  // moved into it (entries in order; the newest head).
  std::optional<WatchChangesResponse> TakeAll() {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return closed_ || !queue_.empty(); };
    mu_.Await(absl::Condition(&ready));
    if (queue_.empty()) return std::nullopt;
    WatchChangesResponse merged = std::move(queue_.front());
    queue_.pop_front();
    while (!queue_.empty() &&
           merged.entries_size() + queue_.front().entries_size() <= kMaxEntries) {
      WatchChangesResponse& next = queue_.front();
      for (auto& e : *next.mutable_entries()) *merged.add_entries() = std::move(e);
      merged.set_head_sequence(std::max(merged.head_sequence(), next.head_sequence()));
      queue_.pop_front();
    }
    return merged;
  }

 private:
  absl::Mutex mu_;
  std::deque<WatchChangesResponse> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

ReplicationStream::ReplicationStream(SourceSpec spec, StreamOptions options,
                                     const common::Clock* clock, WatermarkFn watermark,
                                     ApplyFn apply)
    : spec_(std::move(spec)),
      options_(options),
      clock_(clock),
      watermark_(std::move(watermark)),
      apply_(std::move(apply)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  // Reconnect quickly after a level restart instead of gRPC's default 1 s .. 120 s.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // TLS + service token in production (docs/security.md); plaintext only when none was given.
  channel_ = grpc::CreateCustomChannel(
      spec_.address,
      options_.credentials ? options_.credentials : grpc::InsecureChannelCredentials(), args);
}

ReplicationStream::~ReplicationStream() { Stop(); }

void ReplicationStream::Start() {
  {
    absl::MutexLock lock(&mu_);
    status_.started_micros = clock_->NowMicros();
  }
  stream_thread_ = std::thread([this] { StreamLoop(); });
  probe_thread_ = std::thread([this] { ProbeLoop(); });
}

void ReplicationStream::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !stream_thread_.joinable()) return;
    stopping_ = true;
    if (active_ != nullptr) active_->TryCancel();
  }
  if (stream_thread_.joinable()) stream_thread_.join();
  if (probe_thread_.joinable()) probe_thread_.join();
}

StreamStatus ReplicationStream::status() const {
  absl::MutexLock lock(&mu_);
  StreamStatus s = status_;
  s.connected = s.connected && stream_open_;
  s.last_error = probe_error_.empty() ? stream_error_ : probe_error_;
  return s;
}

bool ReplicationStream::SleepUnlessStopped(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
  mu_.AwaitWithTimeout(absl::Condition(&stopping), d);
  return !stopping_;
}

void ReplicationStream::NoteHead(uint64_t head) {
  const uint64_t watermark = watermark_().sequence;
  absl::MutexLock lock(&mu_);
  status_.head_sequence = std::max(status_.head_sequence, head);
  status_.last_contact_micros = clock_->NowMicros();
  if (status_.head_sequence <= watermark) {
    status_.behind_since_micros = 0;
  } else if (status_.behind_since_micros == 0) {
    status_.behind_since_micros = clock_->NowMicros();
  }
}

void ReplicationStream::NoteError(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  stream_error_ = std::string(status.message());
  stream_open_ = false;
  ++status_.reconnects;
}

// The source answers: it is connected and its probe error is over. So is the last stream's,
// once a stream is open again and nothing is owed: an idle source sends no message, so no
// applied batch would ever clear it (a stream that breaks, or a resync's note, which
// last_resync_reason keeps). While entries are owed, only applying them clears it.
void ReplicationStream::NoteAnswered() {
  const uint64_t watermark = watermark_().sequence;
  absl::MutexLock lock(&mu_);
  status_.connected = true;
  probe_error_.clear();
  if (stream_open_ && status_.head_sequence <= watermark) stream_error_.clear();
}

void ReplicationStream::StreamLoop() {
  std::mt19937_64 rng(std::hash<std::string>()(spec_.id) ^ uint64_t(clock_->NowMicros()));
  absl::Duration backoff = options_.min_backoff;
  while (true) {
    const int64_t started = clock_->NowMicros();
    absl::Status ended = RunStream();
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    NoteError(ended);
    std::cerr << "stockpile-catalogue: stream from " << spec_.id << " (" << spec_.address
              << ") ended: " << ended.message() << std::endl;
    // A stream that ran for a while was healthy: start the backoff over.
    if (clock_->NowMicros() - started > 10'000'000) backoff = options_.min_backoff;
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    if (!SleepUnlessStopped(backoff * jitter(rng))) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

std::string ReplicationStream::OtherInstance(const stockpile::v1::InstanceInfo& info) const {
  if (!spec_.verify_instance_id || info.instance_id() == spec_.id) return "";
  return absl::StrCat(spec_.address, " now serves instance ", info.instance_id());
}

absl::Status ReplicationStream::CheckServesSource(LevelService::Stub& stub) const {
  if (!spec_.verify_instance_id) return absl::OkStatus();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   absl::ToChronoMilliseconds(options_.probe_timeout));
  stockpile::v1::InstanceInfo info;
  grpc::Status s = stub.GetInstanceInfo(&ctx, stockpile::v1::GetInstanceInfoRequest(), &info);
  if (!s.ok())
    return absl::UnavailableError(absl::StrCat("source does not answer: ", s.error_message()));
  if (std::string other = OtherInstance(info); !other.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(other, ", not ", spec_.id, "; waiting for discovery to say where it is"));
  }
  return absl::OkStatus();
}

absl::Status ReplicationStream::RunStream() {
  auto stub = LevelService::NewStub(channel_);
  RETURN_IF_ERROR(CheckServesSource(*stub));
  grpc::ClientContext ctx;  // no deadline: the stream lives as long as both sides do
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("stopping");
    active_ = &ctx;
  }
  WatchChangesRequest req;
  const StreamPosition from = watermark_();
  req.set_from_sequence(from.sequence);
  if (from.sequence > 0 && from.commit_time.ByteSizeLong() > 0) {
    *req.mutable_from_commit_time() = from.commit_time;
  }
  req.set_max_batch(options_.max_batch);
  auto reader = stub->WatchChanges(&ctx, req);
  {
    absl::MutexLock lock(&mu_);
    stream_open_ = true;
  }
  // A thread of its own reads (and parses) the next messages while this one applies: every
  // message already received is applied together, in one synced write.
  ReceivedBatches received;
  std::thread read_thread([&] {
    WatchChangesResponse resp;
    while (reader->Read(&resp) && received.Push(std::move(resp))) resp.Clear();
    received.Close();
  });
  absl::Status failure;
  while (std::optional<WatchChangesResponse> batch = received.TakeAll()) {
    if (batch->history_diverged()) {
      // The head seen so far belonged to the history that is gone: it may be above the new one.
      absl::MutexLock lock(&mu_);
      status_.head_sequence = batch->head_sequence();
      status_.behind_since_micros = 0;
    }
    absl::StatusOr<uint64_t> applied = apply_(*batch);
    if (!applied.ok()) {
      failure = applied.status();
      break;
    }
    NoteHead(batch->head_sequence());
    {
      absl::MutexLock lock(&mu_);
      stream_error_.clear();
    }
  }
  ctx.TryCancel();  // no-op when the stream already ended; stops the reader after a failure
  received.Close();
  read_thread.join();
  grpc::Status finished = reader->Finish();
  {
    absl::MutexLock lock(&mu_);
    active_ = nullptr;
  }
  if (!failure.ok()) return failure;
  return absl::UnavailableError(absl::StrCat("stream ended: ", finished.error_message(), " (code ",
                                             int(finished.error_code()), ")"));
}

void ReplicationStream::ProbeLoop() {
  auto stub = LevelService::NewStub(channel_);
  while (true) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     absl::ToChronoMilliseconds(options_.probe_timeout));
    stockpile::v1::InstanceInfo info;
    grpc::Status s = stub->GetInstanceInfo(&ctx, stockpile::v1::GetInstanceInfoRequest(), &info);
    const std::string other = s.ok() ? OtherInstance(info) : "";
    if (!other.empty()) {
      absl::MutexLock lock(&mu_);
      status_.connected = false;
      probe_error_ = other;
    } else if (s.ok()) {
      NoteHead(info.last_sequence());
      NoteAnswered();
    } else {
      absl::MutexLock lock(&mu_);
      status_.connected = false;
      probe_error_ = absl::StrCat("source does not answer: ", s.error_message());
    }
    if (!SleepUnlessStopped(options_.probe_interval)) return;
  }
}

}  // namespace stockpile::catalogue
