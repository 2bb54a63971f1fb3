// watch --from N: prints change entries as they stream; Ctrl-C stops it (exit 0).
#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tools/stockctl/commands.h"
#include "tools/stockctl/flag_checks.h"

namespace stockpile::stockctl {
namespace {

std::atomic<bool> g_interrupted{false};

void OnInterrupt(int) { g_interrupted = true; }

struct WatchFlags {
  uint64_t from = 0;
  int32_t max_batch = 0;
  int64_t limit = 0;
};

// Cancels the call from another thread once Ctrl-C (or SIGTERM) arrives; a reactor-free
// blocking Read cannot be interrupted any other way.
class InterruptCanceller {
 public:
  explicit InterruptCanceller(grpc::ClientContext& call)
      : thread_([this, &call] {
          while (!done_) {
            if (g_interrupted) {
              call.TryCancel();
              return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          }
        }) {}
  ~InterruptCanceller() {
    done_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

int Watch(Context& ctx, const WatchFlags& f) {
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  v1::WatchChangesRequest request;
  request.set_from_sequence(f.from);
  request.set_max_batch(f.max_batch);
  auto stream = ctx.NewStream();  // no deadline: the stream lives until stopped
  grpc::ClientContext& call = *stream;
  InterruptCanceller canceller(call);
  auto reader = ctx.stub().WatchChanges(&call, request);
  v1::WatchChangesResponse response;
  int64_t printed = 0;
  bool limit_reached = false;
  while (!limit_reached && reader->Read(&response)) {
    if (response.history_diverged()) {
      reader->Finish();
      return ctx.Fail(grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrCat("nothing to watch after sequence ", f.from, ": ", response.history_note())));
    }
    for (const auto& entry : response.entries()) {
      // One JSON document per line with --json (NDJSON), so a pipe can process entries live.
      ctx.Print(RenderChangeEntry(entry), ToJson(entry));
      if (f.limit > 0 && ++printed >= f.limit) {
        limit_reached = true;
        call.TryCancel();
        break;
      }
    }
  }
  grpc::Status status = reader->Finish();
  if (g_interrupted || limit_reached) return 0;
  return ctx.Fail(status);
}

}  // namespace

void AddWatchCommand(CLI::App& app, Context& ctx, ActionMap& actions) {
  auto f = std::make_shared<WatchFlags>();
  auto* watch = app.add_subcommand("watch", "Stream change entries (Ctrl-C stops)");
  watch->add_option("--from", f->from, "Entries after this sequence (0: from the start)")
      ->check(NotNegative());
  watch->add_option("--max-batch", f->max_batch, "Entries per message while catching up");
  watch->add_option("--limit", f->limit, "Stop after this many entries");
  actions[watch] = [&ctx, f] { return Watch(ctx, *f); };
}

}  // namespace stockpile::stockctl
