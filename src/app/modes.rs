//! The subcommands besides a plain run: `demo` (a simulated fleet watched
//! by a full redpulse), `simulate` (only the fleet, for load tests) and
//! `check-config`. Each is split into a part that checks its arguments
//! (an error is a one-line usage error, exit 2) and a part that runs on
//! the runtime `main` built.

use super::{serve, POLLER_STOP_TIMEOUT};
use crate::config::{self, Config, ConfigError, Overrides};
use crate::shutdown::ShutdownSignal;
use crate::sim::{self, Profile, SimConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio::sync::mpsc;

/// `check-config`: the one-line summary of a valid config file.
pub fn check_config(path: &Path) -> Result<String, ConfigError> {
    let c = config::load(&Overrides {
        config: Some(path.to_path_buf()),
        ..Overrides::default()
    })?;
    let shard = c
        .shard
        .as_ref()
        .map(|m| format!(" (shard {}/{}'s share)", m.me, m.count))
        .unwrap_or_default();
    Ok(format!(
        "{}: ok: {} instance(s){shard}, {} heartbeat(s), {} cluster(s), listen {}, interval {:?}, timeout {:?}",
        path.display(),
        c.targets.len(),
        c.heartbeats.len(),
        c.clusters.len(),
        c.listen,
        c.interval,
        c.timeout
    ) + &web_summary(c.web_config_file.as_deref())?)
}

/// `; web config F: TLS on, N user(s)` when the config names a web config,
/// which must load.
fn web_summary(path: Option<&Path>) -> Result<String, ConfigError> {
    let Some(path) = path else {
        return Ok(String::new());
    };
    let w = crate::config::web::load(path).map_err(ConfigError)?;
    Ok(format!(
        "; web config {}: TLS {}, {} user(s){}",
        path.display(),
        if w.tls.is_some() { "on" } else { "off" },
        w.users.len(),
        w.warnings
            .iter()
            .map(|x| format!("; warning: {x}"))
            .collect::<String>()
    ))
}

/// A demo, checked and configured: its fleet, and the config that watches
/// it with a history in a directory of its own (removed at exit).
pub struct Demo {
    pub fleet: SimConfig,
    pub config: Config,
    pub data_dir: PathBuf,
}

impl Demo {
    /// `instances` simulated on 127.0.0.1 from `base_port`, watched every
    /// `interval`, answered on `listen`.
    pub fn new(
        instances: u32,
        base_port: u16,
        listen: &str,
        interval: &str,
    ) -> Result<Demo, String> {
        let fleet = SimConfig {
            ip: [127, 0, 0, 1].into(),
            base_port,
            instances,
        };
        fleet.validate()?;
        let targets = (0..instances)
            .map(|i| format!("sim-{i:05}=redis://{}", fleet.addr(i)))
            .collect();
        let data_dir = std::env::temp_dir().join(format!("redpulse-demo-{}", std::process::id()));
        let config = config::load(&Overrides {
            targets,
            listen: Some(listen.to_string()),
            interval: Some(interval.to_string()),
            data_dir: Some(data_dir.clone()),
            ..Overrides::default()
        })
        .map_err(|e| e.to_string())?;
        Ok(Demo {
            fleet,
            config,
            data_dir,
        })
    }

    /// What the demo prints once it answers: where the fleet is, and a
    /// request to try for each kind of simulated instance.
    pub fn banner(&self) -> String {
        let (cfg, instances) = (self.fleet, self.fleet.instances);
        let base = format!("http://{}", self.config.listen);
        // The status page first: it is what a new user wants to open.
        let mut banner = format!(
            "redpulse demo: open {base}/ in a browser for the status page\n\n\
             {instances} simulated instances on 127.0.0.1:{}..{}, polled every {:?}. Or try:\n",
            cfg.base_port,
            cfg.addr(instances - 1).port(),
            self.config.interval
        );
        let mut examples = vec![(0, "healthy master")];
        for (profile, what) in [
            (Profile::Replica, "healthy replica"),
            (Profile::MemoryPressure, "critical: memory_pressure"),
            (Profile::LowHitRate, "degraded: low_hit_rate"),
            (Profile::ReplicaDown, "degraded: replica_disconnected"),
            (
                Profile::Redis62,
                "Redis 6.2 (pipelined single-section INFOs)",
            ),
        ] {
            if let Some(i) = (0..instances).find(|&i| Profile::of(i) == profile) {
                examples.push((i, what));
            }
        }
        for (i, what) in examples {
            banner.push_str(&format!(
                "  curl -i {base}/health/redis/sim-{i:05}   # {what}\n"
            ));
        }
        banner.push_str(&format!("  curl {base}/metrics\n\nCtrl-C stops.\n"));
        banner
    }

    /// Serve the fleet and watch it until the shutdown fires.
    pub async fn run(self, hup: mpsc::Receiver<()>, shutdown: ShutdownSignal) -> ExitCode {
        let fleet = match start_sim(self.fleet, shutdown.clone(), None).await {
            Ok(started) => started,
            Err(code) => return code,
        };
        let banner = self.banner();
        let code = serve(self.config, None, Some(banner), None, hup, shutdown).await;
        let _ = tokio::time::timeout(POLLER_STOP_TIMEOUT, fleet).await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
        code
    }
}

/// `simulate`, checked: the fleet's addresses from `listen` (its first
/// instance), and with `tls` (Some(dir), None for a temp dir) a CA and a
/// server certificate made now.
pub fn simulation(
    instances: u32,
    listen: &str,
    tls: Option<Option<PathBuf>>,
) -> Result<(SimConfig, Option<sim::SimTls>), String> {
    let addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|_| format!("--listen {listen:?} is not an address like 127.0.0.1:20000"))?;
    let cfg = SimConfig {
        ip: addr.ip(),
        base_port: addr.port(),
        instances,
    };
    cfg.validate()?;
    let tls = match tls {
        None => None,
        Some(dir) => {
            let dir = dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("redpulse-simulate-{}", std::process::id()))
            });
            Some(sim::SimTls::generate(&dir)?)
        }
    };
    Ok((cfg, tls))
}

