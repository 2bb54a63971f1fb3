#pragma once

// stockpile.v1.TransferService over the coordinator and planner (gRPC callback API). Handlers
// validate nothing themselves (the coordinator does) and never block a gRPC thread: each call
// runs on a small worker pool, since a mutation may wait on level services (bounded by the
// coordinator's retry deadline). Reads (PlanAllocation, GetTransfer, ListTransfers) work on
// every replica. A mutation reaching a non-leader (the chart's Service spreads calls over every
// replica) is forwarded to the leader with the caller's own token, so the leader authorizes and
// audits the caller; without forwarding set up (or for a call already forwarded once) it gets
// UNAVAILABLE naming the leader (retry: leadership moved, or the caller's retry is forwarded).
//
// Access (docs/security.md): every handler first reads the verdict the auth interceptor recorded
// (auth::CallIdentity) and refuses before touching anything; mutations record the token's
// subject as the actor (auth::AuditActor), not the request's `actor`.

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/catalogue/allocation/leader.h"
#include "services/catalogue/allocation/saga.h"
#include "services/common/auth/authorizer.h"
#include "stockpile/v1/transfer_service.grpc.pb.h"

namespace stockpile::catalogue::allocation {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();  // runs what is queued, then joins
  void Run(std::function<void()> task);

 private:
  void Loop();
  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

class TransferServiceImpl final : public stockpile::v1::TransferService::CallbackService {
 public:
  TransferServiceImpl(TransferCoordinator* coordinator, const Leadership* leadership,
                      int workers = 4);

  // How a follower reaches the leader (its advertised address) to forward mutations; set
  // before the server starts. Channels are made once per leader address and kept.
  struct LeaderForwarding {
    std::function<std::shared_ptr<grpc::Channel>(const std::string& address)> channel_factory;
    absl::Duration timeout = absl::Seconds(60);  // when the caller set no earlier deadline
  };
  void SetLeaderForwarding(LeaderForwarding forwarding) { forwarding_ = std::move(forwarding); }

  grpc::ServerUnaryReactor* PlanAllocation(grpc::CallbackServerContext* ctx,
                                           const stockpile::v1::PlanAllocationRequest* req,
                                           stockpile::v1::AllocationPlan* resp) override;
  grpc::ServerUnaryReactor* CreateTransfer(grpc::CallbackServerContext* ctx,
                                           const stockpile::v1::CreateTransferRequest* req,
                                           stockpile::v1::Transfer* resp) override;
  grpc::ServerUnaryReactor* ApproveTransfer(grpc::CallbackServerContext* ctx,
                                            const stockpile::v1::ApproveTransferRequest* req,
                                            stockpile::v1::Transfer* resp) override;
  grpc::ServerUnaryReactor* ShipTransfer(grpc::CallbackServerContext* ctx,
                                         const stockpile::v1::ShipTransferLegRequest* req,
                                         stockpile::v1::Transfer* resp) override;
  grpc::ServerUnaryReactor* ReceiveTransfer(grpc::CallbackServerContext* ctx,
                                            const stockpile::v1::ReceiveTransferLegRequest* req,
                                            stockpile::v1::Transfer* resp) override;
  grpc::ServerUnaryReactor* CancelTransfer(grpc::CallbackServerContext* ctx,
                                           const stockpile::v1::CancelTransferRequest* req,
                                           stockpile::v1::Transfer* resp) override;
  grpc::ServerUnaryReactor* GetTransfer(grpc::CallbackServerContext* ctx,
                                        const stockpile::v1::GetTransferRequest* req,
                                        stockpile::v1::Transfer* resp) override;
  grpc::ServerUnaryReactor* ListTransfers(grpc::CallbackServerContext* ctx,
                                          const stockpile::v1::ListTransfersRequest* req,
                                          stockpile::v1::ListTransfersResponse* resp) override;

 private:
  // The same call made to the leader (a stub method bound to the request).
  template <typename Resp>
  using Forward = std::function<grpc::Status(stockpile::v1::TransferService::Stub&,
                                             grpc::ClientContext*, Resp*)>;

  // Checks the call's verdict, then runs `call(identity)` on the pool and finishes the reactor
  // with its result. A mutation (`forward` set) on a follower goes to the leader instead.
  template <typename Resp, typename Call>
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx, Resp* resp, Call call,
                                  std::type_identity_t<Forward<Resp>> forward = nullptr);
  // Sends the call on to `leader` on the pool; false when it cannot (no forwarding set up, or
  // the call was forwarded to this replica already).
  template <typename Resp>
  bool ForwardToLeader(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
                       Resp* resp, const std::string& leader,
                       std::type_identity_t<Forward<Resp>> forward);
  std::shared_ptr<grpc::Channel> LeaderChannel(const std::string& address);

  TransferCoordinator* const coordinator_;
  const Leadership* const leadership_;
  LeaderForwarding forwarding_;
  absl::Mutex channels_mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_ ABSL_GUARDED_BY(channels_mu_);
  WorkerPool pool_;  // last: joins before the rest goes
};

// The authorizer's view of a transfer: destination and each leg's source, read from the
// coordinator's store (scoped tokens naming a transfer are placed by it).
auth::TransferLookup MakeTransferLookup(const TransferCoordinator* coordinator);

}  // namespace stockpile::catalogue::allocation
