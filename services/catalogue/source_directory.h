#pragma once

// Where the catalogue learns which level instances exist.
//  - EtcdSourceDirectory watches <prefix> (default /stockpile/v1/instances/) and turns every
//    level instance's registration into AddSource, its disappearance (lease expired, revoked)
//    into RemoveSource (data kept, flagged stale). A resync after etcd trouble replaces the set.
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

  CatalogueCore* core_;
  std::map<std::string, std::string> id_by_key_;  // touched only on the watcher thread
  etcd::Watcher watcher_;
};

}  // namespace stockpile::catalogue
