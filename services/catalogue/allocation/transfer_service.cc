#include "services/catalogue/allocation/transfer_service.h"

#include "absl/strings/str_cat.h"
#include "services/common/auth/interceptor.h"
#include "services/common/status_util.h"

namespace stockpile::catalogue::allocation {

using namespace stockpile::v1;  // NOLINT

WorkerPool::WorkerPool(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (auto& t : threads_) t.join();
}

void WorkerPool::Run(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  tasks_.push_back(std::move(task));
}

void WorkerPool::Loop() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this] { return stopping_ || !tasks_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (tasks_.empty()) return;  // stopping and drained
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

namespace {

// The request with the caller's identity as its actor (the audit trail names the token subject).
template <typename Req>
Req WithActor(const Req& req, const auth::Identity& who) {
  Req copy = req;
  copy.set_actor(auth::AuditActor(who, req.actor()));
  return copy;
}

}  // namespace

TransferServiceImpl::TransferServiceImpl(TransferCoordinator* coordinator,
                                         const Leadership* leadership, int workers)
    : coordinator_(coordinator), leadership_(leadership), pool_(workers) {}

namespace {

// Marks a call one replica forwarded to the leader: the receiver never forwards it again (a
// leader deposed meanwhile answers it as a follower would).
constexpr char kForwardedHeader[] = "x-stockpile-forwarded-by-replica";

bool AlreadyForwarded(const grpc::CallbackServerContext* ctx) {
  return ctx->client_metadata().count(kForwardedHeader) > 0;
}

// Set in the trailers of every answer to a forwarded call, so the forwarding replica can tell
// the leader's own UNAVAILABLE (a level service down, no leader any more) from a leader that
// could not be reached. gRPC's transport errors carry no trailers of ours; their text is
// gRPC's own and not something to match on.
constexpr char kAnsweredHeader[] = "x-stockpile-answered-by-replica";

bool AnsweredByReplica(const grpc::ClientContext& call) {
  return call.GetServerTrailingMetadata().count(kAnsweredHeader) > 0;
}

// Why a transfer change cannot be made now. Only the leader changes transfers, and with etcd
// gone none can lead: saying "election" there sends people looking in the wrong place.
grpc::Status NoLeaderStatus(const absl::Status& why) {
  if (why.code() == absl::StatusCode::kNotFound) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "no catalogue replica is the transfer leader right now (an election is "
                        "under way); retry");
  }
  return grpc::Status(
      grpc::StatusCode::UNAVAILABLE,
      absl::StrCat("transfers cannot be changed while etcd does not answer (the transfer leader "
                   "is chosen there: ",
                   why.message(), "); plans and reads still work; retry once etcd is back"));
}

}  // namespace

std::shared_ptr<grpc::Channel> TransferServiceImpl::LeaderChannel(const std::string& address) {
  absl::MutexLock lock(&channels_mu_);
  auto& channel = channels_[address];
  if (!channel) channel = forwarding_.channel_factory(address);
  return channel;
}

template <typename Resp>
bool TransferServiceImpl::ForwardToLeader(grpc::CallbackServerContext* ctx,
                                          grpc::ServerUnaryReactor* reactor, Resp* resp,
                                          const std::string& leader,
                                          std::type_identity_t<Forward<Resp>> forward) {
  if (!forwarding_.channel_factory || !forward || leader.empty() || AlreadyForwarded(ctx)) {
    return false;
  }
  // The caller's token goes along: the leader checks and audits the caller, not this replica.
  std::vector<std::pair<std::string, std::string>> metadata;
  for (const auto& [key, value] : ctx->client_metadata()) {
    if (key == "authorization")
      metadata.emplace_back(std::string(key.data(), key.size()),
                            std::string(value.data(), value.size()));
  }
  const auto deadline = std::min(ctx->deadline(), std::chrono::system_clock::now() +
                                                      absl::ToChronoSeconds(forwarding_.timeout));
  std::shared_ptr<grpc::Channel> channel = LeaderChannel(leader);
  pool_.Run([reactor, resp, forward = std::move(forward), channel, metadata, deadline, leader] {
    grpc::ClientContext call;
    for (const auto& [key, value] : metadata) call.AddMetadata(key, value);
    call.AddMetadata(kForwardedHeader, "1");
    call.set_deadline(deadline);
    auto stub = TransferService::NewStub(channel);
    grpc::Status status = forward(*stub, &call, resp);
    // The leader's own answers pass as they are: only a call that never got one is the
    // leader's silence.
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE && !AnsweredByReplica(call)) {
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            absl::StrCat("the transfer leader ", leader, " did not answer (",
                                         status.error_message(), "); retry"));
    }
    reactor->Finish(status);
  });
  return true;
}

