//! `[metrics]`: what a metrics poll asks beyond INFO, globally and per
//! instance, group or cluster (`[instance.metrics]`, ...), merged key by
//! key over the global table as thresholds are. Unknown keys are refused.

use super::ConfigError;
use serde::Deserialize;

/// Longest name accepted for a renamed CONFIG command.
const MAX_COMMAND_NAME: usize = 64;
/// At most this many entries in one key or stream list: each is a SCAN or
/// a read per metrics poll.
const MAX_KEY_SPECS: usize = 1000;
/// Longest key or pattern accepted (a longer key could not be a label
/// value anyway).
const MAX_KEY_LEN: usize = 256;
/// Bound of `check_keys_max` and `check_keys_batch_size`: at most 10,000
/// checked keys of at most 256 bytes is 2.5 MB per instance, and a SCAN
/// reply of that COUNT stays well inside the decoder's 65,536 elements.
const MAX_CHECK_KEYS: u32 = 10_000;

/// A key or pattern in a database: `db3=user:*`, or `user:*` for db 0, as
/// redis_exporter's `-check-keys` takes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    pub db: u32,
    pub key: Box<str>,
}

impl KeySpec {
    /// Whether SCAN expands it (it holds a glob character, as the
    /// exporter decides).
    pub fn is_pattern(&self) -> bool {
        self.key.contains(['?', '*', '[', ']', '^'])
    }

    fn parse(s: &str) -> Result<KeySpec, String> {
        let (db, key) = match s.split_once('=') {
            None => ("0", s.trim()),
            Some((db, key)) => (db.trim(), key.trim()),
        };
        let digits = db.strip_prefix("db").unwrap_or(db);
        let db: u32 = digits
            .parse()
            .map_err(|_| format!("{s:?}: the database must be dbN or N"))?;
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(format!("{s:?}: the key must be 1 to {MAX_KEY_LEN} bytes"));
        }
        Ok(KeySpec {
            db,
            key: key.into(),
        })
    }
}

/// The effective options of one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsOptions {
    /// The CONFIG command's name on this server (managed services rename
    /// it), as redis_exporter's `-config-command`.
    pub config_command: Box<str>,
    /// Every config value as `redis_config_key_value` / `redis_config_value`
    /// (CONFIG GET * instead of three keys).
    pub include_config_metrics: bool,
    /// Leave secrets (`requirepass`, `masterauth`, TLS key passphrases)
    /// out of those series.
    pub redact_config_metrics: bool,
    /// `redis_connected_clients_details` from CLIENT LIST.
    pub export_client_list: bool,
    /// Keys (patterns SCANned) whose size and value are published.
    pub check_keys: Vec<KeySpec>,
    /// Keys read as they are (no SCAN).
    pub check_single_keys: Vec<KeySpec>,
    /// Patterns whose matching keys are counted (`redis_keys_count`).
    pub count_keys: Vec<KeySpec>,
    /// Streams (patterns SCANned) described with XINFO.
    pub check_streams: Vec<KeySpec>,
    pub check_single_streams: Vec<KeySpec>,
    /// At most this many keys and streams read per instance per metrics
    /// poll.
    pub check_keys_max: u32,
    /// SCAN's COUNT.
    pub check_keys_batch_size: u32,
}

impl MetricsOptions {
    /// Whether a metrics poll runs key or stream checks.
    pub fn has_checks(&self) -> bool {
        !(self.check_keys.is_empty()
            && self.check_single_keys.is_empty()
            && self.count_keys.is_empty()
            && self.check_streams.is_empty()
            && self.check_single_streams.is_empty())
    }
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            config_command: "CONFIG".into(),
            include_config_metrics: false,
            redact_config_metrics: true,
            export_client_list: false,
            check_keys: Vec::new(),
            check_single_keys: Vec::new(),
            count_keys: Vec::new(),
            check_streams: Vec::new(),
            check_single_streams: Vec::new(),
            check_keys_max: 1000,
            check_keys_batch_size: 1000,
        }
    }
}

/// `[metrics]` as written: every key optional, applied over a base.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricsOverrides {
    pub config_command: Option<String>,
    pub include_config_metrics: Option<bool>,
    pub redact_config_metrics: Option<bool>,
    pub export_client_list: Option<bool>,
    pub check_keys: Option<Vec<String>>,
    pub check_single_keys: Option<Vec<String>>,
    pub count_keys: Option<Vec<String>>,
    pub check_streams: Option<Vec<String>>,
    pub check_single_streams: Option<Vec<String>>,
    pub check_keys_max: Option<u32>,
    pub check_keys_batch_size: Option<u32>,
}

