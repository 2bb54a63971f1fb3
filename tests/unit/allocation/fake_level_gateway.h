#pragma once

// An in-memory stand-in for the level services, with the same idempotency contract (a repeated
// request_id returns the first answer and moves nothing; the same id with other content, actor
// included, is INVALID_ARGUMENT) and knobs for failures: a warehouse that is unreachable, a reply
// lost after the call was applied, a hold that expires. Every warehouse exists and takes stock
// unless a test says otherwise (SetWarehouseStatus, RemoveWarehouse).

#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "services/catalogue/allocation/level_gateway.h"
#include "services/common/status_macros.h"

namespace stockpile::catalogue::allocation {

class FakeLevelGateway : public LevelGateway {
 public:
  // Available stock per (warehouse name, item, lot).
  void SetStock(const std::string& warehouse, const std::string& item, int64_t qty,
                const std::string& lot = "DEFAULT") {
    absl::MutexLock l(&mu_);
    stock_[{warehouse, item, lot}] = qty;
  }
  int64_t Available(const std::string& warehouse, const std::string& item,
                    const std::string& lot = "DEFAULT") {
    absl::MutexLock l(&mu_);
    return stock_[{warehouse, item, lot}];
  }
  int64_t Received(const std::string& warehouse, const std::string& item) {
    absl::MutexLock l(&mu_);
    return received_[{warehouse, item}];
  }
  void SetDown(const std::string& warehouse, bool down) {
    absl::MutexLock l(&mu_);
    if (down)
      down_.insert(warehouse);
    else
      down_.erase(warehouse);
  }
  // The next call at `warehouse` is applied but its reply is lost (UNAVAILABLE); with
  // `then_down` the warehouse stays unreachable afterwards.
  void LoseNextReply(const std::string& warehouse, bool then_down = false) {
    absl::MutexLock l(&mu_);
    lose_reply_.insert(warehouse);
    if (then_down) go_down_.insert(warehouse);
  }
  void SetWarehouseStatus(const std::string& warehouse, v1::WarehouseStatus status) {
    absl::MutexLock l(&mu_);
    status_[warehouse] = status;
  }
  void RemoveWarehouse(const std::string& warehouse) {
    SetWarehouseStatus(warehouse, v1::WAREHOUSE_STATUS_UNSPECIFIED);
  }
  // A China midnight passed `lot`'s last usable day: as the level does, holds of it are refused
  // and so is the shipment of a hold that took it.
  void ExpireLot(const std::string& warehouse, const std::string& item, const std::string& lot) {
    absl::MutexLock l(&mu_);
    expired_lots_.insert({warehouse, item, lot});
  }
  void SameInstanceFor(const std::string& a, const std::string& b) {
    absl::MutexLock l(&mu_);
    same_.insert({a, b});
    same_.insert({b, a});
  }
  void Expire(const std::string& hold_id) {
    absl::MutexLock l(&mu_);
    v1::Hold& h = holds_[hold_id];
    if (h.state() != v1::HOLD_STATE_ACTIVE) return;
    Return(h);
    h.set_state(v1::HOLD_STATE_EXPIRED);
  }
  // The source's database went back to before the hold (restored from a backup): the hold
  // and the stock it held are as if it had never been placed.
  void Forget(const std::string& hold_id) {
    absl::MutexLock l(&mu_);
    auto it = holds_.find(hold_id);
    if (it == holds_.end()) return;
    if (it->second.state() == v1::HOLD_STATE_ACTIVE) Return(it->second);
    holds_.erase(it);
  }
  int Placements(const std::string& hold_id) {
    absl::MutexLock l(&mu_);
    return placements_[hold_id];
  }
  int ActiveHolds() {
    absl::MutexLock l(&mu_);
    int n = 0;
    for (const auto& [id, h] : holds_) n += h.state() == v1::HOLD_STATE_ACTIVE;
    return n;
  }
  int Replays() {
    absl::MutexLock l(&mu_);
    return replays_;
  }
  int Calls(const std::string& method) {
    absl::MutexLock l(&mu_);
    return calls_[method];
  }
  // The actor of each call of `method` that was applied (not replayed), in order.
  std::vector<std::string> Actors(const std::string& method) {
    absl::MutexLock l(&mu_);
    return actors_[method];
  }

