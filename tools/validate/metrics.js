// The metric names Stockpile's processes expose (agreed in issue 6), so dashboards and rules
// can be checked for typos. Histograms list their _bucket/_sum/_count series.
'use strict';

const histogram = (name) => [`${name}_bucket`, `${name}_sum`, `${name}_count`];

const KNOWN_METRICS = new Set([
  'up', 'time', // Prometheus' own series and functions that look like names
  'grpc_server_handled_total', 'grpc_server_started_total', ...histogram('grpc_server_handling_seconds'),
  'grpc_server_msg_received_total', 'grpc_server_msg_sent_total',
  'stockpile_build_info', 'stockpile_process_start_time_seconds',
  'stockpile_movements_total', 'stockpile_stock_units', 'stockpile_warehouses_below_floor',
  'stockpile_lots_expiring', 'stockpile_lots_expired', 'stockpile_holds_expired_total', 'stockpile_change_sequence',
  'stockpile_write_failures_total', 'stockpile_storage_failed',
  'stockpile_db_volume_free_bytes', 'stockpile_db_volume_min_free_bytes',
  'stockpile_rocksdb_live_data_bytes', 'stockpile_rocksdb_pending_compaction_bytes',
  'stockpile_warehouses', 'stockpile_metrics_refresh_failures_total', 'stockpile_second_writers',
  'stockpile_backups_total', 'stockpile_last_backup_time_seconds',
  'stockpile_replication_applied_sequence', 'stockpile_replication_lag_entries',
  'stockpile_replication_lag_seconds', 'stockpile_replication_connected',
  'stockpile_replication_entries_applied_total', 'stockpile_replication_resyncs_total',
  'stockpile_transfers', 'stockpile_transfers_short',
  'stockpile_transfer_oldest_age_seconds', ...histogram('stockpile_transfer_approval_to_receipt_seconds'),
  'stockpile_is_leader', 'stockpile_transfer_metrics_read_errors_total',
  // the kubelet's, for the volume alerts (scraped from the kubelet, not from Stockpile)
  'kubelet_volume_stats_available_bytes', 'kubelet_volume_stats_capacity_bytes',
  // recording rules of deploy/prometheus/rules.yml
  'stockpile:transfer_stuck_threshold_seconds', 'stockpile:grpc_server_error_ratio:rate5m',
]);

// Names that look like metrics in a PromQL string: identifiers starting with grpc_, kubelet_ or
// stockpile, or equal to up, once strings, label matchers and by/without/on/ignoring/group_*
// label lists are removed. Crude on purpose: our expressions use no other series.
function metricNamesIn(expr) {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = new Set();
  const pattern = /\b(grpc_[a-z_]+|kubelet_[a-z_]+|stockpile[a-z_:0-9]*|up)\b/g;
  for (const m of bare.matchAll(pattern)) names.add(m[1]);
  return names;
}

module.exports = { KNOWN_METRICS, metricNamesIn };
