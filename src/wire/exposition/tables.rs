//! The mapping tables: fixed families (name, type, help) and INFO keys
//! published under a name of their own, as redis_exporter 1.45 names them.

use super::Kind;

use Kind::{Counter, Gauge, Summary};

/// Families with a fixed meaning: (series name, type, help).
pub(super) const FIXED: &[(&str, Kind, &str)] = &[
    (
        "redis_instance_info",
        Gauge,
        "Information about the Redis instance.",
    ),
    (
        "redis_slave_info",
        Gauge,
        "Information about the Redis slave.",
    ),
    (
        "redis_start_time_seconds",
        Gauge,
        "Start time of the Redis instance since unix epoch in seconds.",
    ),
    ("redis_db_keys", Gauge, "Total number of keys by DB."),
    (
        "redis_db_keys_expiring",
        Gauge,
        "Total number of expiring keys by DB.",
    ),
    (
        "redis_db_keys_cached",
        Gauge,
        "Total number of cached keys by DB.",
    ),
    ("redis_db_avg_ttl_seconds", Gauge, "Avg TTL in seconds."),
    (
        "redis_commands_total",
        Counter,
        "Total number of calls per command.",
    ),
    (
        "redis_commands_duration_seconds_total",
        Counter,
        "Total amount of time in seconds spent per command.",
    ),
    (
        "redis_commands_rejected_calls_total",
        Counter,
        "Total number of errors within command execution per command.",
    ),
    (
        "redis_commands_failed_calls_total",
        Counter,
        "Total number of errors prior command execution per command.",
    ),
    (
        "redis_latency_percentiles_usec",
        Summary,
        "A summary of latency percentile distribution per command.",
    ),
    (
        "redis_errors_total",
        Counter,
        "Total number of errors per error type.",
    ),
    (
        "redis_master_link_up",
        Gauge,
        "Master link status on Redis slave.",
    ),
    (
        "redis_master_last_io_seconds_ago",
        Gauge,
        "Master last io seconds ago.",
    ),
    (
        "redis_master_sync_in_progress",
        Gauge,
        "Master sync in progress.",
    ),
    (
        "redis_slave_repl_offset",
        Gauge,
        "Slave replication offset.",
    ),
    (
        "redis_connected_slave_offset_bytes",
        Gauge,
        "Offset of connected slave.",
    ),
    (
        "redis_connected_slave_lag_seconds",
        Gauge,
        "Lag of connected slave.",
    ),
    (
        "redis_sentinel_master_status",
        Gauge,
        "Master status on Sentinel.",
    ),
    (
        "redis_sentinel_master_slaves",
        Gauge,
        "The number of slaves of the master.",
    ),
    (
        "redis_sentinel_master_sentinels",
        Gauge,
        "The number of sentinels monitoring this master.",
    ),
    // Beyond INFO: the metrics poll's other commands (exposition::beyond),
    // with redis_exporter's names and help.
    ("redis_slowlog_length", Gauge, "Total slowlog"),
    ("redis_slowlog_last_id", Gauge, "Last id of slowlog"),
    (
        "redis_last_slow_execution_duration_seconds",
        Gauge,
        "The amount of time needed for last slow execution, in seconds",
    ),
    (
        "redis_latency_spike_last",
        Gauge,
        "When the latency spike last occurred",
    ),
    (
        "redis_latency_spike_duration_seconds",
        Gauge,
        "Length of the last latency spike in seconds",
    ),
    ("redis_config_maxclients", Gauge, "config_maxclients metric"),
    ("redis_config_maxmemory", Gauge, "config_maxmemory metric"),
    ("redis_config_io_threads", Gauge, "config_io_threads metric"),
    ("redis_config_key_value", Gauge, "Config key and value"),
    (
        "redis_config_value",
        Gauge,
        "Config key and value as metric",
    ),
    (
        "redis_connected_clients_details",
        Gauge,
        "Details about connected clients",
    ),
    ("redis_key_size", Gauge, "The length or size of \"key\""),
    ("redis_key_value", Gauge, "The value of \"key\""),
    (
        "redis_key_value_as_string",
        Gauge,
        "The value of \"key\" as a string",
    ),
    ("redis_keys_count", Gauge, "Count of keys"),
    (
        "redis_stream_length",
        Gauge,
        "The number of elements of the stream",
    ),
    (
        "redis_stream_radix_tree_keys",
        Gauge,
        "Radix tree keys count\"",
    ),
    (
        "redis_stream_radix_tree_nodes",
        Gauge,
        "Radix tree nodes count",
    ),
    (
        "redis_stream_last_generated_id",
        Gauge,
        "The epoch timestamp (ms) of the latest message on the stream",
    ),
    ("redis_stream_groups", Gauge, "Groups count of stream"),
    (
        "redis_stream_group_consumers",
        Gauge,
        "Consumers count of stream group",
    ),
    (
        "redis_stream_group_messages_pending",
        Gauge,
        "Pending number of messages in that stream group",
    ),
    (
        "redis_stream_group_last_delivered_id",
        Gauge,
        "The epoch timestamp (ms) of the last delivered message",
    ),
    (
        "redis_stream_group_consumer_messages_pending",
        Gauge,
        "Pending number of messages for this specific consumer",
    ),
    (
        "redis_stream_group_consumer_idle_seconds",
        Gauge,
        "Consumer idle time in seconds",
    ),
];

