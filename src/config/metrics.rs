//! `[metrics]`: what a metrics poll asks beyond INFO, globally and per
//! instance, group or cluster (`[instance.metrics]`, ...), merged key by
//! key over the global table as thresholds are. Unknown keys are refused.

use super::ConfigError;
use serde::Deserialize;

/// Longest name accepted for a renamed CONFIG command.
const MAX_COMMAND_NAME: usize = 64;

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
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            config_command: "CONFIG".into(),
            include_config_metrics: false,
            redact_config_metrics: true,
            export_client_list: false,
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
        })
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
