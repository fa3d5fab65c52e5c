//! Configuration, first in the flow: the TOML file ([`file`]), command-line
//! [`Overrides`], validated into a [`Config`] before anything starts.
//! [`load`] reads the file and the process-wide settings here and leaves
//! each topic to its own file: [`targets`] (instances, targets files,
//! `--target`), [`topology`] (clusters, Sentinels, groups), [`heartbeats`],
//! [`peering`] (shards and consensus), over [`url`], [`secret`],
//! [`thresholds`], [`metrics`], [`tls`], [`labels`] and the text helpers in
//! [`text`].
//!
//! Every error is one line naming what and where (file:line for TOML), and
//! makes the process exit 2. Unknown keys are errors, so typos never pass
//! silently. Passwords are held in [`Secret`], whose `Debug` hides them.

pub mod file;
pub mod file_sd;
pub mod heartbeats;
pub mod labels;
pub mod metrics;
pub mod notify;
pub mod peering;
pub mod secret;
pub mod shard;
pub mod targets;
pub mod text;
pub mod thresholds;
pub mod tls;
pub mod topology;
pub mod url;
pub mod watch;
pub mod web;

pub use heartbeats::Heartbeat;
pub use labels::Labels;
pub use metrics::MetricsOptions;
pub use notify::{NotifyFormat, NotifySpec, NotifyUrl, DEFAULT_RETRY_FOR};
pub use secret::Secret;
pub use targets::Target;
pub use text::parse_duration;
pub use thresholds::Thresholds;
pub use tls::{TlsSettings, TlsTable, TlsTarget};
pub use topology::{ClusterSpec, GroupSpec, SentinelSpec, DEFAULT_REFRESH};
pub use url::{
    parse_url, split_spec, validate_name, Endpoint, TargetUrl, DEFAULT_PORT, MAX_NAME_LEN,
};

use file::FileConfig;
use secret::PasswordSource;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;
use targets::Defaults;
use text::{line_of, read_bounded, shown, MAX_CONFIG_FILE};
use tls::TlsCache;

/// Open HTTP connections at most, unless configured: past it new ones are
/// closed at once, so a flood of clients cannot exhaust descriptors the
/// poller needs.
pub const DEFAULT_MAX_HTTP_CONNECTIONS: usize = 4096;
/// Watched when no target is configured at all.
pub const DEFAULT_TARGET: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9379";
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest interval or timeout: the contract's bound. A poll a day is
/// already an odd health check; past it is a typo.
pub const MAX_POLL_DURATION: Duration = Duration::from_secs(86_400);
/// How often a connected host-name target's name is looked up again by
/// default: managed Redis fails over by changing DNS, and 30 s is the
/// contract's bound on noticing it.
pub const DEFAULT_DNS_REFRESH: Duration = Duration::from_secs(30);

/// Added to the stale limit: an instance that times out on every poll
/// publishes a verdict every interval + timeout at the latest, and timer
/// and scheduling delay must not make that look like a poller falling behind.
pub const STALE_SLACK: Duration = Duration::from_millis(100);

/// A configuration error: one line, exit code 2.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// How often a poll fetches the metrics-only INFO sections unless
/// configured.
pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(15);
/// How long the history keeps transitions and minutes unless configured.
pub const DEFAULT_HISTORY_RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// Where the history lives unless configured.
pub const DEFAULT_DATA_DIR: &str = "redpulse-data";

/// How often watched files are checked unless configured, and at most.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(1);
pub const MAX_WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("log format {s:?}: expected text or json")),
        }
    }
}

/// When polls fetch the sections only `/metrics` needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetricsFetch {
    /// At an instance's first poll, then every `metrics_interval` only
    /// while `/metrics` has been scraped within 3 x `metrics_interval`.
    #[default]
    OnDemand,
    /// Every `metrics_interval`, scraped or not.
    Always,
}

impl std::str::FromStr for MetricsFetch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "on_demand" => Ok(MetricsFetch::OnDemand),
            "always" => Ok(MetricsFetch::Always),
            _ => Err(format!(
                "metrics_fetch {s:?}: expected \"on_demand\" or \"always\""
            )),
        }
    }
}

