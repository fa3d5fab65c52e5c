//! Configuration: the TOML file, command-line overrides and target URLs,
//! validated into a [`Config`] before anything starts.
//!
//! Every error is one line naming what and where (file:line for TOML), and
//! makes the process exit 2. Unknown keys are errors, so typos never pass
//! silently. Passwords are held in [`Secret`], whose `Debug` hides them.

use crate::health::Thresholds;
use serde::Deserialize;
use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest instance name; names appear in URLs and metric labels.
pub const MAX_NAME_LEN: usize = 128;
/// Port assumed when a URL has none.
pub const DEFAULT_PORT: u16 = 6379;
/// Watched when no target is configured at all.
pub const DEFAULT_TARGET: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9379";
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

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

/// A password. `Debug` never shows it, so it cannot leak through logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a password.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The password itself, for the AUTH command only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One Redis or Valkey server to watch.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// Unique, URL-safe.
    pub name: String,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The `/db` of the URL. INFO is server-wide, so it only gets validated.
    pub db: u32,
    pub thresholds: Thresholds,
}

impl Target {
    /// `host:port` (`[v6]:port`), as shown to operators.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
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
    pub log_format: LogFormat,
    /// Open HTTP connections at most.
    pub max_http_connections: usize,
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
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    interval: Option<String>,
    timeout: Option<String>,
    targets_file: Option<PathBuf>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    log_format: Option<String>,
    max_http_connections: Option<usize>,
    thresholds: Option<ThresholdOverrides>,
    #[serde(default)]
    instance: Vec<FileInstance>,
    #[serde(default)]
    heartbeat: Vec<FileHeartbeat>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileInstance {
    name: Option<String>,
    url: String,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    thresholds: Option<ThresholdOverrides>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHeartbeat {
    name: String,
    interval: String,
    grace: Option<String>,
}

/// `[thresholds]` as written: every key optional, applied over a base.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct ThresholdOverrides {
    memory_critical: Option<f64>,
    hit_rate_min: Option<f64>,
    hit_rate_min_lookups: Option<u64>,
    hit_rate_window: Option<String>,
    clients_near_limit: Option<f64>,
    latency_warn: Option<String>,
    latency_critical: Option<String>,
    replication_lag_bytes: Option<u64>,
    blocked_clients_max: Option<i64>,
    fail_after: Option<u32>,
    recover_after: Option<u32>,
}

impl ThresholdOverrides {
    fn apply(&self, base: &Thresholds, at: &str) -> Result<Thresholds, ConfigError> {
        let dur = |v: &Option<String>, key: &str, d: Duration| -> Result<Duration, ConfigError> {
            v.as_deref().map_or(Ok(d), |s| {
                parse_duration(s).map_err(|e| ConfigError(format!("{at}: {key}: {e}")))
            })
        };
        let t = Thresholds {
            memory_critical: self.memory_critical.unwrap_or(base.memory_critical),
            hit_rate_min: self.hit_rate_min.unwrap_or(base.hit_rate_min),
            hit_rate_min_lookups: self
                .hit_rate_min_lookups
                .unwrap_or(base.hit_rate_min_lookups),
            hit_rate_window: dur(
                &self.hit_rate_window,
                "hit_rate_window",
                base.hit_rate_window,
            )?,
            clients_near_limit: self.clients_near_limit.unwrap_or(base.clients_near_limit),
            latency_warn: dur(&self.latency_warn, "latency_warn", base.latency_warn)?,
            latency_critical: dur(
                &self.latency_critical,
                "latency_critical",
                base.latency_critical,
            )?,
            replication_lag_bytes: self
                .replication_lag_bytes
                .unwrap_or(base.replication_lag_bytes),
            blocked_clients_max: self.blocked_clients_max.unwrap_or(base.blocked_clients_max),
            fail_after: self.fail_after.unwrap_or(base.fail_after),
            recover_after: self.recover_after.unwrap_or(base.recover_after),
        };
        validate_thresholds(&t).map_err(|e| ConfigError(format!("{at}: {e}")))?;
        Ok(t)
    }
}

fn validate_thresholds(t: &Thresholds) -> Result<(), String> {
    let ratio = |v: f64, key: &str, lo_open: bool| {
        let ok = v.is_finite() && if lo_open { v > 0.0 } else { v >= 0.0 } && v <= 1.0;
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{key} = {v}: must be a ratio in {}0, 1]",
                if lo_open { "(" } else { "[" }
            ))
        }
    };
    ratio(t.memory_critical, "memory_critical", true)?;
    ratio(t.hit_rate_min, "hit_rate_min", false)?;
    ratio(t.clients_near_limit, "clients_near_limit", true)?;
    if t.hit_rate_window.is_zero() {
        return Err("hit_rate_window must be above 0".into());
    }
    if t.latency_warn > t.latency_critical {
        return Err("latency_warn must not exceed latency_critical".into());
    }
    if t.blocked_clients_max < -1 {
        return Err("blocked_clients_max must be -1 (never flag) or at least 0".into());
    }
    if t.fail_after == 0 || t.recover_after == 0 {
        return Err("fail_after and recover_after must be at least 1".into());
    }
    Ok(())
}

