// The stored copy of a stock command's first result leaves out what all its records share;
// restoring it must give back exactly the reply, and anything that does not share the stamp
// is stored whole.
#include "services/level/stored_response.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <functional>
#include <vector>

#include "services/level/proto_util.h"
#include "stockpile/v1/level_service.pb.h"

namespace stockpile::level {
namespace {

using stockpile::v1::ApplyBatchResponse;
using stockpile::v1::Movement;
using stockpile::v1::MovementResult;

const CommandStamp kStamp{"req-7", "clerk-li", 1'780'000'000'123'456, 42};

Movement Stamped(uint64_t id) {
  Movement m;
  m.set_name(absl::StrCat("warehouses/420102-W001/movements/", id));
  m.set_id(id);
  m.set_warehouse("warehouses/420102-W001");
  m.set_item("SH-0001");
  m.set_quantity(5);
  m.set_request_id(kStamp.request_id);
  m.set_actor(kStamp.actor);
  *m.mutable_create_time() = ToTimestamp(kStamp.commit_micros);
  m.set_sequence(kStamp.sequence);
  return m;
}

ApplyBatchResponse StampedBatch() {
  ApplyBatchResponse batch;
  for (uint64_t id : {11, 12}) {
    auto* r = batch.add_results();
    *r->add_movements() = Stamped(id);
    r->set_sequence(kStamp.sequence);
  }
  auto* b = batch.add_balances();
  b->set_warehouse("warehouses/420102-W001");
  b->set_item("SH-0001");
  b->set_on_hand(10);
  *b->mutable_update_time() = ToTimestamp(kStamp.commit_micros);
  b->set_sequence(kStamp.sequence);
  batch.set_sequence(kStamp.sequence);
  return batch;
}

TEST(StoredResponseTest, RestoringAStrippedBatchGivesBackTheReplyAndStoresLess) {
  const ApplyBatchResponse reply = StampedBatch();
  ApplyBatchResponse stored = reply;
  ASSERT_TRUE(StripStamp(kStamp, &stored));
  EXPECT_LT(stored.ByteSizeLong() * 2, reply.ByteSizeLong());
  EXPECT_TRUE(stored.results(0).movements(0).name().empty());
  EXPECT_EQ(stored.results(0).movements(0).item(), "SH-0001");  // its own fields stay

  internal::RequestRecord record;
  record.set_method("ApplyBatch");
  record.set_stamped(true);
  record.set_actor(kStamp.actor);
  record.set_commit_micros(kStamp.commit_micros);
  record.set_sequence(kStamp.sequence);
  record.set_response(stored.SerializeAsString());
  auto restored = StoredResponse(record, kStamp.request_id, nullptr);
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ((*restored)->SerializeAsString(), reply.SerializeAsString());
}

// A stock command's record leaves its balances out: they are its change entry's, which
// StoredResponse puts back in the change entry's order; a change entry of another sequence is
// refused rather than mixed in.
// Warehouse, quota and reserve records hold other replies, and a kept refusal none: asking
// for their stock reply is an error, not an empty or misread message.
TEST(StoredResponseTest, OnlyStockCommandsHoldAStockReply) {
  internal::RequestRecord record;
  record.set_method("ApplyBatch");
  EXPECT_TRUE(HoldsStockReply(record));
  record.set_refusal_code(static_cast<int>(absl::StatusCode::kFailedPrecondition));
  EXPECT_FALSE(HoldsStockReply(record));
  EXPECT_EQ(StoredResponse(record, "chunk-1", nullptr).status().code(),
            absl::StatusCode::kInternal);
  for (const char* method : {"CreateWarehouse", "UpdateWarehouse", "SetQuota", "SetReserve"}) {
    internal::RequestRecord other;
    other.set_method(method);
    EXPECT_FALSE(HoldsStockReply(other)) << method;
  }
  internal::RequestRecord receive;
  receive.set_method("Receive");
  EXPECT_TRUE(HoldsStockReply(receive));
}

TEST(StoredResponseTest, BalancesLeftOutAreTakenFromTheCommandsChangeEntry) {
  const ApplyBatchResponse reply = StampedBatch();
  ApplyBatchResponse stored = reply;
  ASSERT_TRUE(StripStamp(kStamp, &stored));
  stored.clear_balances();
  internal::RequestRecord record;
  record.set_method("ApplyBatch");
  record.set_stamped(true);
  record.set_balances_in_change(true);
  record.set_actor(kStamp.actor);
  record.set_commit_micros(kStamp.commit_micros);
  record.set_sequence(kStamp.sequence);
  record.set_response(stored.SerializeAsString());

  stockpile::v1::ChangeEntry change;
  change.set_sequence(kStamp.sequence);
  *change.mutable_balances() = reply.balances();
  auto restored = StoredResponse(record, kStamp.request_id, &change);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->SerializeAsString(), reply.SerializeAsString());

  auto movements_only = StoredResponse(record, kStamp.request_id, nullptr);
  ASSERT_TRUE(movements_only.ok());
  EXPECT_EQ(dynamic_cast<ApplyBatchResponse&>(**movements_only).balances_size(), 0);
  EXPECT_EQ(dynamic_cast<ApplyBatchResponse&>(**movements_only).results(1).movements(0).name(),
            reply.results(1).movements(0).name());

  stockpile::v1::ChangeEntry later;
  later.set_sequence(kStamp.sequence + 1);
  *later.mutable_balances() = reply.balances();
  EXPECT_EQ(StoredResponse(record, kStamp.request_id, &later).status().code(),
            absl::StatusCode::kInternal);

  MovementResult single;  // a single call's reply takes them the same way
  stockpile::v1::ChangeEntry of_single;
  *of_single.mutable_balances() = reply.balances();
  ASSERT_TRUE(TakeBalancesFromChange(&of_single, &single));
  ASSERT_EQ(single.balances_size(), 1);
  EXPECT_EQ(single.balances(0).SerializeAsString(), reply.balances(0).SerializeAsString());
  stockpile::v1::ChangeEntry of_other;
  *of_other.mutable_balances() = reply.balances();
  stockpile::v1::Warehouse not_stock;
  EXPECT_FALSE(TakeBalancesFromChange(&of_other, &not_stock));
  EXPECT_EQ(of_other.balances_size(), 1);  // nothing taken
}

TEST(StoredResponseTest, AResponseWithARecordOfAnotherStampIsStoredWhole) {
  const std::vector<std::function<void(Movement*)>> other_stamps = {
      [](Movement* m) { m->set_actor("someone-else"); },
      [](Movement* m) { m->set_request_id("req-6"); },
      [](Movement* m) { m->mutable_create_time()->set_nanos(1); },
      [](Movement* m) { m->set_name("warehouses/420102-W001/movements/011"); },
      [](Movement* m) { m->set_sequence(41); },
  };
  for (size_t i = 0; i < other_stamps.size(); ++i) {
    MovementResult single;
    *single.add_movements() = Stamped(11);
    single.set_sequence(kStamp.sequence);
    other_stamps[i](single.mutable_movements(0));
    const MovementResult before = single;
    EXPECT_FALSE(StripStamp(kStamp, &single)) << i;
    EXPECT_EQ(single.SerializeAsString(), before.SerializeAsString()) << i;
  }
  stockpile::v1::Warehouse other;  // not a stock response
  other.set_name("warehouses/420102-W001");
  EXPECT_FALSE(StripStamp(kStamp, &other));
}

// Records stored before stamping existed are given back as they were stored.
TEST(StoredResponseTest, ARecordStoredWholeIsReturnedAsStored) {
  MovementResult single;
  *single.add_movements() = Stamped(11);
  single.set_sequence(kStamp.sequence);
  internal::RequestRecord record;
  record.set_method("Receive");
  record.set_commit_micros(kStamp.commit_micros + 1);  // would change the reply if applied
  record.set_sequence(kStamp.sequence);
  record.set_response(single.SerializeAsString());
  auto restored = StoredResponse(record, "another-id", nullptr);
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ((*restored)->SerializeAsString(), single.SerializeAsString());
  record.set_response("\xff\xff");
  EXPECT_EQ(StoredResponse(record, "another-id", nullptr).status().code(),
            absl::StatusCode::kDataLoss);
}

// The fingerprint is the SHA-256 of the request as if its request_id were cleared, as records
// stored by earlier builds remember it, and made without copying the request.
TEST(StoredResponseTest, FingerprintIgnoresTheRequestIdAndNothingElse) {
  stockpile::v1::ApplyBatchRequest req;
  req.set_request_id("batch-1");
  req.set_actor("clerk-li");
  for (int i = 0; i < 3; ++i) {
    auto* op = req.add_operations()->mutable_receive();
    op->set_warehouse("warehouses/420102-W001");
    op->set_item("SH-0001");
    op->set_quantity(i + 1);
  }
  stockpile::v1::ApplyBatchRequest cleared = req;
  cleared.clear_request_id();
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    cleared.SerializeToCodedStream(&coded);
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  EXPECT_EQ(RequestFingerprint(req), std::string(reinterpret_cast<char*>(digest), sizeof(digest)));
  EXPECT_EQ(RequestFingerprint(req), RequestFingerprint(cleared));

  stockpile::v1::ApplyBatchRequest other = req;
  other.set_request_id("batch-2");
  EXPECT_EQ(RequestFingerprint(other), RequestFingerprint(req));
  other.mutable_operations(2)->mutable_receive()->set_quantity(4);
  EXPECT_NE(RequestFingerprint(other), RequestFingerprint(req));
  other = req;
  other.set_actor("clerk-wang");
  EXPECT_NE(RequestFingerprint(other), RequestFingerprint(req));
}

}  // namespace
}  // namespace stockpile::level