/// Everything redpulse needs to run, validated.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub interval: Duration,
    /// A whole poll: connect + write + read.
    pub timeout: Duration,
    pub targets: Vec<Target>,
    pub heartbeats: Vec<Heartbeat>,
    /// The token of every heartbeat that has one, other shards' included.
    pub heartbeat_tokens: std::sync::Arc<std::collections::BTreeMap<String, Secret>>,
    /// Redis Clusters whose nodes are discovered and polled.
    pub clusters: Vec<ClusterSpec>,
    /// Static replication groups of configured instances.
    pub groups: Vec<GroupSpec>,
    /// Sentinel deployments whose masters and replicas are discovered.
    pub sentinels: Vec<SentinelSpec>,
    pub log_format: LogFormat,
    /// Open HTTP connections at most.
    pub max_http_connections: usize,
    /// How often a connected host-name target's name is looked up again,
    /// to follow a DNS failover.
    pub dns_refresh: Duration,
    /// How often a poll also fetches the sections only `/metrics` needs.
    pub metrics_interval: Duration,
    /// Whether that happens only while `/metrics` is scraped.
    pub metrics_fetch: MetricsFetch,
    /// How often the config and targets files are checked for changes.
    pub watch_interval: Duration,
    /// The files this config was read from (config, targets file, web
    /// config), watched for changes.
    pub files: Vec<PathBuf>,
    /// The web configuration for redpulse's own HTTP (TLS, basic auth),
    /// read by `web::load` at start and on every reload.
    pub web_config_file: Option<PathBuf>,
    /// Where the history database lives (one redpulse per directory).
    pub data_dir: PathBuf,
    /// How long transitions and minutes are kept.
    pub history_retention: Duration,
    /// `[[notify]]` receivers.
    pub notify: Vec<NotifySpec>,
    /// `shard`/`peers`: what this process owns and where the rest answer.
    /// The targets, clusters, Sentinels, groups and heartbeats above are
    /// already this shard's share.
    pub shard: Option<std::sync::Arc<shard::ShardMap>>,
    /// `[consensus]`.
    pub consensus: Option<std::sync::Arc<shard::ConsensusSpec>>,
}

impl Config {
    /// How old a verdict may be before it is reported stale:
    /// max(3 × interval, interval + timeout), plus [`STALE_SLACK`].
    pub fn stale_after(&self) -> Duration {
        (self.interval * 3).max(self.interval + self.timeout) + STALE_SLACK
    }
}

/// Settings given on the command line; each overrides the config file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    /// `[NAME=]URL`, added to the file's instances.
    pub targets: Vec<String>,
    pub targets_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub log_format: Option<LogFormat>,
    pub max_http_connections: Option<usize>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--shard I/N` (or `REDPULSE_SHARD`).
    pub shard: Option<String>,
    /// `--web.config.file`.
    pub web_config_file: Option<PathBuf>,
    /// The `--tls-*` flags: over the file's top-level `[tls]`, key by key.
    pub tls: TlsTable,
    /// Defaults from the environment, below the config file:
    /// `REDPULSE_LISTEN` and `REDPULSE_DATA_DIR` (a container image sets
    /// them, and a ConfigMap's `listen` or `data_dir` still wins).
    pub env: EnvDefaults,
}

/// Settings from the environment: they replace only the built-in
/// defaults (flag, then config file, then environment, then default).
#[derive(Clone, Debug, Default)]
pub struct EnvDefaults {
    /// `REDPULSE_LISTEN`.
    pub listen: Option<String>,
    /// `REDPULSE_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
}

impl EnvDefaults {
    /// Read from this process's environment; empty values count as unset.
    pub fn from_env() -> EnvDefaults {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        EnvDefaults {
            listen: var("REDPULSE_LISTEN"),
            data_dir: var("REDPULSE_DATA_DIR").map(PathBuf::from),
        }
    }
}