  absl::StatusOr<v1::Hold> Hold(const v1::HoldRequest& req) override {
    return Run<v1::Hold>("Hold", req.op().warehouse(), req, [&]() -> absl::StatusOr<v1::Hold> {
      const auto& op = req.op();
      if (holds_.contains(op.hold_id())) return absl::AlreadyExistsError("hold exists");
      for (const auto& l : op.lots()) {
        if (expired_lots_.contains({op.warehouse(), op.item(), l.lot()})) {
          return absl::FailedPreconditionError(
              absl::StrCat("lot ", l.lot(), " of ", op.item(), " has expired"));
        }
        if (stock_[{op.warehouse(), op.item(), l.lot()}] < l.quantity()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "only ", stock_[{op.warehouse(), op.item(), l.lot()}], " of lot ", l.lot()));
        }
      }
      v1::Hold h;
      h.set_hold_id(op.hold_id());
      h.set_name("holds/" + op.hold_id());
      h.set_warehouse(op.warehouse());
      h.set_item(op.item());
      h.set_quantity(op.quantity());
      h.set_reference(op.reference());
      *h.mutable_lots() = op.lots();
      h.set_state(v1::HOLD_STATE_ACTIVE);
      h.mutable_expire_time()->set_seconds(1'767'225'600 + op.ttl_seconds());
      for (const auto& l : op.lots()) stock_[{op.warehouse(), op.item(), l.lot()}] -= l.quantity();
      placements_[op.hold_id()]++;
      holds_[op.hold_id()] = h;
      return h;
    });
  }
  absl::StatusOr<v1::Hold> Release(absl::string_view source,
                                   const v1::ReleaseRequest& req) override {
    return Run<v1::Hold>("Release", std::string(source), req, [&]() -> absl::StatusOr<v1::Hold> {
      const auto& op = req.op();
      if (!holds_.contains(op.hold_id()) && !op.warehouse_if_absent().empty()) {
        v1::Hold closed;  // as the level does: the id is taken, nothing is held
        closed.set_hold_id(op.hold_id());
        closed.set_name("holds/" + op.hold_id());
        closed.set_warehouse(op.warehouse_if_absent());
        closed.set_state(v1::HOLD_STATE_RELEASED);
        holds_[op.hold_id()] = closed;
        return closed;
      }
      ASSIGN_OR_RETURN(v1::Hold * h, Find(op.hold_id(), v1::HOLD_STATE_ACTIVE));
      Return(*h);
      h->set_state(v1::HOLD_STATE_RELEASED);
      return *h;
    });
  }
  absl::StatusOr<v1::Hold> Ship(absl::string_view source, const v1::ShipRequest& req) override {
    return Run<v1::Hold>("Ship", std::string(source), req, [&]() -> absl::StatusOr<v1::Hold> {
      ASSIGN_OR_RETURN(v1::Hold * h, Find(req.op().hold_id(), v1::HOLD_STATE_ACTIVE));
      for (const auto& l : h->lots()) {
        if (expired_lots_.contains({h->warehouse(), h->item(), l.lot()})) {
          return absl::FailedPreconditionError(
              absl::StrCat("cannot ship hold ", h->name(), ": its lot ", l.lot(), " expired on ",
                           l.expiry_date(), " after the hold was placed"));
        }
      }
      h->set_state(v1::HOLD_STATE_SHIPPED);
      h->set_destination(req.op().destination());
      return *h;
    });
  }
  absl::Status ReceiveTransfer(const v1::ReceiveTransferRequest& req) override {
    return Run<v1::Hold>("ReceiveTransfer", req.op().warehouse(), req,
                         [&]() -> absl::StatusOr<v1::Hold> {
                           const auto& op = req.op();
                           for (const auto& l : op.lots()) {
                             received_[{op.warehouse(), op.item()}] += l.received();
                           }
                           receipts_[req.request_id()] = op;
                           if (same_.contains({op.warehouse(), op.source_warehouse()})) {
                             ASSIGN_OR_RETURN(v1::Hold * h,
                                              Find(op.hold_id(), v1::HOLD_STATE_SHIPPED));
                             h->set_state(v1::HOLD_STATE_DELIVERED);
                           }
                           return v1::Hold();
                         })
        .status();
  }
  absl::StatusOr<v1::Hold> ConfirmDelivery(absl::string_view source,
                                           const v1::ConfirmDeliveryRequest& req) override {
    return Run<v1::Hold>(
        "ConfirmDelivery", std::string(source), req, [&]() -> absl::StatusOr<v1::Hold> {
          ASSIGN_OR_RETURN(v1::Hold * h, Find(req.op().hold_id(), v1::HOLD_STATE_SHIPPED));
          h->set_state(v1::HOLD_STATE_DELIVERED);
          return *h;
        });
  }
  absl::StatusOr<v1::Hold> GetHold(absl::string_view source, absl::string_view hold_id) override {
    absl::MutexLock l(&mu_);
    if (down_.contains(std::string(source))) return absl::UnavailableError("down");
    auto it = holds_.find(std::string(hold_id));
    if (it == holds_.end()) return absl::NotFoundError("no such hold");
    return it->second;
  }
  // As the level answers from a receipt's stored result: per lot what arrived, and the loss.
  absl::StatusOr<std::vector<v1::Movement>> MovementsOfRequest(
      absl::string_view warehouse, absl::string_view request_id) override {
    absl::MutexLock l(&mu_);
    calls_["MovementsOfRequest"]++;
    if (down_.contains(std::string(warehouse))) return absl::UnavailableError("down");
    std::vector<v1::Movement> out;
    auto it = receipts_.find(std::string(request_id));
    if (it == receipts_.end() || it->second.warehouse() != warehouse) return out;
    for (const auto& lot : it->second.lots()) {
      out.push_back(ReceiptMovement(v1::MOVEMENT_TYPE_RECEIVE_TRANSFER, lot, lot.received()));
      if (lot.quantity() > lot.received()) {
        out.push_back(ReceiptMovement(v1::MOVEMENT_TYPE_TRANSIT_LOSS, lot,
                                      -(lot.quantity() - lot.received())));
      }
    }
    return out;
  }
  absl::StatusOr<v1::Warehouse> GetWarehouse(absl::string_view name) override {
    absl::MutexLock l(&mu_);
    calls_["GetWarehouse"]++;
    const std::string key(name);
    if (down_.contains(key)) return absl::UnavailableError(key + " is down");
    auto it = status_.find(key);
    if (it != status_.end() && it->second == v1::WAREHOUSE_STATUS_UNSPECIFIED) {
      return absl::NotFoundError(absl::StrCat("warehouse ", key, " does not exist"));
    }
    v1::Warehouse w;
    w.set_name(key);
    w.set_code(key.substr(key.find('/') + 1));
    w.set_status(it == status_.end() ? v1::WAREHOUSE_STATUS_ACTIVE : it->second);
    return w;
  }
  absl::StatusOr<bool> SameInstance(absl::string_view a, absl::string_view b) override {
    absl::MutexLock l(&mu_);
    return same_.contains({std::string(a), std::string(b)});
  }

