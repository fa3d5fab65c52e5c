//! Operator labels (`team`, `env`, `region`, ...) on instances, clusters,
//! Sentinel deployments and groups, or from file_sd targets files.

use std::collections::BTreeMap;

/// Labels by name, sorted (so JSON, metrics and comparisons are stable).
pub type Labels = BTreeMap<String, String>;

/// At most this many labels per instance, and this long a value: labels
/// are copied onto every series of the instance.
pub const MAX_LABELS: usize = 32;
pub const MAX_LABEL_VALUE: usize = 256;

/// Label names redpulse's own series already use: a user label of the
/// same name would make a series with the name twice, which Prometheus
/// refuses.
const RESERVED: &[&str] = &[
    "instance",
    "status",
    "group",
    "result",
    "le",
    "quantile",
    "cmd",
    "db",
    "err",
    "master_host",
    "master_port",
    "read_only",
    "slave_ip",
    "slave_port",
    "slave_state",
    "master_name",
    "master_address",
    "master_status",
];

/// The label keys of `redis_instance_info`, in redis_exporter's order
/// (`wire::exposition` writes them; user labels may not take them).
pub const INSTANCE_INFO_KEYS: [&str; 9] = [
    "role",
    "redis_version",
    "redis_build_id",
    "redis_mode",
    "os",
    "maxmemory_policy",
    "tcp_port",
    "run_id",
    "process_id",
];

/// Labels `redis_instance_info` gets only from a Valkey server, after the
/// fixed ones (as redis_exporter adds them).
pub const VALKEY_INFO_KEYS: [&str; 2] = ["valkey_version", "valkey_release_stage"];

/// Check every label: names `[a-zA-Z_][a-zA-Z0-9_]*`, not reserved, not
/// starting with `__`; values at most [`MAX_LABEL_VALUE`] bytes.
pub fn validate(labels: &Labels) -> Result<(), String> {
    if labels.len() > MAX_LABELS {
        return Err(format!("at most {MAX_LABELS} labels, not {}", labels.len()));
    }
    for (k, v) in labels {
        let mut chars = k.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "label name {k:?}: must match [a-zA-Z_][a-zA-Z0-9_]*"
            ));
        }
        if k.starts_with("__") {
            return Err(format!(
                "label name {k:?}: names starting with __ are Prometheus's"
            ));
        }
        if RESERVED.contains(&k.as_str())
            || INSTANCE_INFO_KEYS.contains(&k.as_str())
            || VALKEY_INFO_KEYS.contains(&k.as_str())
        {
            return Err(format!(
                "label name {k:?} is used by redpulse's own series; choose another"
            ));
        }
        if v.len() > MAX_LABEL_VALUE {
            return Err(format!(
                "label {k:?}: value longer than {MAX_LABEL_VALUE} bytes"
            ));
        }
    }
    Ok(())
}

/// `over` on top of `base`: a key in both takes `over`'s value.
pub fn merged(base: &Labels, over: &Labels) -> Labels {
    let mut out = base.clone();
    out.extend(over.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// Parse a `k:v` filter (`?label=team:payments`).
pub fn parse_filter(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("label filter {s:?}: expected name:value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_are_checked() {
        assert!(validate(&of(&[("team", "a"), ("_x9", "")])).is_ok());
        for bad in [
            "9a", "a-b", "", "__meta", "instance", "status", "cmd", "db", "role", "run_id",
        ] {
            assert!(validate(&of(&[(bad, "v")])).is_err(), "{bad}");
        }
        assert!(validate(&of(&[("a", &"x".repeat(MAX_LABEL_VALUE + 1))])).is_err());
    }

    #[test]
    fn merging_and_filters() {
        let m = merged(
            &of(&[("team", "a"), ("env", "prod")]),
            &of(&[("team", "b")]),
        );
        assert_eq!(m, of(&[("env", "prod"), ("team", "b")]));
        assert_eq!(
            parse_filter("team:pay:ments").unwrap(),
            ("team".into(), "pay:ments".into())
        );
        assert!(parse_filter("team").is_err());
        assert!(parse_filter(":x").is_err());
    }
}