/// Parse `250ms`, `1s`, `2m`, `1h` (a whole number and a unit).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("duration {s:?}: expected a number and a unit, e.g. 250ms, 1s, 2m"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("duration {s:?}: unit must be ms, s, m or h")),
    };
    Ok(d)
}

/// A parsed target URL, before a name is settled.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetUrl {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub db: u32,
}

/// Parse `redis://[[user]:password@]host[:port][/db]` (also `valkey://`).
/// Error messages never repeat the userinfo part, which holds the password.
pub fn parse_url(url: &str) -> Result<TargetUrl, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("target URL must start with redis:// or valkey://".into());
    };
    match scheme {
        "redis" | "valkey" => {}
        "rediss" | "valkeys" => {
            return Err(format!(
            "{scheme}:// (TLS) targets are not supported yet; use redis:// on a trusted network"
        ))
        }
        // Echo a scheme only when it looks like one: anything else before
        // "://" may be a mistyped credential.
        _ if scheme.len() <= 10
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)) =>
        {
            return Err(format!(
                "unknown URL scheme {scheme:?}: expected redis:// or valkey://"
            ))
        }
        _ => return Err("unknown URL scheme: expected redis:// or valkey://".into()),
    }
    let (userinfo, hostpart) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let Some((user, pass)) = info.split_once(':') else {
                return Err("credentials need a colon: redis://:PASSWORD@host or redis://USER:PASSWORD@host".into());
            };
            let user = percent_decode(user).ok_or("user name has a bad percent-encoding")?;
            let pass = percent_decode(pass).ok_or("password has a bad percent-encoding")?;
            (
                Some(user).filter(|u| !u.is_empty()),
                Some(Secret::new(pass)).filter(|p| !p.0.is_empty()),
            )
        }
    };
    if hostpart.contains('?') || hostpart.contains('#') {
        return Err("query strings and fragments are not supported in target URLs".into());
    }
    let (authority, db) = match hostpart.split_once('/') {
        Some((a, "")) => (a, 0),
        Some((a, db)) => (
            a,
            db.parse::<u32>()
                .map_err(|_| format!("database {db:?} is not a number"))?,
        ),
        None => (hostpart, 0),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err("IPv6 host is missing its closing ']'".into());
        };
        let port = match after {
            "" => DEFAULT_PORT,
            p => parse_port(p.strip_prefix(':').ok_or("junk after IPv6 host")?)?,
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), parse_port(p)?),
            None => (authority.to_string(), DEFAULT_PORT),
        }
    };
    if host.is_empty() {
        return Err("target URL has no host".into());
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
    {
        return Err(format!(
            "host {host:?} has characters a host name cannot have"
        ));
    }
    Ok(TargetUrl {
        host,
        port,
        username,
        password,
        db,
    })
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("port {p:?} is not a port number (1-65535)")),
        Ok(n) => Ok(n),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Check an instance name: URL-safe `[A-Za-z0-9._:-]`, 1 to 128 bytes.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!("instance name must be 1 to {MAX_NAME_LEN} bytes"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(format!(
            "instance name {name:?} has {c:?}; allowed: A-Z a-z 0-9 . _ : -"
        ));
    }
    Ok(())
}

