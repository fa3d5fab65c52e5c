//! The TOML schema as written (every key optional, unknown keys refused),
//! durations, and bounded file reading with one-line error paths.

use super::metrics::MetricsOverrides;
use super::thresholds::ThresholdOverrides;
use super::tls::TlsTable;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub listen: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub dns_refresh: Option<String>,
    pub targets_file: Option<PathBuf>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub log_format: Option<String>,
    pub max_http_connections: Option<usize>,
    pub thresholds: Option<ThresholdOverrides>,
    /// `[metrics]` options over the global ones.
    pub metrics: Option<MetricsOverrides>,
    pub tls: Option<TlsTable>,
    #[serde(default)]
    pub instance: Vec<FileInstance>,
    #[serde(default)]
    pub heartbeat: Vec<FileHeartbeat>,
    #[serde(default)]
    pub cluster: Vec<FileCluster>,
    #[serde(default)]
    pub group: Vec<FileGroup>,
    #[serde(default)]
    pub sentinel: Vec<FileSentinel>,
    pub metrics_interval: Option<String>,
    /// `"on_demand"` (default) or `"always"`.
    pub metrics_fetch: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// The exporter-toolkit web configuration for redpulse's own HTTP.
    pub web_config_file: Option<PathBuf>,
    pub history_retention: Option<String>,
    #[serde(default)]
    pub notify: Vec<super::notify::FileNotify>,
    /// How often the config and targets files are checked for changes.
    pub watch_interval: Option<String>,
    /// `I/N` or `ordinal/N`.
    pub shard: Option<String>,
    /// Every shard's base URL, index = shard.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Budget of one forwarded request.
    pub peer_timeout: Option<String>,
    pub consensus: Option<FileConsensus>,
    /// How this process reaches its shard and region peers.
    pub peer_client: Option<FilePeerClient>,
}

/// `[peer_client]` as written.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilePeerClient {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub server_name: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
}

/// `[consensus]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConsensus {
    pub peers: Vec<String>,
    pub region: String,
    pub quorum: u32,
    pub timeout: Option<String>,
}

/// A `[[sentinel]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSentinel {
    pub name: String,
    pub sentinels: Vec<String>,
    #[serde(default)]
    pub masters: Vec<String>,
    pub refresh: Option<String>,
    /// For the data nodes.
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    /// For the sentinels themselves.
    pub sentinel_password_file: Option<PathBuf>,
    pub sentinel_password_env: Option<String>,
    pub thresholds: Option<ThresholdOverrides>,
    /// `[metrics]` options over the global ones.
    pub metrics: Option<MetricsOverrides>,
    pub tls: Option<TlsTable>,
    #[serde(default)]
    pub labels: super::labels::Labels,
}

/// A `[[group]]` as written: configured instances judged as one
/// replication group.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileGroup {
    pub name: String,
    pub members: Vec<String>,
    /// `[group.metrics]`: over the global options, under each member's own.
    pub metrics: Option<MetricsOverrides>,
    #[serde(default)]
    pub labels: super::labels::Labels,
}

/// A `[[cluster]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileCluster {
    pub name: String,
    pub seeds: Vec<String>,
    pub refresh: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub thresholds: Option<ThresholdOverrides>,
    /// `[metrics]` options over the global ones.
    pub metrics: Option<MetricsOverrides>,
    pub tls: Option<TlsTable>,
    #[serde(default)]
    pub labels: super::labels::Labels,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileInstance {
    pub name: Option<String>,
    pub url: String,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub thresholds: Option<ThresholdOverrides>,
    /// `[metrics]` options over the global ones.
    pub metrics: Option<MetricsOverrides>,
    pub tls: Option<TlsTable>,
    #[serde(default)]
    pub labels: super::labels::Labels,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileHeartbeat {
    pub name: String,
    pub interval: String,
    pub grace: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
}
