//! `[[heartbeat]]`s: workers that ping redpulse, each expected every
//! `interval` with `grace` to spare, and the token a ping must carry when
//! `token_file` or `token_env` gives one.

use super::file::FileConfig;
use super::secret::PasswordSource;
use super::{err, parse_duration, validate_name, ConfigError, Secret};
use std::time::Duration;

/// An expected periodic ping from a worker.
#[derive(Clone, Debug, PartialEq)]
pub struct Heartbeat {
    /// Its name, in `/heartbeat/{name}`.
    pub name: String,
    /// The expected time between pings.
    pub interval: Duration,
    /// Allowance past the interval before it is missed.
    pub grace: Duration,
    /// The token a ping must carry (`Authorization: Bearer` or `?token=`).
    pub token: Option<Secret>,
}

/// Every `[[heartbeat]]`, checked.
pub(super) fn heartbeats(
    file: &FileConfig,
    base_dir: &std::path::Path,
    at: &dyn Fn(&str) -> String,
) -> Result<Vec<Heartbeat>, ConfigError> {
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
        let token = PasswordSource {
            file: hb.token_file.as_ref().map(|p| base_dir.join(p)),
            env: hb.token_env.clone(),
        }
        .read_as("token")
        .map_err(|e| ConfigError(format!("{where_}: {e}")))?;
        heartbeats.push(Heartbeat {
            name: hb.name.clone(),
            interval,
            grace,
            token,
        });
    }

    Ok(heartbeats)
}
