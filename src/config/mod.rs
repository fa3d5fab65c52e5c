//! Configuration, first in the flow: the TOML file ([`file`]), command-line
//! [`Overrides`], target URLs ([`url`]), passwords ([`secret`]) and
//! [`thresholds`], validated into a [`Config`] before anything starts.
//!
//! Every error is one line naming what and where (file:line for TOML), and
//! makes the process exit 2. Unknown keys are errors, so typos never pass
//! silently. Passwords are held in [`Secret`], whose `Debug` hides them.

pub mod file;
pub mod file_sd;
pub mod labels;
pub mod notify;
pub mod secret;
pub mod shard;
pub mod text;
pub mod thresholds;
pub mod tls;
pub mod url;
pub mod watch;

pub use labels::Labels;
pub use notify::{NotifyFormat, NotifySpec, NotifyUrl, DEFAULT_RETRY_FOR};
pub use secret::Secret;
pub use text::parse_duration;
pub use thresholds::Thresholds;
pub use tls::{TlsSettings, TlsTable, TlsTarget};
pub use url::{
    parse_url, split_spec, validate_name, Endpoint, TargetUrl, DEFAULT_PORT, MAX_NAME_LEN,
};

use file::FileConfig;
use secret::PasswordSource;
use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;
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

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// One Redis or Valkey server to watch.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// Unique, URL-safe.
    pub name: String,
    pub endpoint: Endpoint,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The `/db` of the URL. INFO is server-wide, so it only gets validated.
    pub db: u32,
    pub thresholds: Thresholds,
    /// Set for `rediss://` targets.
    pub tls: Option<TlsTarget>,
    /// A node discovered in a `[[cluster]]`: polls add CLUSTER INFO.
    pub cluster: bool,
    /// Operator labels, on the JSON and every series of the instance.
    pub labels: Labels,
}

impl Target {
    /// `host:port` (`[v6]:port`) or `unix:/path`, as shown to operators.
    pub fn addr(&self) -> String {
        self.endpoint.display()
    }

    /// A plaintext TCP target (tests, benches, the simulator's fleets).
    pub fn plain(name: &str, host: &str, port: u16) -> Target {
        Target {
            name: name.to_string(),
            endpoint: Endpoint::Tcp {
                host: host.to_string(),
                port,
            },
            username: None,
            password: None,
            db: 0,
            thresholds: Thresholds::default(),
            tls: None,
            cluster: false,
            labels: Labels::new(),
        }
    }

    /// Whether `other` is this target with, at most, other labels: then
    /// only the labels are swapped and the connection is kept.
    pub fn same_but_labels(&self, other: &Target) -> bool {
        let strip = |t: &Target| Target {
            labels: Labels::new(),
            ..t.clone()
        };
        strip(self) == strip(other)
    }
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

/// How often a cluster's topology is read again unless configured.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(30);

/// A static replication group: configured instances, one of which should
/// be the master and the rest its replicas.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    pub members: Vec<String>,
    /// From `[thresholds]`: fewer online replicas is degraded.
    pub min_replicas: u32,
    pub labels: Labels,
}

/// A Sentinel deployment: its masters' groups are discovered from the
/// sentinels.
#[derive(Clone, Debug, PartialEq)]
pub struct SentinelSpec {
    pub name: String,
    /// The configured sentinels, asked in order.
    pub sentinels: Vec<Target>,
    /// The masters to watch; empty: every master the sentinels monitor.
    pub masters: Vec<String>,
    pub refresh: Duration,
    /// What every discovered data node inherits.
    data: Target,
    pub labels: Labels,
}

impl SentinelSpec {
    /// A data node of `master`: `{sentinel}/{master}/{host}:{port}`.
    pub fn data_node(&self, master: &str, host: &str, port: u16) -> Result<Target, String> {
        discovered(&self.data, &format!("{}/{master}", self.name), host, port)
    }

