#include "services/catalogue/allocation/transfer_metrics.h"

#include <atomic>
#include <iostream>
#include <limits>
#include <map>

#include "absl/status/statusor.h"
#include "prometheus/metric_family.h"
#include "services/common/metrics/scrape_collector.h"

namespace stockpile::catalogue::allocation {
namespace {

using stockpile::v1::Transfer;
using stockpile::v1::TransferState;

constexpr double kBuckets[] = {60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200};

double Seconds(const google::protobuf::Timestamp& t) { return t.seconds() + t.nanos() * 1e-9; }

// Seconds from the approval step to receipt, or -1 when the transfer lacks either.
double ApprovalToReceipt(const Transfer& t) {
  if (t.state() != stockpile::v1::TRANSFER_STATE_RECEIVED) return -1;
  for (const auto& step : t.audit()) {
    if (step.what() == "approved") return Seconds(t.update_time()) - Seconds(step.time());
  }
  return -1;
}

prometheus::ClientMetric Value(std::vector<prometheus::ClientMetric::Label> labels, double v) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = v;
  return m;
}

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

// What one scrape reads from the store.
struct TransferScan {
  std::map<int, int64_t> count;
  std::map<int, int64_t> short_count;  // of those, with a short line
  std::map<int, double> oldest;
  std::vector<double> durations;
};

absl::StatusOr<TransferScan> ScanTransfers(const TransferStore& store, double now) {
  TransferScan scan;
  stockpile::v1::ListTransfersRequest req;
  req.set_page_size(1000);
  do {
    auto page = store.List(req);
    if (!page.ok()) return page.status();
    for (const auto& t : page->transfers()) {
      scan.count[t.state()]++;
      if (t.short_lines_size() > 0) scan.short_count[t.state()]++;
      const double age = now - Seconds(t.update_time());
      scan.oldest[t.state()] = std::max(scan.oldest[t.state()], age);
      if (double d = ApprovalToReceipt(t); d >= 0) scan.durations.push_back(d);
    }
    req.set_page_token(page->next_page_token());
  } while (!req.page_token().empty());
  return scan;
}

double CountOf(const std::map<int, int64_t>& counts, int state) {
  const auto it = counts.find(state);
  return it == counts.end() ? 0 : double(it->second);
}

void AddStateFamilies(const TransferScan& scan, std::vector<prometheus::MetricFamily>& out) {
  auto states =
      Family("stockpile_transfers", "Transfers in each state.", prometheus::MetricType::Gauge);
  auto short_states = Family("stockpile_transfers_short",
                             "Transfers in each state that fell short: part of what they were "
                             "to deliver will not arrive (their short lines say what).",
                             prometheus::MetricType::Gauge);
  auto ages = Family("stockpile_transfer_oldest_age_seconds",
                     "Seconds since the oldest transfer in each state last changed.",
                     prometheus::MetricType::Gauge);
  for (int s = 1; stockpile::v1::TransferState_IsValid(s); ++s) {
    std::string name = stockpile::v1::TransferState_Name(static_cast<TransferState>(s));
    name = name.substr(sizeof("TRANSFER_STATE_") - 1);
    const auto oldest = scan.oldest.find(s);
    states.metric.push_back(Value({{"state", name}}, CountOf(scan.count, s)));
    short_states.metric.push_back(Value({{"state", name}}, CountOf(scan.short_count, s)));
    ages.metric.push_back(
        Value({{"state", name}}, oldest == scan.oldest.end() ? 0 : oldest->second));
  }
  out.push_back(std::move(states));
  out.push_back(std::move(short_states));
  out.push_back(std::move(ages));
}

prometheus::MetricFamily ApprovalToReceiptFamily(const std::vector<double>& durations) {
  auto hist = Family("stockpile_transfer_approval_to_receipt_seconds",
                     "Time from approval to receipt of received transfers.",
                     prometheus::MetricType::Histogram);
  prometheus::ClientMetric h;
  double sum = 0;
  for (double d : durations) sum += d;
  for (double bound : kBuckets) {
    prometheus::ClientMetric::Bucket b;
    b.upper_bound = bound;
    for (double d : durations) b.cumulative_count += d <= bound;
    h.histogram.bucket.push_back(b);
  }
  prometheus::ClientMetric::Bucket inf;
  inf.upper_bound = std::numeric_limits<double>::infinity();
  inf.cumulative_count = durations.size();
  h.histogram.bucket.push_back(inf);
  h.histogram.sample_count = durations.size();
  h.histogram.sample_sum = sum;
  hist.metric.push_back(h);
  return hist;
}

}  // namespace

std::shared_ptr<prometheus::Collectable> MakeTransferCollectable(const TransferStore* store,
                                                                 const common::Clock* clock,
                                                                 std::function<bool()> is_leader) {
  auto read_errors = std::make_shared<std::atomic<uint64_t>>(0);
  return metrics::MakeFunctionCollectable([store, clock, is_leader, read_errors] {
    std::vector<prometheus::MetricFamily> out;
    auto scan = ScanTransfers(*store, clock->NowMicros() / 1e6);
    if (scan.ok()) {
      AddStateFamilies(*scan, out);
      out.push_back(ApprovalToReceiptFamily(scan->durations));
    } else {
      ++*read_errors;
      std::cerr << "stockpile-catalogue: transfer metrics left out of this scrape: "
                << scan.status() << std::endl;
    }
    auto errors = Family("stockpile_transfer_metrics_read_errors_total",
                         "Scrapes whose read of the transfer store failed (their per-state "
                         "transfer figures were left out).",
                         prometheus::MetricType::Counter);
    prometheus::ClientMetric e;
    e.counter.value = double(read_errors->load());
    errors.metric.push_back(e);
    out.push_back(std::move(errors));
    auto leader = Family("stockpile_is_leader", "1 on the replica that drives transfers.",
                         prometheus::MetricType::Gauge);
    leader.metric.push_back(Value({}, is_leader && is_leader() ? 1 : 0));
    out.push_back(std::move(leader));
    return out;
  });
}

}  // namespace stockpile::catalogue::allocation