template <typename Resp, typename Call>
grpc::ServerUnaryReactor* TransferServiceImpl::Serve(grpc::CallbackServerContext* ctx, Resp* resp,
                                                     Call call,
                                                     std::type_identity_t<Forward<Resp>> forward) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (AlreadyForwarded(ctx)) ctx->AddTrailingMetadata(kAnsweredHeader, "1");
  absl::StatusOr<auth::Identity> who = auth::CallIdentity(ctx);
  if (!who.ok()) {
    reactor->Finish(common::ToGrpc(who.status()));
    return reactor;
  }
  if (forward && !leadership_->IsLeader()) {
    const absl::StatusOr<std::string> leader = leadership_->Leader();
    if (!leader.ok()) {
      reactor->Finish(NoLeaderStatus(leader.status()));
      return reactor;
    }
    if (ForwardToLeader(ctx, reactor, resp, *leader, std::move(forward))) return reactor;
    // Leadership moved since the forwarding replica looked (or nothing forwards here): the
    // caller's retry reaches the leader, so this is a reason to retry, not a refusal.
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 absl::StrCat("this catalogue replica is not the transfer leader (",
                                              *leader, " is); retry")));
    return reactor;
  }
  pool_.Run([reactor, resp, call, who = *std::move(who)] {
    auto result = call(who);
    if (!result.ok()) {
      reactor->Finish(common::ToGrpc(result.status()));
      return;
    }
    *resp = std::move(*result);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* TransferServiceImpl::PlanAllocation(grpc::CallbackServerContext* ctx,
                                                              const PlanAllocationRequest* req,
                                                              AllocationPlan* resp) {
  return Serve(ctx, resp,
               [this, req](const auth::Identity&) { return coordinator_->PlanAllocation(*req); });
}

grpc::ServerUnaryReactor* TransferServiceImpl::CreateTransfer(grpc::CallbackServerContext* ctx,
                                                              const CreateTransferRequest* req,
                                                              Transfer* resp) {
  return Serve(
      ctx, resp,
      [this, req](const auth::Identity& who) { return coordinator_->Create(WithActor(*req, who)); },
      [req](TransferService::Stub& leader, grpc::ClientContext* c, Transfer* out) {
        return leader.CreateTransfer(c, *req, out);
      });
}

grpc::ServerUnaryReactor* TransferServiceImpl::ApproveTransfer(grpc::CallbackServerContext* ctx,
                                                               const ApproveTransferRequest* req,
                                                               Transfer* resp) {
  return Serve(
      ctx, resp,
      [this, req](const auth::Identity& who) {
        // The approver's scope bounds its re-plans (the rule checked its legs against it).
        return coordinator_->Approve(WithActor(*req, who), who.scope);
      },
      [req](TransferService::Stub& leader, grpc::ClientContext* c, Transfer* out) {
        return leader.ApproveTransfer(c, *req, out);
      });
}

grpc::ServerUnaryReactor* TransferServiceImpl::ShipTransfer(grpc::CallbackServerContext* ctx,
                                                            const ShipTransferLegRequest* req,
                                                            Transfer* resp) {
  return Serve(
      ctx, resp,
      [this, req](const auth::Identity& who) { return coordinator_->Ship(WithActor(*req, who)); },
      [req](TransferService::Stub& leader, grpc::ClientContext* c, Transfer* out) {
        return leader.ShipTransfer(c, *req, out);
      });
}

grpc::ServerUnaryReactor* TransferServiceImpl::ReceiveTransfer(grpc::CallbackServerContext* ctx,
                                                               const ReceiveTransferLegRequest* req,
                                                               Transfer* resp) {
  return Serve(
      ctx, resp,
      [this, req](const auth::Identity& who) {
        return coordinator_->Receive(WithActor(*req, who));
      },
      [req](TransferService::Stub& leader, grpc::ClientContext* c, Transfer* out) {
        return leader.ReceiveTransfer(c, *req, out);
      });
}

grpc::ServerUnaryReactor* TransferServiceImpl::CancelTransfer(grpc::CallbackServerContext* ctx,
                                                              const CancelTransferRequest* req,
                                                              Transfer* resp) {
  return Serve(
      ctx, resp,
      [this, req](const auth::Identity& who) { return coordinator_->Cancel(WithActor(*req, who)); },
      [req](TransferService::Stub& leader, grpc::ClientContext* c, Transfer* out) {
        return leader.CancelTransfer(c, *req, out);
      });
}

grpc::ServerUnaryReactor* TransferServiceImpl::GetTransfer(grpc::CallbackServerContext* ctx,
                                                           const GetTransferRequest* req,
                                                           Transfer* resp) {
  return Serve(ctx, resp,
               [this, req](const auth::Identity&) { return coordinator_->Get(req->name()); });
}

grpc::ServerUnaryReactor* TransferServiceImpl::ListTransfers(grpc::CallbackServerContext* ctx,
                                                             const ListTransfersRequest* req,
                                                             ListTransfersResponse* resp) {
  return Serve(ctx, resp, [this, req](const auth::Identity&) { return coordinator_->List(*req); });
}

auth::TransferLookup MakeTransferLookup(const TransferCoordinator* coordinator) {
  return [coordinator](absl::string_view name) -> absl::StatusOr<auth::TransferPlaces> {
    absl::StatusOr<Transfer> transfer = coordinator->Get(name);
    if (!transfer.ok()) return transfer.status();
    auth::TransferPlaces places;
    places.destination = transfer->destination_warehouse();
    for (const TransferLeg& leg : transfer->legs()) {
      places.leg_sources.emplace_back(leg.index(), leg.plan().source_warehouse());
    }
    return places;
  };
}

}  // namespace stockpile::catalogue::allocation
