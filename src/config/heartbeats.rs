//! `[[heartbeat]]`s: workers that ping redpulse, each expected every
//! `interval` with `grace` to spare.

use super::file::FileConfig;
use super::{err, parse_duration, validate_name, ConfigError};
use std::time::Duration;

/// An expected periodic ping from a worker.
#[derive(Clone, Debug, PartialEq)]
pub struct Heartbeat {
    pub name: String,
    pub interval: Duration,
    pub grace: Duration,
}

/// Every `[[heartbeat]]`, checked.
pub(super) fn heartbeats(
    file: &FileConfig,
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
        heartbeats.push(Heartbeat {
            name: hb.name.clone(),
            interval,
            grace,
        });
    }

    Ok(heartbeats)
}
