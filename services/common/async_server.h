#pragma once

// gRPC's async API, for the services that carry the load (the level service, health checks).
//
// Why not the callback API: gRPC 1.51 (Debian 12) runs callback services on a second set of
// polling threads beside the ones that read the sockets, and every call crosses between them.
// On the 2-core machine an echo call cost the server 25-31 µs of CPU on the callback API and
// 13-15 µs on the async API with one completion-queue thread; a process with any callback
// service (gRPC's default health service is one) pays the callback price on its async calls
// too (25 µs). So a server here serves every method, health included, on the async API.

#include <google/protobuf/arena.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace stockpile::common {

// Every tag we put on a completion queue is one of these; the queue's thread calls Proceed.
class AsyncTag {
 public:
  virtual void Proceed(bool ok) = 0;

 protected:
  ~AsyncTag() = default;
};

// The completion queues of one server and the threads that drain them. Calls count themselves
// in (CallStarted) and out (CallEnded), so Stop can wait for every call to finish.
class AsyncServerThreads {
 public:
  // Before the server is built: adds `threads` queues to `builder` (at least one).
  AsyncServerThreads(grpc::ServerBuilder& builder, int threads);
  ~AsyncServerThreads();

  const std::vector<grpc::ServerCompletionQueue*>& queues() const { return queues_; }
  // After the server is built and every method awaited on the queues.
  void Start();
  // After Server::Shutdown: waits until every call has ended (awaited calls end when the
  // shutdown refuses them; calls in progress when they finish), then stops the queues.
  void Stop();

  void CallStarted() { live_calls_.fetch_add(1, std::memory_order_relaxed); }
  void CallEnded();

  // A good number of queue threads for this machine: one per two cores, at least one.
  static int DefaultThreads();

 private:
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> owned_;
  std::vector<grpc::ServerCompletionQueue*> queues_;
  std::vector<std::thread> threads_;
  std::atomic<int64_t> live_calls_{0};
  std::mutex mu_;
  std::condition_variable ended_;
  bool stopped_ = false;
};

// How a handler answers a unary call: Finish exactly once, from any thread.
class UnaryCall {
 public:
  virtual grpc::ServerContext* context() = 0;
  // The arena the call's request and response live on (a handler may build the response
  // there; it is freed at once when the call ends).
  virtual google::protobuf::Arena* arena() = 0;
  virtual void Finish(const grpc::Status& status) = 0;

 protected:
  ~UnaryCall() = default;
};

// One unary call of one method, from the moment it is awaited until its answer has gone out.
// `Service` is the generated AsyncService (or a class derived from it).
template <typename Service, typename Request, typename Response>
class AsyncUnary final : public AsyncTag, public UnaryCall {
 public:
  using RequestFn = void (Service::*)(grpc::ServerContext*, Request*,
                                      grpc::ServerAsyncResponseWriter<Response>*,
                                      grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*);
  // Runs on the queue's thread when the call arrives; must lead to Finish.
  using Handler = std::function<void(UnaryCall*, const Request&, Response*)>;

  // Waits for the next call of the method on `cq`. `service`, `handler` and `threads` outlive
  // the queue.
  static void Await(Service* service, RequestFn request, const Handler* handler,
                    grpc::ServerCompletionQueue* cq, AsyncServerThreads* threads) {
    auto* call = new AsyncUnary(service, request, handler, cq, threads);
    (service->*request)(&call->ctx_, call->request_, &call->writer_, cq, cq, call);
  }

  void Proceed(bool ok) override {
    if (finishing_ || !ok) {  // the answer went out (or the client left), or shutting down
      delete this;
      return;
    }
    Await(service_, request_fn_, handler_, cq_, threads_);
    (*handler_)(this, *request_, response_);
  }

  grpc::ServerContext* context() override { return &ctx_; }
  google::protobuf::Arena* arena() override { return &arena_; }
  void Finish(const grpc::Status& status) override {
    finishing_ = true;
    if (status.ok()) {
      writer_.Finish(*response_, status, this);
    } else {
      writer_.FinishWithError(status, this);
    }
  }

 private:
  AsyncUnary(Service* service, RequestFn request, const Handler* handler,
             grpc::ServerCompletionQueue* cq, AsyncServerThreads* threads)
      : service_(service), request_fn_(request), handler_(handler), cq_(cq), threads_(threads) {
    threads_->CallStarted();
  }
  ~AsyncUnary() { threads_->CallEnded(); }

  static google::protobuf::ArenaOptions ArenaOptions() {
    google::protobuf::ArenaOptions o;
    o.start_block_size = 1 << 10;
    o.max_block_size = 256 << 10;  // a batch reply is a few hundred KB
    return o;
  }