/// Run a simulated fleet until the shutdown fires.
pub async fn simulate(
    cfg: SimConfig,
    tls: Option<sim::SimTls>,
    mut shutdown: ShutdownSignal,
) -> ExitCode {
    let ca = tls.as_ref().map(|t| t.ca_path.clone());
    let fleet = match start_sim(cfg, shutdown.clone(), tls).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    println!(
        "simulating {} instances on {}..{}{}; Ctrl-C stops",
        cfg.instances,
        cfg.addr(0),
        cfg.addr(cfg.instances - 1).port(),
        ca.map(|p| format!(" over TLS (CA: {})", p.display()))
            .unwrap_or_default()
    );
    shutdown.wait().await;
    let _ = tokio::time::timeout(POLLER_STOP_TIMEOUT, fleet).await;
    ExitCode::SUCCESS
}

/// Bind and serve the simulated fleet until `shutdown` fires. A port that
/// cannot be bound is exit code 1.
async fn start_sim(
    cfg: SimConfig,
    shutdown: ShutdownSignal,
    tls: Option<sim::SimTls>,
) -> Result<tokio::task::JoinHandle<()>, ExitCode> {
    let listeners = sim::bind(cfg).await.map_err(|e| {
        eprintln!("redpulse: cannot start the simulated fleet: {e}");
        ExitCode::from(1)
    })?;
    Ok(tokio::spawn(sim::serve_with(listeners, shutdown, tls)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_banner_names_each_kind_of_instance_and_bad_input_is_refused() {
        let demo = Demo::new(200, 21_000, "127.0.0.1:19379", "1s").unwrap();
        let banner = demo.banner();
        assert!(
            banner.starts_with("redpulse demo: open http://127.0.0.1:19379/ in a browser"),
            "{banner}"
        );
        assert!(banner.contains("200 simulated instances on 127.0.0.1:21000..21199"));
        assert!(banner.contains("curl -i http://127.0.0.1:19379/health/redis/sim-00000"));
        for what in ["healthy replica", "memory_pressure", "low_hit_rate"] {
            assert!(banner.contains(what), "{what}: {banner}");
        }
        assert!(Demo::new(0, 21_000, "127.0.0.1:19379", "1s").is_err());
        assert!(Demo::new(10, 21_000, "127.0.0.1:19379", "soon").is_err());
        assert!(simulation(10, "localhost", None).is_err());
        let (cfg, tls) = simulation(10, "127.0.0.1:20000", None).unwrap();
        assert_eq!(
            (cfg.base_port, cfg.instances, tls.is_none()),
            (20_000, 10, true)
        );
    }
}
