#include "services/catalogue/source_directory.h"

#include <google/protobuf/util/time_util.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
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

std::string ForgottenKey(absl::string_view prefix, absl::string_view id) {
  return absl::StrCat(prefix, "forgotten/", id);
}

absl::Status PublishForgotten(etcd::EtcdClient& client, absl::string_view prefix,
                              const stockpile::v1::ReplicationSource& source) {
  nlohmann::json value = {
      {"forgotten_source", source.instance_id()},
      {"request_id", source.forget_request_id()},
      {"actor", source.forgotten_by()},
      {"forget_time", google::protobuf::util::TimeUtil::ToString(source.forget_time())}};
  return client.Put(ForgottenKey(prefix, source.instance_id()), value.dump()).status();
}

namespace {

struct ForgottenNote {
  std::string id, request_id, actor;
};

absl::StatusOr<ForgottenNote> ParseForgotten(absl::string_view text) {
  auto value = nlohmann::json::parse(text, nullptr, false);
  auto field = [&](const char* name) {
    auto it = value.is_object() ? value.find(name) : value.end();
    return it != value.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  ForgottenNote note{field("forgotten_source"), field("request_id"), field("actor")};
  if (note.id.empty()) return absl::InvalidArgumentError("a forgotten-source key without an id");
  return note;
}

}  // namespace

EtcdSourceDirectory::EtcdSourceDirectory(CatalogueCore* core,
                                         std::shared_ptr<etcd::EtcdClient> client,
                                         std::string prefix)
    : core_(core),
      client_(client),
      prefix_(prefix),
      watcher_(
          std::move(client), etcd::WatcherOptions{std::move(prefix)},
          [this](const std::vector<etcd::KeyValue>& current, int64_t) { OnResync(current); },
          [this](const std::vector<etcd::WatchEvent>& events) { OnEvents(events); }) {}

EtcdSourceDirectory::~EtcdSourceDirectory() { Stop(); }

void EtcdSourceDirectory::Start() { watcher_.Start(); }
void EtcdSourceDirectory::Stop() { watcher_.Stop(); }

void EtcdSourceDirectory::OnResync(const std::vector<etcd::KeyValue>& current) {
  std::vector<SourceSpec> specs;
  std::vector<etcd::KeyValue> forgotten;
  id_by_key_.clear();
  for (const auto& kv : current) {
    if (absl::StartsWith(kv.key, ForgottenKey(prefix_, ""))) {
      forgotten.push_back(kv);
      continue;
    }
    auto spec = SourceFromRegistration(kv.value);
    if (!spec.ok()) continue;  // other kinds of instance live under the same prefix
    if (!AcceptRegistration(kv.key, spec->id)) continue;
    specs.push_back(*std::move(spec));
  }
  std::cerr << "stockpile-catalogue: etcd resync, " << specs.size() << " level instances"
            << std::endl;
  core_->SetSources(specs);
  for (const auto& kv : forgotten) OnForgotten(kv);
}

void EtcdSourceDirectory::OnEvents(const std::vector<etcd::WatchEvent>& events) {
  for (const auto& e : events) {
    const bool put = e.type == etcd::WatchEvent::Type::kPut;
    if (absl::StartsWith(e.kv.key, ForgottenKey(prefix_, ""))) {
      if (put) OnForgotten(e.kv);
      continue;
    }
    if (put) {
      auto spec = SourceFromRegistration(e.kv.value);
      if (!spec.ok() || !AcceptRegistration(e.kv.key, spec->id)) continue;
      core_->AddSource(*spec);
      // Back again: a later disappearance is a new one, not the one that was forgotten.
      client_->DeleteRange(ForgottenKey(prefix_, spec->id)).IgnoreError();
    } else if (auto it = id_by_key_.find(e.kv.key); it != id_by_key_.end()) {
      const std::string id = it->second;
      id_by_key_.erase(it);
      core_->RemoveSource(id);
    }
  }
}

bool EtcdSourceDirectory::AcceptRegistration(const std::string& key, const std::string& id) {
  for (const auto& [other_key, other_id] : id_by_key_) {
    if (other_id != id || other_key == key) continue;
    // Sources are known by id alone: a second instance under the same id (another level's,
    // started while etcd was away) must not take the first one's place in the national view.
    std::cerr << "stockpile-catalogue: ignoring the registration " << key << ": instance id " << id
              << " is already registered as " << other_key
              << "; instance ids must be unique across levels" << std::endl;
    return false;
  }
  id_by_key_[key] = id;
  return true;
}

void EtcdSourceDirectory::OnForgotten(const etcd::KeyValue& kv) {
  auto note = ParseForgotten(kv.value);
  if (!note.ok()) {
    std::cerr << "stockpile-catalogue: ignoring " << kv.key << ": " << note.status() << std::endl;
    return;
  }
  for (const auto& [key, id] : id_by_key_) {
    if (id != note->id) continue;
    // Registered again since it was forgotten: the key is stale.
    client_->DeleteIfValue(kv.key, kv.value).IgnoreError();
    return;
  }
  auto forgotten = core_->ForgetSource(note->id, note->request_id, note->actor);
  if (!forgotten.ok() && !absl::IsNotFound(forgotten.status())) {
    std::cerr << "stockpile-catalogue: cannot forget " << note->id
              << " as another replica did: " << forgotten.status() << std::endl;
  }
}

}  // namespace stockpile::catalogue
