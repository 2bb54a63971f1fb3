#pragma once

// Where the catalogue learns which level instances exist.
//  - EtcdSourceDirectory watches <prefix> (default /stockpile/v1/instances/) and turns every
//    level instance's registration into AddSource, its disappearance (lease expired, revoked)
//    into RemoveSource (data kept, flagged stale). A resync after etcd trouble replaces the set.
//    A key <prefix>forgotten/<id> (PublishForgotten: an operator forgot that gone source on one
//    replica) makes every replica forget it too; the source registering again deletes the key.
//  - StaticSourceDirectory hands a fixed list to the core (the embedded single-process mode).

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/catalogue/catalogue_core.h"
#include "services/common/etcd/etcd_client.h"
#include "services/common/etcd/watcher.h"

namespace stockpile::catalogue {

class SourceDirectory {
 public:
  virtual ~SourceDirectory() = default;
  virtual void Start() = 0;
  virtual void Stop() = 0;
};

class StaticSourceDirectory final : public SourceDirectory {
 public:
  StaticSourceDirectory(CatalogueCore* core, std::vector<SourceSpec> sources)
      : core_(core), sources_(std::move(sources)) {}
  void Start() override { core_->SetSources(sources_); }
  void Stop() override {}

 private:
  CatalogueCore* core_;
  std::vector<SourceSpec> sources_;
};

// A registration value ({"id","level","address","region_prefixes",...}) as a source, or an
// error when it is malformed or not a level instance (e.g. another catalogue).
absl::StatusOr<SourceSpec> SourceFromRegistration(absl::string_view json);

// Where every replica learns that `id` was forgotten: "<prefix>forgotten/<id>".
std::string ForgottenKey(absl::string_view prefix, absl::string_view id);
// Tells every replica watching `prefix` that `source` was forgotten (ForgetSource) here.
absl::Status PublishForgotten(etcd::EtcdClient& client, absl::string_view prefix,
                              const stockpile::v1::ReplicationSource& source);

class EtcdSourceDirectory final : public SourceDirectory {
 public:
  EtcdSourceDirectory(CatalogueCore* core, std::shared_ptr<etcd::EtcdClient> client,
                      std::string prefix);
  ~EtcdSourceDirectory() override;
  void Start() override;
  void Stop() override;
  bool connected() const { return watcher_.connected(); }

 private:
  void OnResync(const std::vector<etcd::KeyValue>& current);
  void OnEvents(const std::vector<etcd::WatchEvent>& events);
  // A forgotten-source key: forgets the source here (unless it is registered again).
  void OnForgotten(const etcd::KeyValue& kv);
  // Records `key` as `id`'s registration; false (logged) when another key already is one.
  bool AcceptRegistration(const std::string& key, const std::string& id);

  CatalogueCore* core_;
  std::shared_ptr<etcd::EtcdClient> client_;
  const std::string prefix_;
  std::map<std::string, std::string> id_by_key_;  // touched only on the watcher thread
  etcd::Watcher watcher_;
};

}  // namespace stockpile::catalogue
