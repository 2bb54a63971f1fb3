#pragma once

// A fixture with a real etcd on free loopback ports (EtcdProcess) and a client for it: the
// set-up the etcd, registration, election, watcher, transfer-sharing and level etcd fault tests
// share. Targets using it link stockpile_etcd and stockpile_testutil_etcd.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "services/common/etcd/etcd_client.h"
#include "tests/testutil/etcd_process.h"
#include "tests/testutil/process.h"

namespace stockpile::testing {

class EtcdFixture : public ::testing::Test {
 protected:
  explicit EtcdFixture(absl::Duration call_timeout = absl::Seconds(1))
      : call_timeout_(call_timeout) {}

  void SetUp() override {
    std::string error;
    ASSERT_TRUE(etcd_.Start(std::chrono::seconds(15), &error)) << error;
    etcd::EtcdClientOptions options;
    options.endpoints = etcd_.endpoint();
    options.call_timeout = call_timeout_;
    auto client = etcd::EtcdClient::Create(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  const absl::Duration call_timeout_;
  TempDir tmp_;
  EtcdProcess etcd_{tmp_.path()};
  std::shared_ptr<etcd::EtcdClient> client_;
};

}  // namespace stockpile::testing
