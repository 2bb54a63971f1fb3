#include "services/catalogue/allocation/transfer_service.h"

#include "absl/strings/str_cat.h"
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

TransferServiceImpl::TransferServiceImpl(TransferCoordinator* coordinator,
                                         const Leadership* leadership, int workers)
    : coordinator_(coordinator), leadership_(leadership), pool_(workers) {}

template <typename Resp, typename Call>
grpc::ServerUnaryReactor* TransferServiceImpl::Serve(grpc::CallbackServerContext* ctx, Resp* resp,
                                                     bool mutation, Call call) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (mutation && !leadership_->IsLeader()) {
    const std::string leader = leadership_->Leader();
    reactor->Finish(grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        absl::StrCat("this catalogue replica is not the transfer leader; send mutations to ",
                     leader.empty() ? "the leader (none elected right now; retry)" : leader)));
    return reactor;
  }
  pool_.Run([reactor, resp, call] {
    auto result = call();
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
  return Serve(ctx, resp, false, [this, req] { return coordinator_->Plan(*req); });
}

grpc::ServerUnaryReactor* TransferServiceImpl::CreateTransfer(grpc::CallbackServerContext* ctx,
                                                              const CreateTransferRequest* req,
                                                              Transfer* resp) {
  return Serve(ctx, resp, true, [this, req] { return coordinator_->Create(*req); });
}

grpc::ServerUnaryReactor* TransferServiceImpl::ApproveTransfer(grpc::CallbackServerContext* ctx,
                                                               const ApproveTransferRequest* req,
                                                               Transfer* resp) {
  return Serve(ctx, resp, true, [this, req] { return coordinator_->Approve(*req); });
}

grpc::ServerUnaryReactor* TransferServiceImpl::ShipTransfer(grpc::CallbackServerContext* ctx,
                                                            const ShipTransferLegRequest* req,
                                                            Transfer* resp) {
  return Serve(ctx, resp, true, [this, req] { return coordinator_->Ship(*req); });
}

grpc::ServerUnaryReactor* TransferServiceImpl::ReceiveTransfer(grpc::CallbackServerContext* ctx,
                                                               const ReceiveTransferLegRequest* req,
                                                               Transfer* resp) {
  return Serve(ctx, resp, true, [this, req] { return coordinator_->Receive(*req); });
}

grpc::ServerUnaryReactor* TransferServiceImpl::CancelTransfer(grpc::CallbackServerContext* ctx,
                                                              const CancelTransferRequest* req,
                                                              Transfer* resp) {
  return Serve(ctx, resp, true, [this, req] { return coordinator_->Cancel(*req); });
}

grpc::ServerUnaryReactor* TransferServiceImpl::GetTransfer(grpc::CallbackServerContext* ctx,
                                                           const GetTransferRequest* req,
                                                           Transfer* resp) {
  return Serve(ctx, resp, false, [this, req] { return coordinator_->Get(req->name()); });
}

grpc::ServerUnaryReactor* TransferServiceImpl::ListTransfers(grpc::CallbackServerContext* ctx,
                                                             const ListTransfersRequest* req,
                                                             ListTransfersResponse* resp) {
  return Serve(ctx, resp, false, [this, req] { return coordinator_->List(*req); });
}

}  // namespace stockpile::catalogue::allocation
