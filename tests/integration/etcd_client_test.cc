// EtcdClient against a real etcd: KV, transactions, leases, deadlines and endpoint failover.
#include "services/common/etcd/etcd_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "tests/testutil/etcd_process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::etcd {
namespace {

using ::stockpile::testing::EtcdProcess;
using ::stockpile::testing::FreePort;
using ::stockpile::testing::IsOk;
using ::stockpile::testing::StatusIs;
using ::stockpile::testing::TempDir;
using ::stockpile::testing::WaitFor;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(etcd_.Start(15s, &error)) << error;
    auto client = EtcdClient::Create(etcd_.endpoint());
    ASSERT_THAT(client, IsOk());
    client_ = std::move(*client);
  }

  bool KeyExists(const std::string& key) {
    auto range = client_->Range(key);
    return range.ok() && !range->kvs.empty();
  }

  TempDir tmp_;
  EtcdProcess etcd_{tmp_.path()};
  std::unique_ptr<EtcdClient> client_;
};

TEST(EtcdClientCreateTest, RejectsMalformedEndpoints) {
  EXPECT_THAT(EtcdClient::Create(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EtcdClient::Create("localhost"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EtcdClient::Create("http://127.0.0.1:2379, 127.0.0.1:22379"), IsOk());
}

TEST(EtcdClientCreateTest, PrefixRangeEndIncrementsLastByte) {
  EXPECT_EQ(PrefixRangeEnd("/a/"), "/a0");
  EXPECT_EQ(PrefixRangeEnd("ab\xff"), "ac");
}

TEST_F(EtcdClientTest, PutRangeAndDelete) {
  ASSERT_THAT(client_->Put("/t/a", "1"), IsOk());
  ASSERT_THAT(client_->Put("/t/b", "2"), IsOk());
  ASSERT_THAT(client_->Put("/t/c", "3"), IsOk());
  ASSERT_THAT(client_->Put("/u/a", "outside"), IsOk());

  auto one = client_->Range("/t/b");
  ASSERT_THAT(one, IsOk());
  ASSERT_EQ(one->kvs.size(), 1u);
  EXPECT_EQ(one->kvs[0].value, "2");
  EXPECT_GT(one->kvs[0].create_revision, 0);
  EXPECT_GE(one->revision, one->kvs[0].mod_revision);

  auto prefix = client_->RangePrefix("/t/");
  ASSERT_THAT(prefix, IsOk());
  EXPECT_THAT(prefix->kvs, ElementsAre(Field(&KeyValue::key, "/t/a"), Field(&KeyValue::key, "/t/b"),
                                       Field(&KeyValue::key, "/t/c")));

  EXPECT_EQ(*client_->DeleteRange("/t/a"), 1);
  EXPECT_EQ(*client_->DeleteRange("/t/a"), 0);
  EXPECT_EQ(*client_->DeletePrefix("/t/"), 2);
  EXPECT_TRUE(client_->RangePrefix("/t/")->kvs.empty());
  EXPECT_TRUE(KeyExists("/u/a"));
}

TEST_F(EtcdClientTest, TransactionsCompareBeforeWriting) {
  EXPECT_EQ(*client_->PutIfAbsent("/x", "first"), true);
  EXPECT_EQ(*client_->PutIfAbsent("/x", "second"), false);
  EXPECT_EQ(client_->Range("/x")->kvs[0].value, "first");

  EXPECT_EQ(*client_->CompareAndSwap("/x", "wrong", "v2"), false);
  EXPECT_EQ(*client_->CompareAndSwap("/x", "first", "v2"), true);
  EXPECT_EQ(client_->Range("/x")->kvs[0].value, "v2");

  EXPECT_EQ(*client_->DeleteIfValue("/x", "first"), false);
  EXPECT_TRUE(KeyExists("/x"));
  EXPECT_EQ(*client_->DeleteIfValue("/x", "v2"), true);
  EXPECT_FALSE(KeyExists("/x"));

  auto lease = client_->LeaseGrant(10);
  ASSERT_THAT(lease, IsOk());
  ASSERT_THAT(client_->Put("/y", "v", lease->id), IsOk());
  EXPECT_EQ(*client_->DeleteIfLease("/y", lease->id + 1), false);
  EXPECT_EQ(*client_->DeleteIfLease("/y", lease->id), true);
  EXPECT_FALSE(KeyExists("/y"));
}

TEST_F(EtcdClientTest, KeepAliveKeepsKeyPastTtlAndRevokeRemovesIt) {
  auto lease = client_->LeaseGrant(2);
  ASSERT_THAT(lease, IsOk());
  EXPECT_EQ(lease->ttl_seconds, 2);
  ASSERT_THAT(client_->Put("/leased", "v", lease->id), IsOk());
  EXPECT_EQ(client_->Range("/leased")->kvs[0].lease, lease->id);

  const auto until = std::chrono::steady_clock::now() + 4s;  // twice the TTL
  while (std::chrono::steady_clock::now() < until) {
    auto ttl = client_->KeepAliveOnce(lease->id);
    ASSERT_THAT(ttl, IsOk());
    EXPECT_GT(*ttl, 0);
    std::this_thread::sleep_for(600ms);
  }
  EXPECT_TRUE(KeyExists("/leased"));

  ASSERT_THAT(client_->LeaseRevoke(lease->id), IsOk());
  EXPECT_FALSE(KeyExists("/leased"));  // at once, not after the TTL
  EXPECT_THAT(client_->LeaseRevoke(lease->id), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(EtcdClientTest, KeyVanishesWhenLeaseExpiresWithoutKeepAlive) {
  auto lease = client_->LeaseGrant(2);
  ASSERT_THAT(lease, IsOk());
  ASSERT_THAT(client_->Put("/expiring", "v", lease->id), IsOk());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(WaitFor([&] { return !KeyExists("/expiring"); }, 8s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1s);
  // An expired lease is not an RPC error: the keepalive answers TTL 0.
  EXPECT_EQ(*client_->KeepAliveOnce(lease->id), 0);
}

TEST_F(EtcdClientTest, KeepAliveOfUnknownLeaseAnswersZeroTtl) {
  auto ttl = client_->KeepAliveOnce(0x1234567);
  ASSERT_THAT(ttl, IsOk());
  EXPECT_EQ(*ttl, 0);
}

TEST_F(EtcdClientTest, InteroperatesWithEtcdctl) {
  ASSERT_THAT(client_->Put("/interop/ours", "from-client"), IsOk());
  std::string out;
  ASSERT_EQ(etcd_.Etcdctl({"get", "/interop/ours", "--print-value-only"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("from-client"));
  ASSERT_EQ(etcd_.Etcdctl({"put", "/interop/theirs", "from-etcdctl"}, &out), 0) << out;
  EXPECT_EQ(client_->Range("/interop/theirs")->kvs.at(0).value, "from-etcdctl");
}

TEST_F(EtcdClientTest, UnavailableWithinDeadlineWhenEtcdIsDown) {
  EtcdClientOptions options;
  options.endpoints = etcd_.endpoint();
  options.call_timeout = absl::Seconds(1);
  auto client = EtcdClient::Create(options);
  ASSERT_THAT(client, IsOk());
  ASSERT_THAT((*client)->Put("/k", "v"), IsOk());
  etcd_.Kill();

  for (int i = 0; i < 3; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto range = (*client)->Range("/k");
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_THAT(range, StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_LT(elapsed, 1500ms);
  }
  auto ttl = (*client)->KeepAliveOnce(1);
  EXPECT_THAT(ttl, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT((*client)->LeaseGrant(5), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(EtcdClientTest, FailsOverToTheNextEndpoint) {
  const std::string dead = "127.0.0.1:" + std::to_string(FreePort());
  auto client = EtcdClient::Create(dead + "," + etcd_.endpoint());
  ASSERT_THAT(client, IsOk());
  EXPECT_THAT((*client)->Put("/failover", "ok"), IsOk());
  EXPECT_EQ((*client)->Range("/failover")->kvs.at(0).value, "ok");
}

TEST_F(EtcdClientTest, WorksAgainAfterEtcdRestarts) {
  ASSERT_THAT(client_->Put("/durable", "v"), IsOk());
  etcd_.Kill();
  EXPECT_THAT(client_->Range("/durable"), StatusIs(absl::StatusCode::kUnavailable));
  std::string error;
  ASSERT_TRUE(etcd_.Restart(15s, &error)) << error;
  // The channel reconnects with a short backoff (at most 1 s).
  EXPECT_TRUE(WaitFor([&] { return KeyExists("/durable"); }, 5s));
}

}  // namespace
}  // namespace stockpile::etcd