/// Split `[NAME=]URL`. The name, if any, comes before the scheme.
pub fn split_spec(spec: &str) -> (Option<&str>, &str) {
    let scheme_at = spec.find("://").unwrap_or(spec.len());
    match spec[..scheme_at].split_once('=') {
        Some((name, _)) => (Some(name.trim()), spec[name.len() + 1..].trim()),
        None => (None, spec.trim()),
    }
}

/// Where secrets come from when a URL has none.
#[derive(Clone, Debug, Default)]
struct PasswordSource {
    file: Option<PathBuf>,
    env: Option<String>,
}

impl PasswordSource {
    fn read(&self) -> Result<Option<Secret>, String> {
        if let Some(path) = &self.file {
            let text = read_bounded(path, MAX_PASSWORD_FILE)
                .map_err(|e| format!("password_file {}: {e}", shown(path)))?;
            let pass = text.strip_suffix('\n').unwrap_or(&text);
            let pass = pass.strip_suffix('\r').unwrap_or(pass);
            if pass.is_empty() {
                return Err(format!("password_file {} is empty", shown(path)));
            }
            return Ok(Some(Secret::new(pass)));
        }
        if let Some(var) = &self.env {
            return match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
                _ => Err(format!("password_env {var}: variable is not set or empty")),
            };
        }
        Ok(None)
    }
}

fn make_target(
    spec_name: Option<&str>,
    url: &str,
    own: &PasswordSource,
    default: &PasswordSource,
    thresholds: Thresholds,
) -> Result<Target, String> {
    let u = parse_url(url)?;
    // Unnamed targets are called host:port (IPv6 without brackets, which
    // are not URL-safe).
    let name = spec_name.map_or_else(|| format!("{}:{}", u.host, u.port), str::to_string);
    validate_name(&name)?;
    let password = match u.password {
        Some(p) => Some(p),
        None => match own.read()? {
            Some(p) => Some(p),
            None => default.read()?,
        },
    };
    Ok(Target {
        name,
        host: u.host,
        port: u.port,
        username: u.username,
        password,
        db: u.db,
        thresholds,
    })
}

/// Largest password file read: a password is short, and this stops a
/// mistake like `password_file = "/dev/zero"` from eating memory.
const MAX_PASSWORD_FILE: u64 = 4096;
/// Largest config or targets file: 100,000 targets take about 5 MB.
const MAX_CONFIG_FILE: u64 = 64 << 20;

/// Read a whole file of at most `max` bytes.
fn read_bounded(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(std::io::Error::other(format!("larger than {max} bytes")));
    }
    Ok(text)
}

/// A path for a one-line message: control characters escaped.
fn shown(path: &Path) -> String {
    path.display().to_string().escape_debug().to_string()
}