  Service* service_;
  RequestFn request_fn_;
  const Handler* handler_;
  grpc::ServerCompletionQueue* cq_;
  AsyncServerThreads* threads_;
  // Declared first, destroyed last: the messages on it outlive the writer and context.
  google::protobuf::Arena arena_{ArenaOptions()};
  Request* request_ = google::protobuf::Arena::CreateMessage<Request>(&arena_);
  Response* response_ = google::protobuf::Arena::CreateMessage<Response>(&arena_);
  grpc::ServerContext ctx_;
  grpc::ServerAsyncResponseWriter<Response> writer_{&ctx_};
  bool finishing_ = false;
};

// A server-streaming call: sends what Next produces whenever Poke says there may be more, one
// write at a time, until Next ends the stream or the client goes away. Subclasses own the
// source of messages; Poke may be called from any thread.
template <typename Response>
class AsyncStream {
 public:
  // Something new may be there to send.
  void Poke();

 protected:
  enum class NextResult { kSend, kNothingYet, kEnd };
  explicit AsyncStream(AsyncServerThreads* threads) : threads_(threads) {
    threads_->CallStarted();
    ctx_.AsyncNotifyWhenDone(&done_);
  }
  virtual ~AsyncStream() { threads_->CallEnded(); }

  // The request has arrived: await the method's next call (a new object).
  virtual void AwaitAnother() = 0;
  // Then start producing (Poke follows). Runs on the queue's thread.
  virtual void Started() = 0;
  // Fills `out` with the next message, says there is none yet, or ends the stream with
  // `*end_status`. Called with the stream's lock held, one call at a time.
  virtual NextResult Next(Response* out, grpc::Status* end_status) = 0;
  // The call is over: stop anything that may still Poke. After it returns, the stream is
  // deleted.
  virtual void Stopping() = 0;

  // For the subclass's RequestX: the context, the writer and the tag of the call arriving.
  grpc::ServerContext* context() { return &ctx_; }
  grpc::ServerAsyncWriter<Response>* writer() { return &writer_; }
  AsyncTag* arrived_tag() { return &arrived_; }

 private:
  struct Tag final : AsyncTag {
    Tag(AsyncStream* s, void (AsyncStream::*f)(bool)) : stream(s), fn(f) {}
    void Proceed(bool ok) override { (stream->*fn)(ok); }
    AsyncStream* stream;
    void (AsyncStream::*fn)(bool);
  };

  void OnArrived(bool ok);
  void OnWritten(bool ok);
  void OnFinished(bool ok);
  void OnDone(bool ok);
  void FinishLocked(const grpc::Status& status);
  void MaybeDelete(std::unique_lock<std::mutex>& lock);

  AsyncServerThreads* threads_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncWriter<Response> writer_{&ctx_};
  Tag arrived_{this, &AsyncStream::OnArrived};
  Tag written_{this, &AsyncStream::OnWritten};
  Tag finished_tag_{this, &AsyncStream::OnFinished};
  Tag done_{this, &AsyncStream::OnDone};
  std::mutex mu_;
  Response message_;
  bool started_ = false;
  bool writing_ = false;
  bool finishing_ = false;
  bool finished_ = false;  // Finish's tag came back
  bool done_seen_ = false;
  bool cancelled_ = false;
};

template <typename Response>
void AsyncStream<Response>::OnArrived(bool ok) {
  if (!ok) {  // the server shut down before a call came: no done tag will follow
    delete this;
    return;
  }
  AwaitAnother();
  {
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;
  }
  Started();
  Poke();
}

template <typename Response>
void AsyncStream<Response>::Poke() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_ || writing_ || finishing_) return;
  if (cancelled_) {
    FinishLocked(grpc::Status::CANCELLED);
    return;
  }
  grpc::Status end_status;
  switch (Next(&message_, &end_status)) {
    case NextResult::kSend:
      writing_ = true;
      writer_.Write(message_, &written_);
      return;
    case NextResult::kNothingYet:
      return;
    case NextResult::kEnd:
      FinishLocked(end_status);
      return;
  }
}

template <typename Response>
void AsyncStream<Response>::OnWritten(bool ok) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      cancelled_ = true;
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      return;
    }
  }
  Poke();
}

template <typename Response>
void AsyncStream<Response>::FinishLocked(const grpc::Status& status) {
  if (finishing_) return;
  finishing_ = true;
  writer_.Finish(status, &finished_tag_);
}

template <typename Response>
void AsyncStream<Response>::OnFinished(bool) {
  std::unique_lock<std::mutex> lock(mu_);
  finished_ = true;
  MaybeDelete(lock);
}

template <typename Response>
void AsyncStream<Response>::OnDone(bool) {
  std::unique_lock<std::mutex> lock(mu_);
  done_seen_ = true;
  if (!finishing_) {
    cancelled_ = true;
    if (!writing_) FinishLocked(grpc::Status::CANCELLED);
  }
  MaybeDelete(lock);
}

// Deleted once both the Finish tag and the done tag are back: nothing of gRPC refers to it then.
template <typename Response>
void AsyncStream<Response>::MaybeDelete(std::unique_lock<std::mutex>& lock) {
  if (!finished_ || !done_seen_) return;
  lock.unlock();
  Stopping();
  delete this;
}

}  // namespace stockpile::common