/// The id the registry gives fixed family `name`, for the builder to use
/// without a lookup. The registry numbers [`FIXED`] first, in its order, a
/// summary taking three ids (itself, `_sum`, `_count`). In a const context
/// a name not in the table fails the build.
pub(super) const fn fixed_id(name: &str) -> u16 {
    let mut id = 0;
    let mut i = 0;
    while i < FIXED.len() {
        if same(FIXED[i].0, name) {
            return id;
        }
        id += if matches!(FIXED[i].1, Summary) { 3 } else { 1 };
        i += 1;
    }
    panic!("not a fixed family")
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// INFO key → series name, gauges then counters, as redis_exporter maps
/// them.
const GAUGES: &[(&str, &str)] = &[
    ("uptime_in_seconds", "uptime_in_seconds"),
    ("process_id", "process_id"),
    ("io_threads_active", "io_threads_active"),
    ("connected_clients", "connected_clients"),
    ("blocked_clients", "blocked_clients"),
    ("tracking_clients", "tracking_clients"),
    ("clients_in_timeout_table", "clients_in_timeout_table"),
    ("client_longest_output_list", "client_longest_output_list"),
    ("client_biggest_input_buf", "client_biggest_input_buf"),
    (
        "client_recent_max_output_buffer",
        "client_recent_max_output_buffer_bytes",
    ),
    (
        "client_recent_max_input_buffer",
        "client_recent_max_input_buffer_bytes",
    ),
    ("allocator_active", "allocator_active_bytes"),
    ("allocator_allocated", "allocator_allocated_bytes"),
    ("allocator_resident", "allocator_resident_bytes"),
    ("allocator_frag_ratio", "allocator_frag_ratio"),
    ("allocator_frag_bytes", "allocator_frag_bytes"),
    ("allocator_rss_ratio", "allocator_rss_ratio"),
    ("allocator_rss_bytes", "allocator_rss_bytes"),
    ("used_memory", "memory_used_bytes"),
    ("used_memory_rss", "memory_used_rss_bytes"),
    ("used_memory_peak", "memory_used_peak_bytes"),
    ("used_memory_lua", "memory_used_lua_bytes"),
    ("used_memory_overhead", "memory_used_overhead_bytes"),
    ("used_memory_startup", "memory_used_startup_bytes"),
    ("used_memory_dataset", "memory_used_dataset_bytes"),
    ("used_memory_scripts", "memory_used_scripts_bytes"),
    ("number_of_cached_scripts", "number_of_cached_scripts"),
    ("maxmemory", "memory_max_bytes"),
    ("maxmemory_reservation", "memory_max_reservation_bytes"),
    (
        "maxmemory_desired_reservation",
        "memory_max_reservation_desired_bytes",
    ),
    (
        "maxfragmentationmemory_reservation",
        "memory_max_fragmentation_reservation_bytes",
    ),
    (
        "maxfragmentationmemory_desired_reservation",
        "memory_max_fragmentation_reservation_desired_bytes",
    ),
    ("mem_fragmentation_ratio", "mem_fragmentation_ratio"),
    ("mem_fragmentation_bytes", "mem_fragmentation_bytes"),
    ("mem_clients_slaves", "mem_clients_slaves"),
    ("mem_clients_normal", "mem_clients_normal"),
    ("expired_stale_perc", "expired_stale_percentage"),
    (
        "mem_not_counted_for_evict",
        "mem_not_counted_for_eviction_bytes",
    ),
    ("lazyfree_pending_objects", "lazyfree_pending_objects"),
    ("active_defrag_running", "active_defrag_running"),
    ("migrate_cached_sockets", "migrate_cached_sockets_total"),
    ("active_defrag_hits", "defrag_hits"),
    ("active_defrag_misses", "defrag_misses"),
    ("active_defrag_key_hits", "defrag_key_hits"),
    ("active_defrag_key_misses", "defrag_key_misses"),
    (
        "expired_time_cap_reached_count",
        "expired_time_cap_reached_total",
    ),
    ("loading", "loading_dump_file"),
    ("rdb_changes_since_last_save", "rdb_changes_since_last_save"),
    ("rdb_bgsave_in_progress", "rdb_bgsave_in_progress"),
    ("rdb_last_save_time", "rdb_last_save_timestamp_seconds"),
    ("rdb_last_bgsave_status", "rdb_last_bgsave_status"),
    ("rdb_last_bgsave_time_sec", "rdb_last_bgsave_duration_sec"),
    (
        "rdb_current_bgsave_time_sec",
        "rdb_current_bgsave_duration_sec",
    ),
    ("rdb_last_cow_size", "rdb_last_cow_size_bytes"),
    ("aof_enabled", "aof_enabled"),
    ("aof_rewrite_in_progress", "aof_rewrite_in_progress"),
    ("aof_rewrite_scheduled", "aof_rewrite_scheduled"),
    ("aof_last_rewrite_time_sec", "aof_last_rewrite_duration_sec"),
    (
        "aof_current_rewrite_time_sec",
        "aof_current_rewrite_duration_sec",
    ),
    ("aof_last_cow_size", "aof_last_cow_size_bytes"),
    ("aof_current_size", "aof_current_size_bytes"),
    ("aof_base_size", "aof_base_size_bytes"),
    ("aof_pending_rewrite", "aof_pending_rewrite"),
    ("aof_buffer_length", "aof_buffer_length"),
    ("aof_rewrite_buffer_length", "aof_rewrite_buffer_length"),
    ("aof_pending_bio_fsync", "aof_pending_bio_fsync"),
    ("aof_delayed_fsync", "aof_delayed_fsync"),
    ("aof_last_bgrewrite_status", "aof_last_bgrewrite_status"),
    ("aof_last_write_status", "aof_last_write_status"),
    ("module_fork_in_progress", "module_fork_in_progress"),
    ("module_fork_last_cow_size", "module_fork_last_cow_size"),
    ("pubsub_channels", "pubsub_channels"),
    ("pubsub_patterns", "pubsub_patterns"),
    ("latest_fork_usec", "latest_fork_seconds"),
    ("tracking_total_keys", "tracking_total_keys"),
    ("tracking_total_items", "tracking_total_items"),
    ("tracking_total_prefixes", "tracking_total_prefixes"),
    ("connected_slaves", "connected_slaves"),
    ("repl_backlog_size", "replication_backlog_bytes"),
    ("repl_backlog_active", "repl_backlog_is_active"),
    (
        "repl_backlog_first_byte_offset",
        "repl_backlog_first_byte_offset",
    ),
    ("repl_backlog_histlen", "repl_backlog_history_bytes"),
    ("master_repl_offset", "master_repl_offset"),
    ("second_repl_offset", "second_repl_offset"),
    ("slave_expires_tracked_keys", "slave_expires_tracked_keys"),
    ("slave_priority", "slave_priority"),
    ("sync_full", "replica_resyncs_full"),
    ("sync_partial_ok", "replica_partial_resync_accepted"),
    ("sync_partial_err", "replica_partial_resync_denied"),
    ("cluster_stats_messages_sent", "cluster_messages_sent_total"),
    (
        "cluster_stats_messages_received",
        "cluster_messages_received_total",
    ),
    ("server_threads", "server_threads_total"),
    ("long_lock_waits", "long_lock_waits_total"),
    ("current_client_thread", "current_client_thread"),
    // redis_exporter publishes this with --include-system-metrics; the
    // community's RedisOutOfSystemMemory alert reads it.
    ("total_system_memory", "total_system_memory_bytes"),
];

const COUNTERS: &[(&str, &str)] = &[
    ("total_connections_received", "connections_received_total"),
    ("total_commands_processed", "commands_processed_total"),
    ("rejected_connections", "rejected_connections_total"),
    ("total_net_input_bytes", "net_input_bytes_total"),
    ("total_net_output_bytes", "net_output_bytes_total"),
    ("expired_keys", "expired_keys_total"),
    ("cached_keys", "cached_keys_total"),
    ("evicted_keys", "evicted_keys_total"),
    ("keyspace_hits", "keyspace_hits_total"),
    ("keyspace_misses", "keyspace_misses_total"),
    ("used_cpu_sys", "cpu_sys_seconds_total"),
    ("used_cpu_user", "cpu_user_seconds_total"),
    ("used_cpu_sys_children", "cpu_sys_children_seconds_total"),
    ("used_cpu_user_children", "cpu_user_children_seconds_total"),
    (
        "used_cpu_sys_main_thread",
        "cpu_sys_main_thread_seconds_total",
    ),
    (
        "used_cpu_user_main_thread",
        "cpu_user_main_thread_seconds_total",
    ),
    ("unexpected_error_replies", "unexpected_error_replies"),
    ("total_error_replies", "total_error_replies"),
    ("total_reads_processed", "total_reads_processed"),
    ("total_writes_processed", "total_writes_processed"),
    ("io_threaded_reads_processed", "io_threaded_reads_processed"),
    (
        "io_threaded_writes_processed",
        "io_threaded_writes_processed",
    ),
    ("dump_payload_sanitizations", "dump_payload_sanitizations"),
    ("storage_provider_read_hits", "storage_provider_read_hits"),
    (
        "storage_provider_read_misses",
        "storage_provider_read_misses",
    ),
];

/// Both tables of plain fields, with the type of their series.
pub(super) const PLAIN: [(&[(&str, &str)], Kind); 2] = [(GAUGES, Gauge), (COUNTERS, Counter)];

/// A plain field's series name: `redis_` and its table name.
pub(super) fn plain_name(name: &str) -> String {
    format!("redis_{name}")
}
