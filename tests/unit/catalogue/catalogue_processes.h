#pragma once

// Real stockpile-level and stockpile-catalogue processes for the catalogue's integration and
// fault tests (shared by tests/integration/catalogue_*_test.cc and tests/fault/catalogue_*).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "stockpile/v1/catalogue_service.grpc.pb.h"
#include "stockpile/v1/level_service.grpc.pb.h"
#include "tests/testutil/process.h"

namespace stockpile::testing {

// Reads a port file written by a starting server; 0 until it is there.
inline int ReadPort(const std::string& path) {
  std::ifstream in(path);
  int port = 0;
  return (in >> port) ? port : 0;
}

class ServerProcess {
 public:
  ServerProcess(std::vector<std::string> argv, std::string port_file, std::string log)
      : port_file_(std::move(port_file)), process_(std::move(argv), std::move(log)) {}

  bool Start() {
    std::remove(port_file_.c_str());
    if (!process_.Start()) return false;
    const bool ready =
        WaitFor([&] { return (port_ = ReadPort(port_file_)) > 0; }, std::chrono::seconds(60));
    if (!ready) ADD_FAILURE() << "server did not start:\n" << process_.Log();
    channel_ = grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
    return ready;
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  Subprocess& process() { return process_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 protected:
  std::string port_file_;
  Subprocess process_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
};

// A level service registered in etcd (when `etcd` is not empty) under `id`.
class LevelServer : public ServerProcess {
 public:
  LevelServer(const TempDir& dir, const std::string& id, const std::string& level,
              const std::string& regions, const std::string& etcd, int ttl_seconds = 3)
      : ServerProcess(Args(dir, id, level, regions, etcd, ttl_seconds), dir.Sub(id + ".port"),
                      dir.Sub(id + ".log")) {}

  std::unique_ptr<stockpile::v1::LevelService::Stub> Stub() const {
    return stockpile::v1::LevelService::NewStub(channel_);
  }

 private:
  static std::vector<std::string> Args(const TempDir& dir, const std::string& id,
                                       const std::string& level, const std::string& regions,
                                       const std::string& etcd, int ttl) {
    std::vector<std::string> a = {BinaryDir() + "/bin/stockpile-level",
                                  "--level=" + level,
                                  "--regions=" + regions,
                                  "--db=" + dir.Sub(id + "-db"),
                                  "--reference-data=" + ReferenceDataDir(),
                                  "--listen=127.0.0.1:0",
                                  "--instance-id=" + id,
                                  "--port-file=" + dir.Sub(id + ".port")};
    if (!etcd.empty()) {
      a.push_back("--etcd-endpoints=" + etcd);
      a.push_back("--etcd-ttl=" + std::to_string(ttl));
    }
    return a;
  }
};

class CatalogueServer : public ServerProcess {
 public:
  // `sources`: without etcd, "id=level@host:port" entries.
  // `instance_id`: another one for each replica started beside the first.
  CatalogueServer(const TempDir& dir, const std::string& etcd,
                  const std::vector<std::string>& sources = {},
                  const std::string& instance_id = "catalogue-test")
      : ServerProcess(Args(dir, etcd, sources, instance_id), dir.Sub("catalogue.port"),
                      dir.Sub("catalogue.log")) {}

  std::unique_ptr<stockpile::v1::CatalogueService::Stub> Stub() const {
    return stockpile::v1::CatalogueService::NewStub(channel_);
  }

  std::vector<stockpile::v1::ReplicationSource> Status() const {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    stockpile::v1::GetReplicationStatusResponse resp;
    if (!Stub()->GetReplicationStatus(&ctx, {}, &resp).ok()) return {};
    return {resp.sources().begin(), resp.sources().end()};
  }

 private:
  static std::vector<std::string> Args(const TempDir& dir, const std::string& etcd,
                                       const std::vector<std::string>& sources,
                                       const std::string& instance_id) {
    std::vector<std::string> a = {BinaryDir() + "/bin/stockpile-catalogue",
                                  "--db=" + dir.Sub("catalogue-db"),
                                  "--reference-data=" + ReferenceDataDir(),
                                  "--listen=127.0.0.1:0",
                                  "--metrics-listen=127.0.0.1:0",
                                  "--instance-id=" + instance_id,
                                  "--port-file=" + dir.Sub("catalogue.port")};
    if (!etcd.empty()) a.push_back("--etcd-endpoints=" + etcd);
    for (const auto& s : sources) a.push_back("--source=" + s);
    return a;
  }
};

inline grpc::Status CreateWarehouse(stockpile::v1::LevelService::Stub& stub,
                                    const std::string& code, const std::string& region) {
  stockpile::v1::CreateWarehouseRequest req;
  req.set_request_id("create-" + code);
  req.set_actor("test");
  auto* w = req.mutable_warehouse();
  w->set_code(code);
  w->set_display_name("store " + code);
  w->set_region_code(region);
  w->set_kind(stockpile::v1::WAREHOUSE_KIND_GOVERNMENT);
  w->set_area_m2(5000);
  stockpile::v1::Warehouse out;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return stub.CreateWarehouse(&ctx, req, &out);
}

inline grpc::Status Receive(stockpile::v1::LevelService::Stub& stub, const std::string& code,
                            const std::string& item, int64_t quantity,
                            const std::string& request_id,
                            std::chrono::seconds timeout = std::chrono::seconds(10)) {
  stockpile::v1::ReceiveRequest req;
  req.set_request_id(request_id);
  req.set_actor("test");
  req.mutable_op()->set_warehouse("warehouses/" + code);
  req.mutable_op()->set_item(item);
  req.mutable_op()->set_quantity(quantity);
  stockpile::v1::MovementResult out;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  return stub.Receive(&ctx, req, &out);
}

inline int64_t RollupOnHand(stockpile::v1::CatalogueService::Stub& stub, const std::string& region,
                            const std::string& item) {
  stockpile::v1::GetRollupRequest req;
  req.set_region_code(region);
  req.set_item(item);
  stockpile::v1::Rollup out;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (!stub.GetRollup(&ctx, req, &out).ok() || out.items_size() != 1) return -1;
  return out.items(0).on_hand();
}

inline const stockpile::v1::ReplicationSource* FindSource(
    const std::vector<stockpile::v1::ReplicationSource>& sources, const std::string& id) {
  for (const auto& s : sources) {
    if (s.instance_id() == id) return &s;
  }
  return nullptr;
}

}  // namespace stockpile::testing
