#include "services/catalogue/source_directory.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "services/common/etcd/registration.h"
#include "services/common/validation.h"

namespace stockpile::catalogue {

absl::StatusOr<SourceSpec> SourceFromRegistration(absl::string_view json) {
  auto info = etcd::InstanceFromJson(json);
  if (!info.ok()) return info.status();
  auto level = common::ParseLevel(info->level);
  if (!level || *level == stockpile::v1::LEVEL_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat("instance '", info->id, "' is a ", info->level, ", not a level service"));
  }
  if (info->id.empty() || info->address.empty()) {
    return absl::InvalidArgumentError("registration lacks id or address");
  }
  return SourceSpec{info->id, *level, info->address, info->region_prefixes};
}

EtcdSourceDirectory::EtcdSourceDirectory(CatalogueCore* core,
                                         std::shared_ptr<etcd::EtcdClient> client,
                                         std::string prefix)
    : core_(core),
      watcher_(
          std::move(client), etcd::WatcherOptions{std::move(prefix)},
          [this](const std::vector<etcd::KeyValue>& current, int64_t) { OnResync(current); },
          [this](const std::vector<etcd::WatchEvent>& events) { OnEvents(events); }) {}

EtcdSourceDirectory::~EtcdSourceDirectory() { Stop(); }

void EtcdSourceDirectory::Start() { watcher_.Start(); }
void EtcdSourceDirectory::Stop() { watcher_.Stop(); }

void EtcdSourceDirectory::OnResync(const std::vector<etcd::KeyValue>& current) {
  std::vector<SourceSpec> specs;
  id_by_key_.clear();
  for (const auto& kv : current) {
    auto spec = SourceFromRegistration(kv.value);
    if (!spec.ok()) continue;  // other kinds of instance live under the same prefix
    id_by_key_[kv.key] = spec->id;
    specs.push_back(*std::move(spec));
  }
  std::cerr << "stockpile-catalogue: etcd resync, " << specs.size() << " level instances"
            << std::endl;
  core_->SetSources(specs);
}

void EtcdSourceDirectory::OnEvents(const std::vector<etcd::WatchEvent>& events) {
  for (const auto& e : events) {
    if (e.type == etcd::WatchEvent::Type::kPut) {
      auto spec = SourceFromRegistration(e.kv.value);
      if (!spec.ok()) continue;
      id_by_key_[e.kv.key] = spec->id;
      core_->AddSource(*spec);
    } else if (auto it = id_by_key_.find(e.kv.key); it != id_by_key_.end()) {
      const std::string id = it->second;
      id_by_key_.erase(it);
      core_->RemoveSource(id);
    }
  }
}

}  // namespace stockpile::catalogue
