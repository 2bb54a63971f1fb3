// Unit tests of one source's replication stream against an in-process level service: what its
// status says about errors as the source fails and recovers.
#include "services/catalogue/replication_source.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "stockpile/v1/level_service.grpc.pb.h"
#include "tests/testutil/process.h"

namespace stockpile::catalogue {
namespace {

using std::chrono::milliseconds;
using stockpile::v1::WatchChangesResponse;

// Answers probes with its head (or refuses them while paused) and streams the messages given,
// then stays idle as a caught-up level does: it sends nothing until a new entry commits.
class FakeLevel final : public stockpile::v1::LevelService::Service {
 public:
  std::atomic<bool> answering{true};
  std::atomic<uint64_t> head{0};
  std::atomic<int> streams{0};
  std::vector<WatchChangesResponse> first_stream;  // set before the stream starts
  std::vector<WatchChangesResponse> every_stream;

  grpc::Status GetInstanceInfo(grpc::ServerContext*, const stockpile::v1::GetInstanceInfoRequest*,
                               stockpile::v1::InstanceInfo* info) override {
    if (!answering) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "paused");
    info->set_last_sequence(head);
    return grpc::Status::OK;
  }

  grpc::Status WatchChanges(grpc::ServerContext* ctx, const stockpile::v1::WatchChangesRequest*,
                            grpc::ServerWriter<WatchChangesResponse>* writer) override {
    const auto& messages = streams++ == 0 ? first_stream : every_stream;
    for (const auto& m : messages) writer->Write(m);
    while (!ctx->IsCancelled()) std::this_thread::sleep_for(milliseconds(5));
    return grpc::Status::CANCELLED;
  }
};

class CatalogueReplicationStreamTest : public ::testing::Test {
 protected:
  CatalogueReplicationStreamTest() {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&level_);
    server_ = builder.BuildAndStart();
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  ~CatalogueReplicationStreamTest() override {
    stream_.reset();
    server_->Shutdown(std::chrono::system_clock::now());
  }

  // Starts following the fake level from sequence 0; `apply` answers every received batch.
  void Start(ReplicationStream::ApplyFn apply) {
    StreamOptions options;
    options.min_backoff = absl::Milliseconds(10);
    options.max_backoff = absl::Milliseconds(50);
    options.probe_interval = absl::Milliseconds(20);
    options.probe_timeout = absl::Milliseconds(500);
    stream_ = std::make_unique<ReplicationStream>(
        SourceSpec{"county-1", stockpile::v1::LEVEL_COUNTY, address_, {"4201"}}, options,
        common::SystemClock::Get(), [] { return StreamPosition{}; },
        [this, apply](const WatchChangesResponse& batch) {
          ++applied_;
          return apply(batch);
        });
    stream_->Start();
  }

  bool ErrorBecomes(const std::string& error) {
    return testing::WaitFor([&] { return stream_->status().last_error == error; },
                            milliseconds(5000));
  }

  FakeLevel level_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::unique_ptr<ReplicationStream> stream_;
  std::atomic<int> applied_{0};
};

// An idle source sends no batch that could clear the error: answering probes again must.
TEST_F(CatalogueReplicationStreamTest, NotAnsweringIsNoLongerTheErrorOnceTheSourceAnswers) {
  level_.answering = false;
  Start([](const WatchChangesResponse&) { return uint64_t{0}; });
  ASSERT_TRUE(ErrorBecomes("source does not answer: paused")) << stream_->status().last_error;
  level_.answering = true;
  EXPECT_TRUE(ErrorBecomes("")) << stream_->status().last_error;
  EXPECT_TRUE(testing::WaitFor([&] { return stream_->status().connected; }, milliseconds(5000)));
}

// A stream that ended (here on a resync's note, which last_resync_reason keeps) is over once a
// new stream is open and the source owes nothing, though no batch comes to say so.
TEST_F(CatalogueReplicationStreamTest,
       EndedStreamIsNoLongerTheErrorOnceANewOneHasNothingToDeliver) {
  WatchChangesResponse diverged;
  diverged.set_history_diverged(true);
  level_.first_stream = {diverged};
  Start([](const WatchChangesResponse&) -> absl::StatusOr<uint64_t> {
    return absl::AbortedError("streaming it again from sequence 1");
  });
  ASSERT_TRUE(
      testing::WaitFor([&] { return applied_ > 0 && level_.streams > 1; }, milliseconds(5000)));
  EXPECT_TRUE(ErrorBecomes("")) << stream_->status().last_error;
}

// While the source owes entries, only applying them ends a stream's error: probes answering
// meanwhile do not hide a stream that keeps failing.
TEST_F(CatalogueReplicationStreamTest, StreamThatKeepsFailingKeepsItsErrorWhileProbesAnswer) {
  WatchChangesResponse one;
  one.add_entries()->set_sequence(1);
  one.set_head_sequence(1);
  level_.head = 1;
  level_.every_stream = level_.first_stream = {one};
  Start([](const WatchChangesResponse&) -> absl::StatusOr<uint64_t> {
    return absl::InternalError("disk full");
  });
  ASSERT_TRUE(ErrorBecomes("disk full"));
  for (int i = 0; i < 60; ++i) {
    std::this_thread::sleep_for(milliseconds(5));
    ASSERT_EQ(stream_->status().last_error, "disk full") << "after " << i * 5 << " ms";
  }
  EXPECT_GT(applied_, 1);  // it did reconnect and fail again meanwhile
}

}  // namespace
}  // namespace stockpile::catalogue
