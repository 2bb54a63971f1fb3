#include "services/common/async_server.h"

#include <algorithm>

#include "services/common/thread_name.h"

namespace stockpile::common {

AsyncServerThreads::AsyncServerThreads(grpc::ServerBuilder& builder, int threads) {
  for (int i = 0; i < std::max(1, threads); ++i) {
    owned_.push_back(builder.AddCompletionQueue());
    queues_.push_back(owned_.back().get());
  }
}

AsyncServerThreads::~AsyncServerThreads() { Stop(); }

int AsyncServerThreads::DefaultThreads() {
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / 2);
}

void AsyncServerThreads::Start() {
  for (grpc::ServerCompletionQueue* cq : queues_) {
    threads_.emplace_back([cq] {
      NameThisThread("grpc-async");
      void* tag = nullptr;
      bool ok = false;
      while (cq->Next(&tag, &ok)) static_cast<AsyncTag*>(tag)->Proceed(ok);
    });
  }
}

void AsyncServerThreads::CallEnded() {
  if (live_calls_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    std::lock_guard<std::mutex> lock(mu_);
    ended_.notify_all();
  }
}

void AsyncServerThreads::Stop() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    if (!threads_.empty()) {
      ended_.wait(lock, [this] { return live_calls_.load(std::memory_order_acquire) == 0; });
    }
  }
  for (grpc::ServerCompletionQueue* cq : queues_) cq->Shutdown();
  for (std::thread& t : threads_) t.join();
  if (threads_.empty()) {
    // Never started: drain what the shutdown refused so the queues can be destroyed.
    for (grpc::ServerCompletionQueue* cq : queues_) {
      void* tag = nullptr;
      bool ok = false;
      while (cq->Next(&tag, &ok)) static_cast<AsyncTag*>(tag)->Proceed(ok);
    }
  }
  threads_.clear();
}

}  // namespace stockpile::common
