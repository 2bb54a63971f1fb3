#include "services/common/async_health.h"

namespace stockpile::common {

// One Watch call: sends the service's status, then every change of it.
class AsyncHealth::WatchCall final : public AsyncStream<Response> {
 public:
  WatchCall(AsyncHealth* health, grpc::ServerCompletionQueue* cq, AsyncServerThreads* threads)
      : AsyncStream<Response>(threads), health_(health), cq_(cq), threads_(threads) {
    health_->RequestWatch(context(), &request_, writer(), cq, cq, arrived_tag());
  }

 private:
  void AwaitAnother() override { new WatchCall(health_, cq_, threads_); }
  void Started() override {
    std::lock_guard<std::mutex> lock(health_->watchers_mu_);
    health_->watchers_.insert(this);
  }
  NextResult Next(Response* out, grpc::Status*) override {
    const Response::ServingStatus now = health_->StatusOf(request_.service());
    if (sent_any_ && now == last_sent_) return NextResult::kNothingYet;
    sent_any_ = true;
    last_sent_ = now;
    out->set_status(now);
    return NextResult::kSend;
  }
  void Stopping() override {
    std::lock_guard<std::mutex> lock(health_->watchers_mu_);
    health_->watchers_.erase(this);
  }

  AsyncHealth* health_;
  grpc::ServerCompletionQueue* cq_;
  AsyncServerThreads* threads_;
  Request request_;
  bool sent_any_ = false;
  Response::ServingStatus last_sent_ = Response::UNKNOWN;
};

AsyncHealth::AsyncHealth()
    : check_([this](UnaryCall* call, const Request& request, Response* response) {
        Check(call, request, response);
      }) {
  statuses_[""] = Response::SERVING;
}

void AsyncHealth::SetServingStatus(const std::string& service, bool serving) {
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    if (shut_down_) return;
    statuses_[service] = serving ? Response::SERVING : Response::NOT_SERVING;
  }
  PokeWatchers();
}

void AsyncHealth::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    shut_down_ = true;
    for (auto& [service, status] : statuses_) status = Response::NOT_SERVING;
  }
  PokeWatchers();
}

void AsyncHealth::PokeWatchers() {
  std::lock_guard<std::mutex> lock(watchers_mu_);
  for (WatchCall* watcher : watchers_) watcher->Poke();
}

AsyncHealth::Response::ServingStatus AsyncHealth::StatusOf(const std::string& service) const {
  std::lock_guard<std::mutex> lock(status_mu_);
  auto it = statuses_.find(service);
  return it == statuses_.end() ? Response::SERVICE_UNKNOWN : it->second;
}

void AsyncHealth::Check(UnaryCall* call, const Request& request, Response* response) const {
  const Response::ServingStatus status = StatusOf(request.service());
  if (status == Response::SERVICE_UNKNOWN) {
    call->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service"));
    return;
  }
  response->set_status(status);
  call->Finish(grpc::Status::OK);
}

void AsyncHealth::Serve(AsyncServerThreads& threads) {
  for (grpc::ServerCompletionQueue* cq : threads.queues()) {
    AsyncUnary<AsyncHealth, Request, Response>::Await(this, &AsyncHealth::RequestCheck, &check_, cq,
                                                      &threads);
    new WatchCall(this, cq, &threads);
  }
}

}  // namespace stockpile::common
