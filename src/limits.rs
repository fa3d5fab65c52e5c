//! Open-file limits. A watched instance costs one descriptor, a simulated
//! one two (listener and accepted socket), so a large fleet needs more than
//! the usual soft limit of 1024. Raise the soft limit to what is needed
//! (up to the hard limit, or past it when privileged) or say exactly how
//! many descriptors are missing.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Descriptors beyond the fleet's own when serving HTTP: the listener,
/// clients (capped at 4096 by the HTTP server, but a few hundred is the
/// usual), logs and the runtime's own.
pub const SPARE_DESCRIPTORS: u64 = 1024;
/// Descriptors beyond the fleet's own for `simulate`, which serves no HTTP.
pub const SIM_SPARE_DESCRIPTORS: u64 = 32;

/// Make at least `needed` descriptors available. Returns the new soft
/// limit, or a one-line explanation when the process may not have them.
pub fn ensure_open_files(needed: u64) -> Result<u64, String> {
    let current = getrlimit(Resource::Nofile);
    let soft = current.current.unwrap_or(u64::MAX);
    let hard = current.maximum.unwrap_or(u64::MAX);
    // Always take the whole hard limit: it costs nothing until used.
    let target_soft = hard.max(soft);
    if target_soft >= needed {
        if target_soft > soft {
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(target_soft),
                    maximum: current.maximum,
                },
            )
            .map_err(|e| format!("cannot raise the open-files limit to {target_soft}: {e}"))?;
        }
        return Ok(target_soft);
    }
    // Past the hard limit: only a privileged process may raise it.
    match setrlimit(Resource::Nofile, Rlimit { current: Some(needed), maximum: Some(needed) }) {
        Ok(()) => Ok(needed),
        Err(_) => Err(format!(
            "this fleet needs {needed} open files but the hard limit is {hard}; raise it (ulimit -Hn {needed}, \
LimitNOFILE= in systemd) or run with fewer instances"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_limit_reaches_the_hard_limit() {
        let before = getrlimit(Resource::Nofile);
        let got = ensure_open_files(16).unwrap();
        let after = getrlimit(Resource::Nofile);
        assert_eq!(after.current, before.maximum.or(Some(got)));
        assert_eq!(after.maximum, before.maximum);
    }
}