    /// A sentinel, polled as an instance: `{sentinel}/sentinel/{host}:{port}`.
    pub fn sentinel_node(&self, host: &str, port: u16) -> Result<Target, String> {
        discovered(
            &self.sentinels[0],
            &format!("{}/sentinel", self.name),
            host,
            port,
        )
    }
}

/// A discovered node: `template`'s credentials, thresholds and TLS (the
/// verified name following the node's host unless `server_name` is set),
/// at `host:port`, named `{prefix}/{host}:{port}`.
fn discovered(template: &Target, prefix: &str, host: &str, port: u16) -> Result<Target, String> {
    let endpoint = Endpoint::Tcp {
        host: host.to_string(),
        port,
    };
    let tls = match &template.tls {
        Some(t) => Some(t.for_host(host)?),
        None => None,
    };
    Ok(Target {
        name: format!("{prefix}/{}", endpoint.display()),
        endpoint,
        tls,
        ..template.clone()
    })
}

/// A Redis Cluster to discover from its seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSpec {
    pub name: String,
    /// Where discovery starts (after the nodes it already knows).
    pub seeds: Vec<Target>,
    pub refresh: Duration,
    /// What every discovered node inherits: credentials, TLS, thresholds.
    template: Target,
    pub labels: Labels,
}

impl ClusterSpec {
    /// The target of a discovered node: named `{cluster}/{host}:{port}`,
    /// polled with CLUSTER INFO in the same write.
    pub fn node(&self, host: &str, port: u16) -> Result<Target, String> {
        // The template is a seed, already marked as a cluster node.
        discovered(&self.template, &self.name, host, port)
    }
}

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

/// An expected periodic ping from a worker.
#[derive(Clone, Debug, PartialEq)]
pub struct Heartbeat {
    pub name: String,
    pub interval: Duration,
    pub grace: Duration,
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
    /// How often the config and targets files are checked for changes.
    pub watch_interval: Duration,
    /// The files this config was read from (config, targets file), watched
    /// for changes.
    pub files: Vec<PathBuf>,
    /// Where the history database lives; None: memory only (`demo`).
    pub data_dir: Option<PathBuf>,
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
    /// The `--tls-*` flags: over the file's top-level `[tls]`, key by key.
    pub tls: TlsTable,
}

/// What every target inherits unless it says otherwise, and the TLS client
/// configurations built so far in this load.
struct Defaults {
    password: PasswordSource,
    tls: TlsTable,
    tls_cache: TlsCache,
}

/// A target's own settings beside its URL.
#[derive(Default)]
struct Own<'a> {
    password: PasswordSource,
    tls: Option<&'a TlsTable>,
    labels: Labels,
}

fn make_target(
    spec_name: Option<&str>,
    url: &str,
    own: Own<'_>,
    thresholds: Thresholds,
    d: &mut Defaults,
) -> Result<Target, String> {
    let u = parse_url(url)?;
    // Unnamed targets are called host:port (IPv6 without brackets, which
    // are not URL-safe).
    let name = match (spec_name, &u.endpoint) {
        (Some(name), _) => name.to_string(),
        (None, Endpoint::Tcp { host, port }) => format!("{host}:{port}"),
        (None, Endpoint::Unix { .. }) => {
            return Err("a unix socket target needs a name: NAME=unix:///path".into())
        }
    };
    validate_name(&name)?;
    labels::validate(&own.labels)?;
    let password = match u.password {
        Some(p) => Some(p),
        None => match own.password.read()? {
            Some(p) => Some(p),
            None => d.password.read()?,
        },
    };
    let tls = match (&u.endpoint, u.tls) {
        (Endpoint::Tcp { host, .. }, true) => {
            let table = own.tls.map_or_else(|| d.tls.clone(), |t| t.over(&d.tls));
            Some(d.tls_cache.target(&table, host)?)
        }
        _ if own.tls.is_some() => {
            return Err(
                "has [instance.tls] settings but a plaintext URL: use rediss:// for TLS".into(),
            )
        }
        _ => None,
    };
    Ok(Target {
        name,
        endpoint: u.endpoint,
        username: u.username,
        password,
        db: u.db,
        thresholds,
        tls,
        cluster: false,
        labels: own.labels,
    })
}

