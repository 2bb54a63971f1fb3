#include "services/common/auth/interceptor.h"

#include <grpcpp/server_context.h>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace stockpile::auth {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

namespace {

// Verdicts of calls in flight, keyed by their server context. Each entry remembers which
// interceptor wrote it, so a late erase by a finished call never removes a newer call's verdict
// should a context address be reused.
class VerdictTable {
 public:
  static VerdictTable& Get() {
    static auto* table = new VerdictTable;
    return *table;
  }
  void Record(const grpc::ServerContextBase* ctx, const void* owner,
              absl::StatusOr<Identity> verdict) {
    absl::MutexLock lock(&mu_);
    verdicts_.insert_or_assign(ctx, Entry{owner, std::move(verdict)});
  }
  void Erase(const grpc::ServerContextBase* ctx, const void* owner) {
    absl::MutexLock lock(&mu_);
    auto it = verdicts_.find(ctx);
    if (it != verdicts_.end() && it->second.owner == owner) verdicts_.erase(it);
  }
  absl::StatusOr<Identity> Find(const grpc::ServerContextBase* ctx) {
    absl::MutexLock lock(&mu_);
    auto it = verdicts_.find(ctx);
    if (it == verdicts_.end()) {
      return absl::PermissionDeniedError(
          "no authorization verdict for this call (auth interceptor not installed?)");
    }
    return it->second.verdict;
  }

 private:
  struct Entry {
    const void* owner;
    absl::StatusOr<Identity> verdict;
  };
  absl::Mutex mu_;
  absl::flat_hash_map<const grpc::ServerContextBase*, Entry> verdicts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

class AuthInterceptor final : public grpc::experimental::Interceptor {
 public:
  AuthInterceptor(const Authorizer* authorizer, ServerRpcInfo* info)
      : authorizer_(authorizer),
        ctx_(info->server_context()),
        method_(info->method() != nullptr ? info->method() : "") {}
  ~AuthInterceptor() override { VerdictTable::Get().Erase(ctx_, this); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (!decided_ &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      decided_ = true;
      VerdictTable::Get().Record(ctx_, this, Decide(methods->GetRecvMessage()));
    }
    methods->Proceed();
  }

 private:
  absl::StatusOr<Identity> Decide(void* received) const {
    const auto& metadata = ctx_->client_metadata();
    auto it = metadata.find("authorization");
    absl::string_view header;
    if (it != metadata.end()) header = absl::string_view(it->second.data(), it->second.size());
    // Only methods with a field-scoped rule are generated protobuf services whose received
    // message is a protobuf::Message; others (health's raw ByteBuffer) are never cast.
    const MethodRule* rule = authorizer_->FindRule(method_);
    const bool needs_message = rule != nullptr && !rule->is_public && !rule->unscoped;
    const auto* request =
        needs_message ? static_cast<const google::protobuf::Message*>(received) : nullptr;
    return authorizer_->CheckMessage(header, method_, request);
  }

  const Authorizer* authorizer_;
  grpc::ServerContextBase* ctx_;
  std::string method_;
  bool decided_ = false;
};

namespace {

class AuthInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit AuthInterceptorFactory(std::shared_ptr<const Authorizer> authorizer)
      : authorizer_(std::move(authorizer)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    return new AuthInterceptor(authorizer_.get(), info);
  }

 private:
  std::shared_ptr<const Authorizer> authorizer_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeAuthInterceptorFactory(
    std::shared_ptr<const Authorizer> authorizer) {
  return std::make_unique<AuthInterceptorFactory>(std::move(authorizer));
}

absl::StatusOr<Identity> CallIdentity(const grpc::ServerContextBase* ctx) {
  return VerdictTable::Get().Find(ctx);
}

}  // namespace stockpile::auth