/// Line number (1-based) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
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
                Ok(v) if !v.is_zero() => Ok(v),
                Ok(_) => err(at(&format!("{key} must be above 0"))),
                Err(e) => err(at(&format!("{key}: {e}"))),
            },
        }
    };
    let interval = duration(&o.interval, &file.interval, "interval", DEFAULT_INTERVAL)?;
    let timeout = duration(&o.timeout, &file.timeout, "timeout", DEFAULT_TIMEOUT)?;
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
    let default_pw = PasswordSource {
        file: file.password_file.clone().map(|p| base_dir.join(p)),
        env: file.password_env.clone(),
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
        let own = PasswordSource {
            file: inst.password_file.clone().map(|p| base_dir.join(p)),
            env: inst.password_env.clone(),
        };
        let target = make_target(inst.name.as_deref(), &inst.url, &own, &default_pw, t)
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
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, url) = split_spec(line);
            let target = make_target(
                name,
                url,
                &PasswordSource::default(),
                &default_pw,
                global.clone(),
            )
            .map_err(|e| ConfigError(format!("targets file {}:{}: {e}", shown(path), i + 1)))?;
            targets.push(target);
        }
    }
    for spec in &o.targets {
        let (name, url) = split_spec(spec);
        let target = make_target(
            name,
            url,
            &PasswordSource::default(),
            &default_pw,
            global.clone(),
        )
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
                &PasswordSource::default(),
                &default_pw,
                global.clone(),
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

    let max_http_connections = o
        .max_http_connections
        .or(file.max_http_connections)
        .unwrap_or(crate::http::MAX_HTTP_CONNECTIONS);
    if max_http_connections == 0 {
        return err(at("max_http_connections must be at least 1"));
    }

    Ok(Config {
        listen,
        interval,
        timeout,
        targets,
        heartbeats,
        log_format,
        max_http_connections,
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
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "1", "s", "1.5s", "-1s", "1 d", "1sec"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_parse_with_all_parts() {
        let u = parse_url("redis://alice:p%40ss:w@cache.example-1:6380/2").unwrap();
        assert_eq!(u.host, "cache.example-1");
        assert_eq!(u.port, 6380);
        assert_eq!(u.username.as_deref(), Some("alice"));
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("p@ss:w"));
        assert_eq!(u.db, 2);
        let v = parse_url("valkey://:secret@[::1]").unwrap();
        assert_eq!(
            (v.host.as_str(), v.port, v.username, v.db),
            ("::1", 6379, None, 0)
        );
        assert_eq!(v.password.unwrap().expose(), "secret");
        let plain = parse_url("redis://127.0.0.1").unwrap();
        assert_eq!((plain.port, plain.password), (6379, None));
    }

    #[test]
    fn bad_urls_say_why_without_the_password() {
        for (url, fragment) in [
            ("http://h", "scheme"),
            ("rediss://:hunter2@h", "TLS"),
            ("redis://h:0", "port"),
            ("redis://h:99999", "port"),
            ("redis://", "no host"),
            ("redis://hunter2@h", "colon"),
            ("redis://:a%zzhunter2@h", "percent"),
            ("redis://h/x", "database"),
            ("redis://h?x=1", "query"),
            ("redis://[::1", "]"),
            ("127.0.0.1:6379", "redis://"),
            // Found by the target_url fuzzer: the text before "://" was
            // echoed, and it may hold a credential.
            (
                "re`iss/:/:hunter2hunter2lBBBc$cs://:hunter2hunter2@BBBB2``",
                "scheme",
            ),
        ] {
            let e = parse_url(url).unwrap_err();
            assert!(e.contains(fragment), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{url}: password leaked in {e}");
        }
    }

    #[test]
    fn errors_do_not_depend_on_the_password() {
        // Inputs from the target_url fuzzer: a password that is a piece of
        // an error's own text, and one before a second "://".
        for (url, other) in [
            (
                "redis://0ssis:arget URL has n@",
                "redis://0ssis:xxxxxxxxxxxxxxx@",
            ),
            (
                "re`iss/:/:hunvaBBBlBBBBBBBBBc$cs://:hunvaBBB@BBBB2``",
                "re`iss/:/:hunvaBBBlBBBBBBBBBc$cs://:xxxxxxxx@BBBB2``",
            ),
            ("redis://:secret@h:0", "redis://:xxxxxx@h:0"),
        ] {
            assert_eq!(
                parse_url(url).unwrap_err(),
                parse_url(other).unwrap_err(),
                "{url}"
            );
        }
    }

    #[test]
    fn secret_debug_hides_the_password() {
        let t = parse_url("redis://:hunter2@h").unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    #[test]
    fn spec_splits_name_before_scheme_only() {
        assert_eq!(split_spec("local=redis://h"), (Some("local"), "redis://h"));
        assert_eq!(split_spec("redis://:a=b@h"), (None, "redis://:a=b@h"));
        assert_eq!(
            split_spec("x=redis://:a=b@h"),
            (Some("x"), "redis://:a=b@h")
        );
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("cache-eu-1.x_y:6379").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name(&"a".repeat(129)).is_err());
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