/// A `[[cluster]]`'s or `[[sentinel]]`'s thresholds (over the global ones)
/// and its topology `refresh` (default 30 s, at most 1 day).
fn topology_settings(
    own: &Option<thresholds::ThresholdOverrides>,
    refresh: &Option<String>,
    global: &Thresholds,
    where_: &str,
) -> Result<(Thresholds, Duration), ConfigError> {
    let t = match own {
        Some(over) => over.apply(global, where_)?,
        None => global.clone(),
    };
    let refresh = match refresh {
        None => DEFAULT_REFRESH,
        Some(r) => match parse_duration(r) {
            Err(e) => return err(format!("{where_}: refresh: {e}")),
            Ok(d) if d.is_zero() || d > MAX_POLL_DURATION => {
                return err(format!(
                    "{where_}: refresh must be above 0 and at most 1 day"
                ))
            }
            Ok(d) => d,
        },
    };
    Ok((t, refresh))
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
    let mut defaults = Defaults {
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

    let mut targets = Vec::new();
    for (i, inst) in file.instance.iter().enumerate() {
        let where_ = at(&format!(
            "[[instance]] #{} ({})",
            i + 1,
            inst.name.as_deref().unwrap_or("unnamed")
        ));
        let t = match &inst.thresholds {
            Some(over) => over.apply(&global, &where_)?,
            None => global.clone(),
        };
        let own_tls = inst.tls.clone().map(|t| t.relative_to(&base_dir));
        let own = Own {
            password: PasswordSource {
                file: inst.password_file.clone().map(|p| base_dir.join(p)),
                env: inst.password_env.clone(),
            },
            tls: own_tls.as_ref(),
            labels: inst.labels.clone(),
        };
        let target = make_target(inst.name.as_deref(), &inst.url, own, t, &mut defaults)
            .map_err(|e| ConfigError(format!("{where_}: {e}")))?;
        targets.push(target);
    }
    let targets_file = o
        .targets_file
        .clone()
        .or_else(|| file.targets_file.as_ref().map(|p| base_dir.join(p)));
    if let Some(path) = &targets_file {
        let text = read_bounded(path, MAX_CONFIG_FILE)
            .map_err(|e| ConfigError(format!("targets file {}: {e}", shown(path))))?;
        if let Some(yaml) = file_sd::format_of(path) {
            let entries = file_sd::parse(&text, yaml)
                .map_err(|e| ConfigError(format!("targets file {}: {e}", shown(path))))?;
            for sd in entries {
                let own = Own {
                    labels: sd.labels,
                    ..Own::default()
                };
                let target = make_target(
                    sd.name.as_deref(),
                    &sd.url,
                    own,
                    global.clone(),
                    &mut defaults,
                )
                .map_err(|e| {
                    ConfigError(format!(
                        "targets file {}: group #{}: {e}",
                        shown(path),
                        sd.group
                    ))
                })?;
                targets.push(target);
            }
        } else {
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (name, url) = split_spec(line);
                let target = make_target(name, url, Own::default(), global.clone(), &mut defaults)
                    .map_err(|e| {
                        ConfigError(format!("targets file {}:{}: {e}", shown(path), i + 1))
                    })?;
                targets.push(target);
            }
        }
    }
    for spec in &o.targets {
        let (name, url) = split_spec(spec);
        let target = make_target(name, url, Own::default(), global.clone(), &mut defaults)
            .map_err(|e| {
                let name = name.unwrap_or("(unnamed)").escape_debug();
                ConfigError(format!("--target {name}: {e}"))
            })?;
        targets.push(target);
    }
    if targets.is_empty() && o.config.is_none() {
        targets.push(
            make_target(
                None,
                DEFAULT_TARGET,
                Own::default(),
                global.clone(),
                &mut defaults,
            )
            .map_err(ConfigError)?,
        );
    }
    let mut seen = HashSet::with_capacity(targets.len());
    for t in &targets {
        if !seen.insert(t.name.as_str()) {
            return err(format!(
                "instance name {:?} is used twice; names must be unique",
                t.name
            ));
        }
    }

    let mut clusters: Vec<ClusterSpec> = Vec::new();
    for (i, c) in file.cluster.iter().enumerate() {
        let where_ = at(&format!("[[cluster]] #{} ({})", i + 1, c.name));
        let fail = |e: String| ConfigError(format!("{where_}: {e}"));
        validate_name(&c.name).map_err(fail)?;
        if clusters.iter().any(|k| k.name == c.name) {
            return err(format!("{where_}: cluster name used twice"));
        }
        if c.seeds.is_empty() {
            return err(format!("{where_}: seeds must name at least one node"));
        }
        let (thresholds, refresh) = topology_settings(&c.thresholds, &c.refresh, &global, &where_)?;
        let own_tls = c.tls.clone().map(|t| t.relative_to(&base_dir));
        let mut seeds = Vec::new();
        for url in &c.seeds {
            let own = Own {
                password: PasswordSource {
                    file: c.password_file.clone().map(|p| base_dir.join(p)),
                    env: c.password_env.clone(),
                },
                tls: own_tls.as_ref(),
                labels: c.labels.clone(),
            };
            let mut seed = make_target(Some("seed"), url, own, thresholds.clone(), &mut defaults)
                .map_err(|e| fail(format!("seed: {e}")))?;
            if !matches!(seed.endpoint, Endpoint::Tcp { .. }) {
                return err(format!(
                    "{where_}: seeds are host:port URLs, not unix sockets"
                ));
            }
            seed.name = format!("{}/seed:{}", c.name, seed.addr());
            seed.cluster = true;
            seeds.push(seed);
        }
        clusters.push(ClusterSpec {
            name: c.name.clone(),
            template: seeds[0].clone(),
            seeds,
            refresh,
            labels: c.labels.clone(),
        });
    }

    let mut sentinels: Vec<SentinelSpec> = Vec::new();
    for (i, c) in file.sentinel.iter().enumerate() {
        let where_ = at(&format!("[[sentinel]] #{} ({})", i + 1, c.name));
        let fail = |e: String| ConfigError(format!("{where_}: {e}"));
        validate_name(&c.name).map_err(fail)?;
        if sentinels.iter().any(|k| k.name == c.name) || clusters.iter().any(|k| k.name == c.name) {
            return err(format!(
                "{where_}: the name is used by another cluster or sentinel"
            ));
        }
        if c.sentinels.is_empty() {
            return err(format!(
                "{where_}: sentinels must name at least one sentinel"
            ));
        }
        for m in &c.masters {
            validate_name(m).map_err(|e| fail(format!("master {m:?}: {e}")))?;
        }
        let (thresholds, refresh) = topology_settings(&c.thresholds, &c.refresh, &global, &where_)?;
        let own_tls = c.tls.clone().map(|t| t.relative_to(&base_dir));
        let source = |file: &Option<PathBuf>, env: &Option<String>| PasswordSource {
            file: file.clone().map(|p| base_dir.join(p)),
            env: env.clone(),
        };
        let mut nodes = Vec::new();
        for url in &c.sentinels {
            let own = Own {
                password: source(&c.sentinel_password_file, &c.sentinel_password_env),
                tls: own_tls.as_ref(),
                labels: c.labels.clone(),
            };
            let mut s = make_target(
                Some("sentinel"),
                url,
                own,
                thresholds.clone(),
                &mut defaults,
            )
            .map_err(|e| fail(format!("sentinel: {e}")))?;
            if !matches!(s.endpoint, Endpoint::Tcp { .. }) {
                return err(format!("{where_}: sentinels are host:port URLs"));
            }
            // Sentinels use their own password, or none: not the default.
            if c.sentinel_password_file.is_none()
                && c.sentinel_password_env.is_none()
                && !url.contains('@')
            {
                s.password = None;
            }
            s.name = format!("{}/sentinel/{}", c.name, s.addr());
            nodes.push(s);
        }
        let own = Own {
            password: source(&c.password_file, &c.password_env),
            tls: own_tls.as_ref(),
            labels: c.labels.clone(),
        };
        let data = make_target(
            Some("data"),
            &c.sentinels[0],
            own,
            thresholds,
            &mut defaults,
        )
        .map_err(|e| fail(format!("data nodes: {e}")))?;
        let data = Target {
            username: None,
            password: match data.password {
                // The URL's password is the sentinel's, not the data nodes'.
                Some(_) if c.password_file.is_none() && c.password_env.is_none() => {
                    defaults.password.read().map_err(fail)?
                }
                p => p,
            },
            ..data
        };
        sentinels.push(SentinelSpec {
            name: c.name.clone(),
            sentinels: nodes,
            masters: c.masters.clone(),
            refresh,
            data,
            labels: c.labels.clone(),
        });
    }

    let mut groups: Vec<GroupSpec> = Vec::new();
    for (i, g) in file.group.iter().enumerate() {
        let where_ = at(&format!("[[group]] #{} ({})", i + 1, g.name));
        validate_name(&g.name).map_err(|e| ConfigError(format!("{where_}: {e}")))?;
        if groups.iter().any(|k| k.name == g.name) || clusters.iter().any(|c| c.name == g.name) {
            return err(format!(
                "{where_}: the name is used by another group or cluster"
            ));
        }
        if g.members.is_empty() {
            return err(format!("{where_}: members must name at least one instance"));
        }
        for m in &g.members {
            if !targets.iter().any(|t| &t.name == m) {
                return err(format!(
                    "{where_}: member {m:?} is not a configured instance"
                ));
            }
        }
        labels::validate(&g.labels).map_err(|e| ConfigError(format!("{where_}: {e}")))?;
        // Members inherit the group's labels; their own win.
        for t in targets.iter_mut().filter(|t| g.members.contains(&t.name)) {
            t.labels = labels::merged(&g.labels, &t.labels);
        }
        groups.push(GroupSpec {
            name: g.name.clone(),
            members: g.members.clone(),
            min_replicas: global.min_replicas,
            labels: g.labels.clone(),
        });
    }

    let mut heartbeats = Vec::new();
    for hb in &file.heartbeat {
        let where_ = at(&format!("[[heartbeat]] {}", hb.name));
        validate_name(&hb.name).map_err(|e| ConfigError(format!("{where_}: {e}")))?;
        let interval = parse_duration(&hb.interval)
            .map_err(|e| ConfigError(format!("{where_}: interval: {e}")))?;
        let grace = match &hb.grace {
            Some(g) => {
                parse_duration(g).map_err(|e| ConfigError(format!("{where_}: grace: {e}")))?
            }
            None => interval,
        };
        if interval.is_zero() {
            return err(format!("{where_}: interval must be above 0"));
        }
        if heartbeats.iter().any(|h: &Heartbeat| h.name == hb.name) {
            return err(format!("{where_}: heartbeat name used twice"));
        }
        heartbeats.push(Heartbeat {
            name: hb.name.clone(),
            interval,
            grace,
        });
    }

    let data_dir = match (&o.data_dir, &file.data_dir) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(d)) => Some(base_dir.join(d)),
        (None, None) => Some(PathBuf::from(DEFAULT_DATA_DIR)),
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

    let max_http_connections = o
        .max_http_connections
        .or(file.max_http_connections)
        .unwrap_or(DEFAULT_MAX_HTTP_CONNECTIONS);
    if max_http_connections == 0 {
        return err(at("max_http_connections must be at least 1"));
    }

    let (shard, consensus) = peering(o, &file, &at, &groups)?;
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
        clusters,
        groups,
        sentinels,
        log_format,
        max_http_connections,
        dns_refresh,
        metrics_interval,
        watch_interval,
        files: o.config.iter().chain(&targets_file).cloned().collect(),
        data_dir,
        history_retention,
        notify,
        shard,
        consensus,
    })
}

