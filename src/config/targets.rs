//! Targets: `[[instance]]` tables, a targets file (one `[NAME=]URL` a
//! line, or Prometheus file_sd in JSON or YAML), `--target` flags and the
//! default, each made into a [`Target`] with its password, TLS settings,
//! thresholds and labels. Names are unique.

use super::file::FileConfig;
use super::secret::PasswordSource;
use super::text::{read_bounded, shown, MAX_CONFIG_FILE};
use super::tls::TlsCache;
use super::{
    err, file_sd, labels, parse_url, split_spec, validate_name, ConfigError, Endpoint, Labels,
    Overrides, Secret, Thresholds, TlsTable, TlsTarget, DEFAULT_TARGET,
};
use std::path::{Path, PathBuf};

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
    /// Shared with the instance's tracker: one copy per instance.
    pub thresholds: std::sync::Arc<Thresholds>,
    /// Set for `rediss://` targets (boxed: inline it was 152 bytes in
    /// every plaintext instance's target).
    pub tls: Option<Box<TlsTarget>>,
    /// A node discovered in a `[[cluster]]`: polls add CLUSTER INFO.
    pub cluster: bool,
    /// Operator labels, on the JSON and every series of the instance.
    pub labels: Labels,
    /// What its metrics polls ask beyond INFO; shared like thresholds.
    pub metrics: std::sync::Arc<super::MetricsOptions>,
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
            thresholds: Default::default(),
            tls: None,
            cluster: false,
            labels: Labels::new(),
            metrics: Default::default(),
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

/// What every target inherits unless it says otherwise, and the TLS client
/// configurations built so far in this load.
pub(super) struct Defaults {
    pub password: PasswordSource,
    /// The global `[metrics]` options, shared by every target without its
    /// own.
    pub metrics: std::sync::Arc<super::MetricsOptions>,
    pub tls: TlsTable,
    pub tls_cache: TlsCache,
}

/// A target's own settings beside its URL.
#[derive(Default)]
pub(super) struct Own<'a> {
    pub password: PasswordSource,
    pub tls: Option<&'a TlsTable>,
    pub labels: Labels,
    /// Its own `[metrics]` keys, over the global ones.
    pub metrics: Option<&'a super::metrics::MetricsOverrides>,
}

pub(super) fn make_target(
    spec_name: Option<&str>,
    url: &str,
    own: Own<'_>,
    thresholds: impl Into<std::sync::Arc<Thresholds>>,
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
            Some(Box::new(d.tls_cache.target(&table, host)?))
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
        thresholds: thresholds.into(),
        tls,
        cluster: false,
        labels: own.labels,
        metrics: match own.metrics {
            None => d.metrics.clone(),
            Some(over) => std::sync::Arc::new(over.apply(&d.metrics, "metrics").map_err(|e| e.0)?),
        },
    })
}

/// Every target of the file, the targets file, the flags (or the default
/// one), with `global` thresholds; and the targets file read, if any.
pub(super) fn targets(
    o: &Overrides,
    file: &FileConfig,
    base_dir: &Path,
    at: &dyn Fn(&str) -> String,
    global: &Thresholds,
    defaults: &mut Defaults,
) -> Result<(Vec<Target>, Option<PathBuf>), ConfigError> {
    let mut targets = Vec::new();
    // One copy of the global thresholds for every target without its own.
    let shared = std::sync::Arc::new(global.clone());
    for (i, inst) in file.instance.iter().enumerate() {
        let where_ = at(&format!(
            "[[instance]] #{} ({})",
            i + 1,
            inst.name.as_deref().unwrap_or("unnamed")
        ));
        let t = match &inst.thresholds {
            Some(over) => std::sync::Arc::new(over.apply(global, &where_)?),
            None => shared.clone(),
        };
        let own_tls = inst.tls.clone().map(|t| t.relative_to(base_dir));
        let own = Own {
            password: PasswordSource {
                file: inst.password_file.clone().map(|p| base_dir.join(p)),
                env: inst.password_env.clone(),
            },
            tls: own_tls.as_ref(),
            labels: inst.labels.clone(),
            metrics: inst.metrics.as_ref(),
        };
        let target = make_target(inst.name.as_deref(), &inst.url, own, t, defaults)
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
                let target =
                    make_target(sd.name.as_deref(), &sd.url, own, shared.clone(), defaults)
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
                let target = make_target(name, url, Own::default(), shared.clone(), defaults)
                    .map_err(|e| {
                        ConfigError(format!("targets file {}:{}: {e}", shown(path), i + 1))
                    })?;
                targets.push(target);
            }
        }
    }
    for spec in &o.targets {
        let (name, url) = split_spec(spec);
        let target =
            make_target(name, url, Own::default(), shared.clone(), defaults).map_err(|e| {
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
                defaults,
            )
            .map_err(ConfigError)?,
        );
    }
    let mut seen = std::collections::HashSet::with_capacity(targets.len());
    for t in &targets {
        if !seen.insert(t.name.as_str()) {
            return err(format!(
                "instance name {:?} is used twice; names must be unique",
                t.name
            ));
        }
    }

    Ok((targets, targets_file))
}
