#include "services/common/etcd/watcher.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/common/etcd/etcd_channels.h"
#include "services/common/etcd/etcd_log.h"

namespace stockpile::etcd {
namespace {

WatchEvent ToEvent(const etcdserverpb::Event& event) {
  WatchEvent out;
  out.type = event.type() == etcdserverpb::Event::DELETE ? WatchEvent::Type::kDelete
                                                         : WatchEvent::Type::kPut;
  const auto& kv = event.kv();
  out.kv = KeyValue{kv.key(),          kv.value(),           kv.lease(),
                    kv.mod_revision(), kv.create_revision(), kv.version()};
  return out;
}

}  // namespace

Watcher::Watcher(std::shared_ptr<EtcdClient> client, WatcherOptions options,
                 ResyncCallback on_resync, EventsCallback on_events)
    : client_(std::move(client)),
      options_(std::move(options)),
      on_resync_(std::move(on_resync)),
      on_events_(std::move(on_events)),
      backoff_(options_.initial_backoff) {}

Watcher::~Watcher() { Stop(); }

void Watcher::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void Watcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (active_stream_ != nullptr) active_stream_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

bool Watcher::connected() const {
  absl::MutexLock lock(&mu_);
  return connected_;
}

int64_t Watcher::last_revision() const {
  absl::MutexLock lock(&mu_);
  return last_revision_;
}

int64_t Watcher::resync_count() const {
  absl::MutexLock lock(&mu_);
  return resync_count_;
}

bool Watcher::stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

bool Watcher::SleepUnlessStopped(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), d);
  return !stopping_;
}

void Watcher::Run() {
  bool need_resync = true;
  bool failed_last_time = false;
  while (!stopping()) {
    if (need_resync && !Resync()) {
      failed_last_time = true;
    } else {
      need_resync = false;
      const bool compacted = WatchStream(failed_last_time);
      if (stopping()) break;
      // Either way re-list: after compaction the events are gone, after a reconnect the consumer
      // is promised the current state.
      need_resync = true;
      failed_last_time = !compacted;
      if (compacted) continue;
    }
    if (!SleepUnlessStopped(backoff_)) break;
    backoff_ = std::min(backoff_ * 2, options_.max_backoff);
  }
  absl::MutexLock lock(&mu_);
  connected_ = false;
}

bool Watcher::Resync() {
  auto listed = client_->RangePrefix(options_.prefix);
  if (!listed.ok()) {
    EtcdLog(
        absl::StrCat("watch ", options_.prefix, ": re-list failed: ", listed.status().ToString()));
    return false;
  }
  on_resync_(listed->kvs, listed->revision);
  absl::MutexLock lock(&mu_);
  last_revision_ = listed->revision;
  ++resync_count_;
  return true;
}

void Watcher::Deliver(const std::vector<WatchEvent>& events, int64_t revision) {
  if (!events.empty()) on_events_(events);
  absl::MutexLock lock(&mu_);
  last_revision_ = std::max(last_revision_, revision);
}

bool Watcher::WatchStream(bool rotate_endpoint) {
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    active_stream_ = &context;
  }
  Endpoint& endpoint = client_->impl().StreamEndpoint(rotate_endpoint);
  auto stream = endpoint.watch->Watch(&context);
  etcdserverpb::WatchRequest request;
  auto* create = request.mutable_create_request();
  create->set_key(options_.prefix);
  create->set_range_end(PrefixRangeEnd(options_.prefix));
  create->set_start_revision(last_revision() + 1);

  bool compacted = false;
  etcdserverpb::WatchResponse response;
  if (stream->Write(request)) {
    while (stream->Read(&response)) {
      if (response.compact_revision() != 0 || response.canceled()) {
        EtcdLog(absl::StrCat("watch ", options_.prefix, ": canceled by etcd (compact revision ",
                             response.compact_revision(), ", ", response.cancel_reason(), ")"));
        compacted = response.compact_revision() != 0;
        break;
      }
      if (response.created()) {
        absl::MutexLock lock(&mu_);
        connected_ = true;
        backoff_ = options_.initial_backoff;
      }
      std::vector<WatchEvent> events;
      events.reserve(response.events_size());
      for (const auto& event : response.events()) events.push_back(ToEvent(event));
      const int64_t revision = events.empty() ? 0 : events.back().kv.mod_revision;
      Deliver(events, revision);
    }
  }
  context.TryCancel();
  grpc::Status status = stream->Finish();
  {
    absl::MutexLock lock(&mu_);
    active_stream_ = nullptr;
    connected_ = false;
  }
  if (!compacted && !stopping()) {
    EtcdLog(absl::StrCat("watch ", options_.prefix, " on ", endpoint.address,
                         " ended: ", FromGrpc(status, "watch").ToString()));
  }
  return compacted;
}

}  // namespace stockpile::etcd