/// What `peering` reads: the shard map and the consensus settings.
type Peering = (
    Option<std::sync::Arc<shard::ShardMap>>,
    Option<std::sync::Arc<shard::ConsensusSpec>>,
);

/// `shard`, `peers`, `peer_timeout` and `[consensus]`, checked.
fn peering(
    o: &Overrides,
    file: &FileConfig,
    at: &dyn Fn(&str) -> String,
    groups: &[GroupSpec],
) -> Result<Peering, ConfigError> {
    let budget = |key: &str, v: &Option<String>| -> Result<Duration, ConfigError> {
        match v {
            None => Ok(shard::DEFAULT_PEER_TIMEOUT),
            Some(s) => match parse_duration(s) {
                Ok(d) if !d.is_zero() && d <= Duration::from_secs(10) => Ok(d),
                Ok(_) => err(at(&format!("{key} must be above 0 and at most 10s"))),
                Err(e) => err(at(&format!("{key}: {e}"))),
            },
        }
    };
    let peers = |key: &str, list: &[String]| -> Result<Vec<shard::PeerUrl>, ConfigError> {
        list.iter()
            .map(|u| shard::PeerUrl::parse(u).map_err(|e| ConfigError(at(&format!("{key}: {e}")))))
            .collect()
    };
    let spec = o.shard.as_ref().or(file.shard.as_ref());
    let shard = match spec {
        None if !file.peers.is_empty() => {
            return err(at(
                "peers is set but shard is not: add shard = \"I/N\" or --shard",
            ))
        }
        None => None,
        Some(s) => {
            let spec = shard::parse_shard(s, shard::host_name).map_err(|e| ConfigError(at(&e)))?;
            let timeout = budget("peer_timeout", &file.peer_timeout)?;
            let groups: Vec<(String, Vec<String>)> = groups
                .iter()
                .map(|g| (g.name.clone(), g.members.clone()))
                .collect();
            let map = shard::ShardMap::new(spec, peers("peers", &file.peers)?, timeout, &groups)
                .map_err(|e| ConfigError(at(&e)))?;
            Some(std::sync::Arc::new(map))
        }
    };
    let consensus = match &file.consensus {
        None => None,
        Some(c) => {
            validate_name(&c.region)
                .map_err(|e| ConfigError(at(&format!("[consensus] region: {e}"))))?;
            let list = peers("[consensus] peers", &c.peers)?;
            if list.is_empty() || list.len() > shard::MAX_CONSENSUS_PEERS {
                return err(at(&format!(
                    "[consensus] peers must list 1 to {} other regions",
                    shard::MAX_CONSENSUS_PEERS
                )));
            }
            let voters = list.len() as u32 + 1;
            if c.quorum == 0 || c.quorum > voters {
                return err(at(&format!(
                    "[consensus] quorum must be 1 to {voters} (the peers plus this region)"
                )));
            }
            Some(std::sync::Arc::new(shard::ConsensusSpec {
                peers: list,
                region: c.region.clone(),
                quorum: c.quorum,
                timeout: budget("[consensus] timeout", &c.timeout)?,
            }))
        }
    };
    Ok((shard, consensus))
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
                "shard = \"0/2\"\npeers = [\"https://a:1\", \"http://b:1\"]\n".to_string(),
                "plain HTTP",
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
