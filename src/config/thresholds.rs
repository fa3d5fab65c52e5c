//! The limits the instance rules compare against: their defaults (the
//! contract's), the `[thresholds]` tables as written, and validation.
//!
//! Lives in config because every level of the config (top level, per
//! instance) overrides it key by key; `judge::rules` only reads it.

use super::text::parse_duration;
use super::ConfigError;

use serde::Deserialize;
use std::time::Duration;

/// The limits the rules compare against. Defaults are the contract's.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    /// used_memory / maxmemory above this: critical.
    pub memory_critical: f64,
    /// Windowed hit rate below this: degraded.
    pub hit_rate_min: f64,
    /// ... only with at least this many lookups in the window.
    pub hit_rate_min_lookups: u64,
    pub hit_rate_window: Duration,
    /// connected_clients / maxclients at or above this: degraded.
    pub clients_near_limit: f64,
    pub latency_warn: Duration,
    pub latency_critical: Duration,
    pub replication_lag_bytes: u64,
    /// -1 never flags blocked clients.
    pub blocked_clients_max: i64,
    /// Consecutive worse polls before a worse status is reported.
    pub fail_after: u32,
    /// Consecutive better polls before a better status is reported.
    pub recover_after: u32,
    /// A TLS server certificate expiring in fewer days than this: degraded.
    pub tls_expiry_warn_days: u32,
    /// maxmemory 0 and used_memory / total_system_memory above this: critical.
    pub system_memory_critical: f64,
    /// Unsaved changes and a last successful save older than this:
    /// degraded. Zero turns the rule off.
    pub backup_max_age: Duration,
    /// A cluster shard or group with fewer online replicas: degraded.
    pub min_replicas: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            memory_critical: 0.95,
            hit_rate_min: 0.70,
            hit_rate_min_lookups: 1000,
            hit_rate_window: Duration::from_secs(60),
            clients_near_limit: 0.90,
            latency_warn: Duration::from_millis(200),
            latency_critical: Duration::from_millis(1000),
            replication_lag_bytes: 64 * 1024 * 1024,
            blocked_clients_max: -1,
            fail_after: 2,
            recover_after: 2,
            tls_expiry_warn_days: 14,
            system_memory_critical: 0.90,
            backup_max_age: Duration::from_secs(48 * 3600),
            min_replicas: 1,
        }
    }
}

/// `[thresholds]` as written: every key optional, applied over a base.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThresholdOverrides {
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
    tls_expiry_warn_days: Option<u32>,
    system_memory_critical: Option<f64>,
    backup_max_age: Option<String>,
    min_replicas: Option<u32>,
}

impl ThresholdOverrides {
    pub(crate) fn apply(&self, base: &Thresholds, at: &str) -> Result<Thresholds, ConfigError> {
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
            tls_expiry_warn_days: self
                .tls_expiry_warn_days
                .unwrap_or(base.tls_expiry_warn_days),
            system_memory_critical: self
                .system_memory_critical
                .unwrap_or(base.system_memory_critical),
            backup_max_age: dur(&self.backup_max_age, "backup_max_age", base.backup_max_age)?,
            min_replicas: self.min_replicas.unwrap_or(base.min_replicas),
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
    ratio(t.system_memory_critical, "system_memory_critical", true)?;
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
