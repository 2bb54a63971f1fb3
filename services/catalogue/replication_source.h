#pragma once

// One level instance's change stream, followed by a thread of its own:
//   WatchChanges(from = watermark) with no deadline -> apply every received batch -> on any error
//   (including a gap in the sequence) reconnect with exponential backoff (100 ms .. 5 s, jitter)
//   from the stored watermark.
// A second thread probes GetInstanceInfo every probe interval, so the head sequence is known even
// while the stream is quiet, and a source that stops answering (SIGSTOP, network) shows as
// disconnected with a growing lag.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/clock.h"
#include "stockpile/v1/level_service.grpc.pb.h"
#include "stockpile/v1/level_service.pb.h"

namespace grpc {
class ClientContext;
class Channel;
class ChannelCredentials;
}  // namespace grpc

namespace stockpile::catalogue {

// Who a source is, as discovery reports it.
struct SourceSpec {
  std::string id;
  stockpile::v1::Level level = stockpile::v1::LEVEL_UNSPECIFIED;
  std::string address;
  std::vector<std::string> region_prefixes;
  // Stream only once the address answers as instance `id`: for an address remembered from an
  // earlier run (another instance may serve it now), not for one a live registration gives.
  bool verify_instance_id = false;
  bool operator==(const SourceSpec&) const = default;
};

// Transport state of a source (the watermark itself belongs to the core and its store).
struct StreamStatus {
  bool connected = false;
  uint64_t head_sequence = 0;
  int64_t last_contact_micros = 0;
  // When this stream was started (the catalogue's start, or the source registering again).
  int64_t started_micros = 0;
  // Our clock when we first saw head > watermark (0 while caught up).
  int64_t behind_since_micros = 0;
  std::string last_error;
  uint64_t reconnects = 0;
};

struct StreamOptions {
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  absl::Duration probe_interval = absl::Milliseconds(500);
  absl::Duration probe_timeout = absl::Seconds(1);
  int max_batch = 1024;
  // Channel credentials of every source (auth::ServiceChannelCredentials: mutual TLS and the
  // service token); null: plaintext (tests, --insecure).
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// Where a source's stream resumes: the last entry applied (0: none) and its commit time, which
// the source checks against its own entry of that sequence.
struct StreamPosition {
  uint64_t sequence = 0;
  google::protobuf::Timestamp commit_time;
};

class ReplicationStream {
 public:
  // Applies one received batch durably; returns the new watermark, or an error (then the stream
  // reconnects from the watermark). A batch with history_diverged set carries no entries: the
  // source no longer has the history applied so far. Called from the stream thread only.
  using ApplyFn =
      std::function<absl::StatusOr<uint64_t>(const stockpile::v1::WatchChangesResponse&)>;
  using WatermarkFn = std::function<StreamPosition()>;

  ReplicationStream(SourceSpec spec, StreamOptions options, const common::Clock* clock,
                    WatermarkFn watermark, ApplyFn apply);
  ~ReplicationStream();  // Stop()
  ReplicationStream(const ReplicationStream&) = delete;
  ReplicationStream& operator=(const ReplicationStream&) = delete;

  void Start();
  void Stop();
  const SourceSpec& spec() const { return spec_; }
  StreamStatus status() const;

 private:
  void StreamLoop();
  // One stream until it breaks; returns why it ended.
  absl::Status RunStream();
  // When the spec asks to verify and `info` is another instance's: says so; else "".
  std::string OtherInstance(const stockpile::v1::InstanceInfo& info) const;
  // OK unless the spec asks to verify and the address answers as another instance.
  absl::Status CheckServesSource(stockpile::v1::LevelService::Stub& stub) const;
  void ProbeLoop();
  void NoteHead(uint64_t head);
  void NoteError(const absl::Status& status);
  // A probe was answered: see the definition for which errors that ends.
  void NoteAnswered();
  bool SleepUnlessStopped(absl::Duration d);

  const SourceSpec spec_;
  const StreamOptions options_;
  const common::Clock* clock_;
  const WatermarkFn watermark_;
  const ApplyFn apply_;
  std::shared_ptr<grpc::Channel> channel_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;
  StreamStatus status_ ABSL_GUARDED_BY(mu_);  // last_error composed in status()
  bool stream_open_ ABSL_GUARDED_BY(mu_) = false;
  // Why the source last did not answer a probe, and why the last stream ended; each is cleared
  // when its own trouble is over, so a stream that keeps failing stays visible while probes work.
  std::string probe_error_ ABSL_GUARDED_BY(mu_);
  std::string stream_error_ ABSL_GUARDED_BY(mu_);
  std::thread stream_thread_;
  std::thread probe_thread_;
};

}  // namespace stockpile::catalogue
