// Our etcd client against a real etcd that serves clients over TLS with --client-cert-auth:
// with the CA and a client certificate it works; plaintext, or TLS without a client certificate,
// is refused; stockpile-level given --etcd-tls-* registers itself.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "services/common/etcd/etcd_client.h"
#include "tests/testutil/etcd_process.h"
#include "tests/testutil/level_process.h"
#include "tests/testutil/pki.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::testing {
namespace {

using ::testing::HasSubstr;

class EtcdTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pki_.MakeCa("ca") && pki_.MakeLeaf("etcd", "ca", "serverAuth") &&
                pki_.MakeLeaf("client", "ca", "clientAuth"))
        << pki_.log;
    etcd_.set_tls({.ca = pki_.Path("ca.pem"),
                   .server_cert = pki_.Path("etcd.pem"),
                   .server_key = pki_.Path("etcd.key"),
                   .client_cert = pki_.Path("client.pem"),
                   .client_key = pki_.Path("client.key")});
    std::string error;
    ASSERT_TRUE(etcd_.Start(std::chrono::seconds(20), &error)) << error;
  }

  etcd::EtcdClientOptions Options(bool ca, bool client_cert) {
    etcd::EtcdClientOptions options;
    options.endpoints = etcd_.endpoint();
    options.call_timeout = absl::Seconds(3);
    if (ca) options.tls_ca_file = pki_.Path("ca.pem");
    if (client_cert) {
      options.tls_cert_file = pki_.Path("client.pem");
      options.tls_key_file = pki_.Path("client.key");
    }
    return options;
  }

  std::unique_ptr<etcd::EtcdClient> Client(bool ca, bool client_cert) {
    auto client = etcd::EtcdClient::Create(Options(ca, client_cert));
    EXPECT_THAT(client.status(), IsOk());
    return client.ok() ? std::move(*client) : nullptr;
  }

  TempDir dir_;
  Pki pki_{dir_.path()};
  EtcdProcess etcd_{dir_.path()};
};

TEST_F(EtcdTlsTest, ClientWithCaAndCertificatePutsAndRanges) {
  auto client = Client(/*ca=*/true, /*client_cert=*/true);
  ASSERT_NE(client, nullptr);
  ASSERT_THAT(client->Put("/tls/key", "over TLS").status(), IsOk());
  auto range = client->Range("/tls/key");
  ASSERT_THAT(range.status(), IsOk());
  ASSERT_EQ(range->kvs.size(), 1u);
  EXPECT_EQ(range->kvs[0].value, "over TLS");
  // etcdctl, with the same certificates, sees what we wrote: it really went to this etcd.
  std::string output;
  ASSERT_EQ(etcd_.Etcdctl({"get", "/tls/key", "--print-value-only"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("over TLS"));
}

TEST_F(EtcdTlsTest, PlaintextClientIsUnavailable) {
  ::testing::internal::CaptureStderr();
  auto client = Client(/*ca=*/false, /*client_cert=*/false);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("WARNING: plaintext connection to etcd"));
  ASSERT_NE(client, nullptr);
  EXPECT_THAT(client->Put("/tls/plain", "x").status(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(client->Range("/tls/plain").status(), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(EtcdTlsTest, TlsClientWithoutCertificateIsRefused) {
  auto client = Client(/*ca=*/true, /*client_cert=*/false);
  ASSERT_NE(client, nullptr);
  EXPECT_FALSE(client->Put("/tls/nocert", "refused-value").ok());
  std::string output;
  ASSERT_EQ(etcd_.Etcdctl({"get", "/tls/nocert", "--print-value-only"}, &output), 0) << output;
  EXPECT_THAT(output, ::testing::Not(HasSubstr("refused-value")));
}

TEST_F(EtcdTlsTest, BadTlsOptionsAreRejectedAtCreate) {
  auto options = Options(/*ca=*/true, /*client_cert=*/true);
  options.tls_key_file.clear();
  EXPECT_THAT(etcd::EtcdClient::Create(options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options = Options(/*ca=*/false, /*client_cert=*/true);
  EXPECT_THAT(etcd::EtcdClient::Create(options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options = Options(/*ca=*/true, /*client_cert=*/false);
  options.tls_ca_file = pki_.Path("missing.pem");
  EXPECT_THAT(etcd::EtcdClient::Create(options).status(), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(EtcdTlsTest, LevelServerRegistersOverTls) {
  LevelProcess level(
      dir_, "county", "4201",
      {"--etcd-endpoints=" + etcd_.endpoint(), "--etcd-ttl=5",
       "--etcd-tls-ca=" + pki_.Path("ca.pem"), "--etcd-tls-cert=" + pki_.Path("client.pem"),
       "--etcd-tls-key=" + pki_.Path("client.key")});
  ASSERT_TRUE(level.Start()) << level.Log();
  auto client = Client(/*ca=*/true, /*client_cert=*/true);
  ASSERT_NE(client, nullptr);
  std::vector<etcd::KeyValue> kvs;
  const bool registered = WaitFor(
      [&] {
        auto range = client->RangePrefix("/stockpile/v1/instances/");
        if (range.ok()) kvs = range->kvs;
        return !kvs.empty();
      },
      std::chrono::seconds(20));
  ASSERT_TRUE(registered) << level.Log();
  EXPECT_THAT(kvs[0].key, HasSubstr("county"));
  EXPECT_THAT(kvs[0].value, HasSubstr(std::to_string(level.port())));
}

}  // namespace
}  // namespace stockpile::testing