impl MetricsOverrides {
    /// These keys over `base`; `at` names the table in errors.
    pub(crate) fn apply(
        &self,
        base: &MetricsOptions,
        at: &str,
    ) -> Result<MetricsOptions, ConfigError> {
        let config_command = match &self.config_command {
            None => base.config_command.clone(),
            Some(c) => {
                validate_command(c)
                    .map_err(|e| ConfigError(format!("{at}: config_command: {e}")))?;
                c.as_str().into()
            }
        };
        Ok(MetricsOptions {
            config_command,
            include_config_metrics: self
                .include_config_metrics
                .unwrap_or(base.include_config_metrics),
            redact_config_metrics: self
                .redact_config_metrics
                .unwrap_or(base.redact_config_metrics),
            export_client_list: self.export_client_list.unwrap_or(base.export_client_list),
            check_keys: specs(&self.check_keys, &base.check_keys, at, "check_keys")?,
            check_single_keys: specs(
                &self.check_single_keys,
                &base.check_single_keys,
                at,
                "check_single_keys",
            )?,
            count_keys: specs(&self.count_keys, &base.count_keys, at, "count_keys")?,
            check_streams: specs(
                &self.check_streams,
                &base.check_streams,
                at,
                "check_streams",
            )?,
            check_single_streams: specs(
                &self.check_single_streams,
                &base.check_single_streams,
                at,
                "check_single_streams",
            )?,
            check_keys_max: bounded(
                self.check_keys_max,
                base.check_keys_max,
                at,
                "check_keys_max",
            )?,
            check_keys_batch_size: bounded(
                self.check_keys_batch_size,
                base.check_keys_batch_size,
                at,
                "check_keys_batch_size",
            )?,
        })
    }
}

/// A key list as written, or the base's.
fn specs(
    own: &Option<Vec<String>>,
    base: &[KeySpec],
    at: &str,
    what: &str,
) -> Result<Vec<KeySpec>, ConfigError> {
    let Some(list) = own else {
        return Ok(base.to_vec());
    };
    if list.len() > MAX_KEY_SPECS {
        return Err(ConfigError(format!(
            "{at}: {what}: at most {MAX_KEY_SPECS} entries"
        )));
    }
    list.iter()
        .map(|s| KeySpec::parse(s).map_err(|e| ConfigError(format!("{at}: {what}: {e}"))))
        .collect()
}

fn bounded(own: Option<u32>, base: u32, at: &str, what: &str) -> Result<u32, ConfigError> {
    match own {
        None => Ok(base),
        Some(n) if (1..=MAX_CHECK_KEYS).contains(&n) => Ok(n),
        Some(_) => Err(ConfigError(format!(
            "{at}: {what} must be 1 to {MAX_CHECK_KEYS}"
        ))),
    }
}

/// A command name as a server can have it renamed: printable ASCII
/// without spaces, 1 to [`MAX_COMMAND_NAME`] bytes.
fn validate_command(c: &str) -> Result<(), String> {
    if c.is_empty() || c.len() > MAX_COMMAND_NAME {
        return Err(format!("must be 1 to {MAX_COMMAND_NAME} characters"));
    }
    if !c.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_merge_key_by_key_over_the_base() {
        let base = MetricsOverrides {
            include_config_metrics: Some(true),
            ..Default::default()
        }
        .apply(&MetricsOptions::default(), "[metrics]")
        .unwrap();
        let own = MetricsOverrides {
            config_command: Some("MYCONFIG".into()),
            ..Default::default()
        }
        .apply(&base, "[instance.metrics]")
        .unwrap();
        assert_eq!(&*own.config_command, "MYCONFIG");
        assert!(own.include_config_metrics, "kept from the base");
        assert!(own.redact_config_metrics, "the default");
        assert!(!own.export_client_list);
    }

    #[test]
    fn key_lists_take_the_exporters_forms() {
        let o = MetricsOverrides {
            check_keys: Some(vec!["db3=user:*".into(), "plain".into(), " 2 = k ".into()]),
            check_keys_max: Some(10),
            ..Default::default()
        }
        .apply(&MetricsOptions::default(), "[metrics]")
        .unwrap();
        let got: Vec<(u32, &str, bool)> = o
            .check_keys
            .iter()
            .map(|k| (k.db, &*k.key, k.is_pattern()))
            .collect();
        assert_eq!(
            got,
            [(3, "user:*", true), (0, "plain", false), (2, "k", false)]
        );
        assert!(o.has_checks() && !MetricsOptions::default().has_checks());
        assert_eq!((o.check_keys_max, o.check_keys_batch_size), (10, 1000));
        for (bad, want) in [
            ("dbx=k", "the database must be dbN or N"),
            ("db1=", "the key must be 1 to 256 bytes"),
            ("-1=k", "the database must be dbN or N"),
        ] {
            let e = MetricsOverrides {
                count_keys: Some(vec![bad.into()]),
                ..Default::default()
            }
            .apply(&MetricsOptions::default(), "[metrics]")
            .unwrap_err();
            assert!(
                e.0.starts_with("[metrics]: count_keys: ") && e.0.ends_with(want),
                "{e}"
            );
        }
        let e = MetricsOverrides {
            check_keys_batch_size: Some(0),
            ..Default::default()
        }
        .apply(&MetricsOptions::default(), "[metrics]")
        .unwrap_err();
        assert_eq!(e.0, "[metrics]: check_keys_batch_size must be 1 to 10000");
    }

    #[test]
    fn a_bad_command_name_is_refused_with_where() {
        for bad in ["", "MY CONFIG", "CONF\nIG", &"C".repeat(65)] {
            let e = MetricsOverrides {
                config_command: Some(bad.into()),
                ..Default::default()
            }
            .apply(&MetricsOptions::default(), "[metrics]")
            .unwrap_err();
            assert!(
                e.0.starts_with("[metrics]: config_command: "),
                "{bad:?}: {e}"
            );
        }
    }
}
