//! The TOML schema as written (every key optional, unknown keys refused),
//! durations, and bounded file reading with one-line error paths.

use super::thresholds::ThresholdOverrides;
use super::tls::TlsTable;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    pub data_dir: Option<PathBuf>,
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
}

/// Longest duration any setting accepts. Heartbeats of weekly jobs fit;
/// anything longer is a typo, and bounding it here keeps every later sum
/// and product of durations (stale limits, deadlines) far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

/// Parse `250ms`, `1s`, `2m`, `1h` (a whole number and a unit), at most
/// [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let shape = || format!("duration {s:?}: expected a number and a unit, e.g. 250ms, 1s, 2m");
    if num.is_empty() {
        return Err(shape());
    }
    // A number too long for u64 is as much out of range as a large one.
    let n: u64 = num.parse().unwrap_or(u64::MAX);
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("duration {s:?}: unit must be ms, s, m or h")),
    };
    let d = n
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| format!("duration {s:?} is too long: at most 366 days"))?;
    Ok(d)
}

/// Largest config or targets file: 100,000 targets take about 5 MB.
pub(crate) const MAX_CONFIG_FILE: u64 = 64 << 20;

/// Read a whole file of at most `max` bytes.
pub(crate) fn read_bounded(path: &Path, max: u64) -> std::io::Result<String> {
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
pub(crate) fn shown(path: &Path) -> String {
    path.display().to_string().escape_debug().to_string()
}

/// Line number (1-based) of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn durations_past_the_bound_are_errors_not_overflows() {
        assert_eq!(parse_duration("8784h"), Ok(MAX_DURATION));
        for long in [
            "8785h",
            "6148914691236517206s",
            "18446744073709551615ms",
            "99999999999999999999999s",
            "307445734561825861m",
        ] {
            let e = parse_duration(long).unwrap_err();
            assert!(e.contains("too long"), "{long}: {e}");
        }
    }
}