 private:
  template <typename T, typename Req, typename F>
  absl::StatusOr<T> Run(const std::string& method, const std::string& warehouse, const Req& req,
                        F apply) {
    absl::MutexLock l(&mu_);
    calls_[method]++;
    if (down_.contains(warehouse)) return absl::UnavailableError(warehouse + " is down");
    Req content = req;
    content.clear_request_id();
    auto seen = answers_.find(req.request_id());
    if (seen != answers_.end()) {
      if (seen->second.first != content.SerializeAsString()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "request_id ", req.request_id(), " was already used for a different request"));
      }
      replays_++;
      T out;
      out.ParseFromString(seen->second.second);
      return out;
    }
    absl::StatusOr<T> r = apply();
    if (r.ok()) {
      answers_[req.request_id()] = {content.SerializeAsString(), r->SerializeAsString()};
      actors_[method].push_back(req.actor());
    }
    if (r.ok() && lose_reply_.erase(warehouse) > 0) {
      if (go_down_.erase(warehouse) > 0) down_.insert(warehouse);
      return absl::UnavailableError("reply lost");
    }
    return r;
  }
  absl::StatusOr<v1::Hold*> Find(const std::string& id, v1::HoldState want) {
    auto it = holds_.find(id);
    if (it == holds_.end()) return absl::NotFoundError("no such hold " + id);
    if (it->second.state() != want) return absl::FailedPreconditionError("hold in wrong state");
    return &it->second;
  }
  static v1::Movement ReceiptMovement(v1::MovementType type, const v1::HoldLot& lot,
                                      int64_t quantity) {
    v1::Movement m;
    m.set_type(type);
    m.set_lot(lot.lot());
    m.set_expiry_date(lot.expiry_date());
    m.set_quantity(quantity);
    return m;
  }
  void Return(const v1::Hold& h) {
    for (const auto& l : h.lots()) stock_[{h.warehouse(), h.item(), l.lot()}] += l.quantity();
  }

  absl::Mutex mu_;
  std::map<std::tuple<std::string, std::string, std::string>, int64_t> stock_;
  std::map<std::pair<std::string, std::string>, int64_t> received_;
  std::map<std::string, v1::Hold> holds_;
  std::map<std::string, v1::ReceiveTransferOp> receipts_;               // by request_id
  std::map<std::string, std::pair<std::string, std::string>> answers_;  // content, answer
  std::map<std::string, std::vector<std::string>> actors_;
  std::map<std::string, int> placements_;
  std::map<std::string, int> calls_;
  std::map<std::string, v1::WarehouseStatus> status_;  // UNSPECIFIED: removed
  std::set<std::string> down_, lose_reply_, go_down_;
  std::set<std::tuple<std::string, std::string, std::string>> expired_lots_;
  std::set<std::pair<std::string, std::string>> same_;
  int replays_ = 0;
};

}  // namespace stockpile::catalogue::allocation