/// Read the config file (if any), apply the command line, and validate.
pub fn load(o: &Overrides) -> Result<Config, ConfigError> {
    let (file, base_dir, file_label) = match &o.config {
        Some(path) => {
            let label = shown(path);
            let text = read_bounded(path, MAX_CONFIG_FILE)
                .map_err(|e| ConfigError(format!("config {label}: {e}")))?;
            let file: FileConfig = toml::from_str(&text).map_err(|e| {
                let line = e.span().map(|s| line_of(&text, s.start));
                let msg = e.message().replace('\n', " ");
                match line {
                    Some(l) => ConfigError(format!("config {label}:{l}: {msg}")),
                    None => ConfigError(format!("config {label}: {msg}")),
                }
            })?;
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            (file, dir, label)
        }
        None => (
            FileConfig::default(),
            PathBuf::new(),
            "command line".to_string(),
        ),
    };
    let at = |what: &str| format!("config {file_label}: {what}");

    let listen_s = o
        .listen
        .clone()
        .or(file.listen.clone())
        .or(o.env.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.into());
    let listen = listen_s
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            ConfigError(at(&format!(
                "listen {listen_s:?} is not an address like 127.0.0.1:9379"
            )))
        })?;
    let duration = |cli: &Option<String>,
                    f: &Option<String>,
                    key: &str,
                    d: Duration|
     -> Result<Duration, ConfigError> {
        match cli.as_ref().or(f.as_ref()) {
            None => Ok(d),
            Some(s) => match parse_duration(s) {
                Ok(v) if v.is_zero() => err(at(&format!("{key} must be above 0"))),
                Ok(v) if v > MAX_POLL_DURATION => {
                    err(at(&format!("{key} {s:?} is too long: at most 1 day (24h)")))
                }
                Ok(v) => Ok(v),
                Err(e) => err(at(&format!("{key}: {e}"))),
            },
        }
    };
    let interval = duration(&o.interval, &file.interval, "interval", DEFAULT_INTERVAL)?;
    let timeout = duration(&o.timeout, &file.timeout, "timeout", DEFAULT_TIMEOUT)?;
    let dns_refresh = duration(&None, &file.dns_refresh, "dns_refresh", DEFAULT_DNS_REFRESH)?;
    let metrics_interval = duration(
        &None,
        &file.metrics_interval,
        "metrics_interval",
        DEFAULT_METRICS_INTERVAL,
    )?;
    let metrics_fetch = match &file.metrics_fetch {
        None => MetricsFetch::default(),
        Some(m) => m.parse().map_err(|e: String| ConfigError(at(&e)))?,
    };
    let watch_interval = duration(
        &None,
        &file.watch_interval,
        "watch_interval",
        DEFAULT_WATCH_INTERVAL,
    )?;
    if watch_interval > MAX_WATCH_INTERVAL {
        return err(at(
            "watch_interval must be at most 5s: changes apply within 5 s",
        ));
    }
    if dns_refresh > DEFAULT_DNS_REFRESH {
        return err(at("dns_refresh must be at most 30s"));
    }
    let log_format = match (o.log_format, &file.log_format) {
        (Some(f), _) => f,
        (None, Some(s)) => s.parse().map_err(|e: String| ConfigError(at(&e)))?,
        (None, None) => LogFormat::Text,
    };
    let global = file
        .thresholds
        .clone()
        .unwrap_or_default()
        .apply(&Thresholds::default(), &at("[thresholds]"))?;
    let global_metrics = std::sync::Arc::new(
        file.metrics
            .clone()
            .unwrap_or_default()
            .apply(&MetricsOptions::default(), &at("[metrics]"))?,
    );
    let mut defaults = Defaults {
        metrics: global_metrics.clone(),
        password: PasswordSource {
            file: file.password_file.clone().map(|p| base_dir.join(p)),
            env: file.password_env.clone(),
        },
        // Flags over the file's [tls]; file paths relative to the file.
        tls: o
            .tls
            .over(&file.tls.clone().unwrap_or_default().relative_to(&base_dir)),
        tls_cache: TlsCache::default(),
    };

    let (mut targets, targets_file) =
        targets::targets(o, &file, &base_dir, &at, &global, &mut defaults)?;
    let mut clusters = topology::clusters(&file, &base_dir, &at, &global, &mut defaults)?;
    let mut sentinels =
        topology::sentinels(&file, &base_dir, &at, &global, &mut defaults, &clusters)?;
    let mut groups = topology::groups(
        &file,
        &at,
        &global,
        &global_metrics,
        &mut targets,
        &clusters,
    )?;
    let mut heartbeats = heartbeats::heartbeats(&file, &base_dir, &at)?;
    // Every heartbeat's token, this shard's or not: the shard a ping lands
    // on checks it before forwarding to the owner.
    let heartbeat_tokens: std::collections::BTreeMap<String, Secret> = heartbeats
        .iter()
        .filter_map(|h| Some((h.name.clone(), h.token.clone()?)))
        .collect();
    let data_dir = match (&o.data_dir, &file.data_dir) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => base_dir.join(d),
        (None, None) => o
            .env
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
    };
    let history_retention = match &file.history_retention {
        None => DEFAULT_HISTORY_RETENTION,
        Some(s) => match parse_duration(s) {
            Ok(d) if d >= Duration::from_secs(3600) => d,
            Ok(_) => return err(at("history_retention must be at least 1h")),
            Err(e) => return err(at(&format!("history_retention: {e}"))),
        },
    };
    let mut notify: Vec<NotifySpec> = Vec::new();
    for (i, n) in file.notify.iter().enumerate() {
        let where_ = at(&format!("[[notify]] #{} ({})", i + 1, n.name));
        validate_name(&n.name).map_err(|e| ConfigError(format!("{where_}: {e}")))?;
        if notify.iter().any(|k| k.name == n.name) {
            return err(format!("{where_}: receiver name used twice"));
        }
        notify.push(
            n.build()
                .map_err(|e| ConfigError(format!("{where_}: {e}")))?,
        );
    }

    let web_config_file = o
        .web_config_file
        .clone()
        .or_else(|| file.web_config_file.as_ref().map(|p| base_dir.join(p)));
    let max_http_connections = o
        .max_http_connections
        .or(file.max_http_connections)
        .unwrap_or(DEFAULT_MAX_HTTP_CONNECTIONS);
    if max_http_connections == 0 {
        return err(at("max_http_connections must be at least 1"));
    }

    let (shard, consensus) = peering::peering(o, &file, &base_dir, &at, &groups)?;
    if let Some(m) = &shard {
        // A shard polls only what it owns.
        targets.retain(|t| m.is_mine(&t.name));
        clusters.retain(|c| m.is_mine(&c.name));
        sentinels.retain(|c| m.is_mine(&c.name));
        groups.retain(|g| m.is_mine(&g.name));
        heartbeats.retain(|h| m.is_mine(&h.name));
    }

    Ok(Config {
        listen,
        interval,
        timeout,
        targets,
        heartbeats,
        heartbeat_tokens: std::sync::Arc::new(heartbeat_tokens),
        clusters,
        groups,
        sentinels,
        log_format,
        max_http_connections,
        dns_refresh,
        metrics_interval,
        metrics_fetch,
        watch_interval,
        files: o
            .config
            .iter()
            .chain(&targets_file)
            .chain(&web_config_file)
            .cloned()
            .collect(),
        web_config_file,
        data_dir,
        history_retention,
        notify,
        shard,
        consensus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_tmp(name: &str, text: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("redpulse-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("redpulse.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn load_text(name: &str, text: &str) -> Result<Config, ConfigError> {
        load(&Overrides {
            config: Some(write_tmp(name, text)),
            ..Default::default()
        })
    }

    #[test]
    fn shards_keep_their_share_and_bad_peering_is_refused() {
        let fleet: String = (0..40)
            .map(|i| {
                format!(
                    "[[instance]]\nname = \"c{i}\"\nurl = \"redis://10.0.0.1:{}\"\n",
                    7000 + i
                )
            })
            .collect();
        let group = "[[group]]\nname = \"g\"\nmembers = [\"c0\", \"c1\", \"c2\"]\n";
        let peers = "peers = [\"http://a:1\", \"http://b:1\"]\n";
        let mut total = 0;
        for k in 0..2 {
            let text = format!("shard = \"{k}/2\"\n{peers}{fleet}{group}");
            let c = load_text(&format!("shard-{k}"), &text).unwrap();
            total += c.targets.len();
            // A group and its members stay together.
            let members = c
                .targets
                .iter()
                .filter(|t| ["c0", "c1", "c2"].contains(&t.name.as_str()));
            assert_eq!(
                members.count(),
                if c.groups.is_empty() { 0 } else { 3 },
                "shard {k}"
            );
            assert!(c.targets.len() < 40, "shard {k} kept everything");
        }
        assert_eq!(total, 40);
        for (text, want) in [
            (format!("{peers}{fleet}"), "shard is not"),
            (
                format!("shard = \"0/3\"\n{peers}"),
                "2 URL(s) but there are 3 shards",
            ),
            (
                "shard = \"0/2\"\npeers = [\"ftp://a:1\", \"http://b:1\"]\n".to_string(),
                "expected http://host:port or https://host:port",
            ),
            (
                "shard = \"0/2\"\npeers = [\"http://a:1\", \"http://b:1\"]\n[peer_client]\nusername = \"p\"\n"
                    .to_string(),
                "[peer_client] username is set but password_file/password_env is not",
            ),
            (
                "[consensus]\npeers = [\"http://a:1\"]\nregion = \"eu\"\nquorum = 3\n".to_string(),
                "quorum must be 1 to 2",
            ),
            (
                "[consensus]\npeers = []\nregion = \"eu\"\nquorum = 1\n".to_string(),
                "1 to 16 other regions",
            ),
            (
                "peer_timeout = \"1m\"\nshard = \"0/1\"\n".to_string(),
                "at most 10s",
            ),
        ] {
            let e = load_text("bad-peering", &text).unwrap_err().0;
            assert!(e.contains(want), "{e} (wanted {want})");
        }
    }

    #[test]
    fn no_config_no_target_watches_localhost() {
        let c = load(&Overrides::default()).unwrap();
        assert_eq!(c.targets.len(), 1);
        assert_eq!(c.targets[0].name, "127.0.0.1:6379");
        assert_eq!(c.listen, "127.0.0.1:9379".parse().unwrap());
        assert_eq!((c.interval, c.timeout), (DEFAULT_INTERVAL, DEFAULT_TIMEOUT));
        assert_eq!(c.stale_after(), Duration::from_secs(3) + STALE_SLACK);
    }

    #[test]
    fn the_contract_example_config_loads() {
        let secret = write_tmp("example-secret", "");
        let secret = secret.parent().unwrap().join("cache-eu-1.pw");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let text = format!(
            r#"
listen   = "127.0.0.1:9400"
interval = "2s"
timeout  = "500ms"

[thresholds]
memory_critical      = 0.90
hit_rate_window      = "30s"
fail_after    = 3

[[instance]]
name = "cache-eu-1"
url  = "redis://10.0.0.5:6379"
password_file = "{}"
[instance.thresholds]
memory_critical = 0.98

[[instance]]
url = "redis://10.0.0.6"

[[heartbeat]]
name     = "payments-worker"
interval = "60s"
grace    = "120s"
"#,
            secret.display()
        );
        let c = load_text("example", &text).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9400".parse().unwrap());
        assert_eq!(
            (c.interval, c.timeout),
            (Duration::from_secs(2), Duration::from_millis(500))
        );
        assert_eq!(c.targets.len(), 2);
        let a = &c.targets[0];
        assert_eq!(a.password.as_ref().unwrap().expose(), "s3cret");
        assert_eq!(a.thresholds.memory_critical, 0.98);
        assert_eq!(
            a.thresholds.fail_after, 3,
            "instance overrides start from [thresholds]"
        );
        assert_eq!(a.thresholds.hit_rate_window, Duration::from_secs(30));
        let b = &c.targets[1];
        assert_eq!(b.name, "10.0.0.6:6379");
        assert_eq!(b.thresholds.memory_critical, 0.90);
        assert_eq!(c.heartbeats[0].grace, Duration::from_secs(120));
    }

    #[test]
    fn unknown_keys_fail_naming_key_and_line() {
        let e = load_text("unknown", "listen = \"127.0.0.1:1\"\nintervall = \"1s\"\n").unwrap_err();
        assert!(e.0.contains("intervall") && e.0.contains(":2:"), "{e}");
        let e = load_text("unknown2", "[thresholds]\nmemory_critcal = 0.9\n").unwrap_err();
        assert!(e.0.contains("memory_critcal") && e.0.contains(":2:"), "{e}");
        let e = load_text(
            "unknown3",
            "[[instance]]\nurl = \"redis://h\"\npasword = \"x\"\n",
        )
        .unwrap_err();
        assert!(e.0.contains("pasword") && e.0.contains(":3:"), "{e}");
        assert!(!e.0.contains('\n'), "one line: {e}");
    }

    #[test]
    fn bad_values_are_rejected() {
        for (name, text, fragment) in [
            ("badint", "interval = \"fast\"", "interval"),
            ("zeroint", "interval = \"0s\"", "above 0"),
            ("longint", "interval = \"25h\"", "at most 1 day"),
            ("longtimeout", "timeout = \"86401s\"", "at most 1 day"),
            ("overflow", "interval = \"6148914691236517206s\"", "too long"),
            ("ratio", "[thresholds]\nmemory_critical = 1.5", "memory_critical"),
            ("fail", "[thresholds]\nfail_after = 0", "fail_after"),
            ("lat", "[thresholds]\nlatency_warn = \"2s\"", "latency_warn"),
            ("dup", "[[instance]]\nname=\"a\"\nurl=\"redis://h\"\n[[instance]]\nname=\"a\"\nurl=\"redis://g\"", "twice"),
            ("url", "[[instance]]\nname=\"a\"\nurl=\"redis://h:x\"", "#1 (a)"),
            ("listen", "listen = \"nowhere\"", "listen"),
            ("fetch", "metrics_fetch = \"sometimes\"", "metrics_fetch \"sometimes\": expected"),
            ("pwenv", "password_env = \"REDPULSE_TEST_UNSET_VAR\"\n[[instance]]\nurl=\"redis://h\"", "REDPULSE_TEST_UNSET_VAR"),
        ] {
            let e = load_text(name, text).unwrap_err();
            assert!(e.0.contains(fragment), "{name}: {e}");
        }
    }

    #[test]
    fn oversized_password_files_and_odd_paths_fail_on_one_line() {
        let dir = write_tmp("bounded", "").parent().unwrap().to_path_buf();
        std::fs::write(dir.join("huge.pw"), vec![b'x'; 5000]).unwrap();
        let e = load_text(
            "bounded",
            "password_file = \"huge.pw\"\n[[instance]]\nurl = \"redis://h\"\n",
        )
        .unwrap_err();
        assert!(e.0.contains("larger than 4096 bytes"), "{e}");
        let e = load_text("odd", "targets_file = \"no\\nsuch\"\n").unwrap_err();
        assert!(!e.0.contains('\n') && e.0.contains("no\\nsuch"), "{e}");
    }

    #[test]
    fn cli_overrides_file_and_adds_targets() {
        let path = write_tmp(
            "cli",
            "interval = \"5s\"\n[[instance]]\nname = \"a\"\nurl = \"redis://h\"\n",
        );
        let c = load(&Overrides {
            config: Some(path),
            targets: vec!["b=redis://g:7000".into()],
            interval: Some("250ms".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.interval, Duration::from_millis(250));
        let names: Vec<_> = c.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(c.targets[1].addr(), "g:7000");
    }

    #[test]
    fn environment_defaults_come_after_flag_and_file() {
        let env = EnvDefaults {
            listen: Some("0.0.0.0:9379".into()),
            data_dir: Some("/data".into()),
        };
        let bare = write_tmp("envbare", "[[instance]]\nurl = \"redis://h\"\n");
        let set = write_tmp(
            "envset",
            "listen = \"127.0.0.1:9400\"\ndata_dir = \"/var/lib/redpulse\"\n[[instance]]\nurl = \"redis://h\"\n",
        );
        let load_with = |config: &PathBuf, listen: Option<&str>, data_dir: Option<&str>| {
            let c = load(&Overrides {
                config: Some(config.clone()),
                listen: listen.map(str::to_string),
                data_dir: data_dir.map(PathBuf::from),
                env: env.clone(),
                ..Default::default()
            })
            .unwrap();
            (c.listen.to_string(), c.data_dir.display().to_string())
        };
        // Environment over the built-in default.
        assert_eq!(
            load_with(&bare, None, None),
            ("0.0.0.0:9379".into(), "/data".into())
        );
        // The file over the environment.
        assert_eq!(
            load_with(&set, None, None),
            ("127.0.0.1:9400".into(), "/var/lib/redpulse".into())
        );
        // The flag over the file.
        assert_eq!(
            load_with(&set, Some("127.0.0.1:9500"), Some("/srv/rp")),
            ("127.0.0.1:9500".into(), "/srv/rp".into())
        );
        // Nothing set anywhere: the built-in defaults.
        let c = load(&Overrides {
            config: Some(bare),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    }

    #[test]
    fn targets_file_is_relative_to_the_config_and_reports_lines() {
        let path = write_tmp("tf", "targets_file = \"fleet.txt\"\n");
        let fleet = path.parent().unwrap().join("fleet.txt");
        let mut text = String::from("# fleet\n\n");
        for i in 0..100_000u32 {
            text.push_str(&format!(
                "c{i}=redis://10.{}.{}.{}:6379\n",
                i >> 16,
                (i >> 8) & 255,
                i & 255
            ));
        }
        std::fs::write(&fleet, &text).unwrap();
        let c = load(&Overrides {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.targets.len(), 100_000);
        std::fs::write(&fleet, "a=redis://h\n\nb=redis://h:nope\n").unwrap();
        let e = load(&Overrides {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.0.contains("fleet.txt:3"), "{e}");
    }
}
