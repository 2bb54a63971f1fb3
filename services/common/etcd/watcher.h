#pragma once

// Watches every key under a prefix on one etcd Watch stream, in a thread of its own.
//
// The consumer first gets a resync (the full current contents of the prefix), then events in
// revision order. Whenever the stream breaks (etcd down, compaction, cancel) the watcher backs
// off, re-lists the prefix, delivers a new resync and resumes watching from that revision, so the
// consumer always converges on etcd's current state. Callbacks run on the watcher's thread, one
// at a time; they must not call Stop().

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/etcd/etcd_client.h"

namespace grpc {
class ClientContext;
}

namespace stockpile::etcd {

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for kDelete only key and mod_revision are set
};

struct WatcherOptions {
  std::string prefix;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
};

class Watcher {
 public:
  // Replace (do not merge) the consumer's view with `current`, read at `revision`.
  using ResyncCallback =
      std::function<void(const std::vector<KeyValue>& current, int64_t revision)>;
  using EventsCallback = std::function<void(const std::vector<WatchEvent>& events)>;

  Watcher(std::shared_ptr<EtcdClient> client, WatcherOptions options, ResyncCallback on_resync,
          EventsCallback on_events);
  ~Watcher();  // Stop()
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  void Start();
  // Cancels the stream and joins the thread; returns within about one call timeout at worst.
  void Stop();

  bool connected() const;
  int64_t last_revision() const;  // revision of the last resync or event delivered
  int64_t resync_count() const;

 private:
  void Run();
  bool Resync();
  // Runs one watch stream until it ends; true when it ended because of compaction.
  bool WatchStream(bool rotate_endpoint);
  void Deliver(const std::vector<WatchEvent>& events, int64_t revision);
  bool SleepUnlessStopped(absl::Duration d);  // false when stopping
  bool stopping() const;

  const std::shared_ptr<EtcdClient> client_;
  const WatcherOptions options_;
  const ResyncCallback on_resync_;
  const EventsCallback on_events_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* active_stream_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  int64_t last_revision_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t resync_count_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration backoff_;  // only touched by the thread
  std::thread thread_;
};

}  // namespace stockpile::etcd
