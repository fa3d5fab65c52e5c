//! The running service, wired: the history's lock and writer, the
//! listener, the store, the poller thread, notifications, peering and the
//! HTTP server; then the loop that applies reloads and discovered
//! topologies until the shutdown fires, and an orderly stop (the
//! history's last commit, pollers joined, HTTP drained).

pub mod cli;
pub mod modes;
pub mod running;
pub mod systemd;
pub mod topology;

use crate::config::web::{self, WebConfig};
use crate::config::{watch, Config, ConfigError, Overrides};
use crate::history;
use crate::http::auth::{Gate, Web};
use crate::http::{self, AppState};
use crate::poll::fleet::{Fleet, PollSettings};
use crate::shutdown::ShutdownSignal;
use crate::state::heartbeat::Heartbeats;
use crate::state::record::Recorder;
use crate::state::store::Store;
use running::Running;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

/// How long pollers get to stop after the shutdown signal; they only have
/// to notice it, so this is generous.
pub const POLLER_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Poll every target and serve HTTP (applying `web`, the web config read
/// at start) until `shutdown` fires (which stops
/// the pollers, the server and anything else the caller gave a signal
/// to), then drain. `banner` is printed once the listener is up. With
/// `reload`, a message on `hup` (SIGHUP) or a change of a watched file
/// re-reads the config and targets file from those settings and applies
/// the difference.
pub async fn serve(
    config: Config,
    web: Option<WebConfig>,
    banner: Option<String>,
    reload: Option<Overrides>,
    mut hup: mpsc::Receiver<()>,
    shutdown: ShutdownSignal,
) -> ExitCode {
    // The web config's TLS, checked before anything starts.
    let gate = match web.as_ref().map(Web::new).transpose() {
        Ok(w) => Arc::new(Gate::new(w.unwrap_or_default())),
        Err(e) => {
            eprintln!("redpulse: {e}");
            return ExitCode::from(2);
        }
    };
    gate.set_tokens(config.heartbeat_tokens.clone());
    warn_open_heartbeats(&config, &gate);
    // One redpulse per data_dir; one that cannot be written means history
    // in memory, not a refusal to start.
    let _data_lock = match history::lock::lock(&config.data_dir) {
        Ok(l) => Some(l),
        Err(history::lock::LockError::InUse(e)) => {
            eprintln!("redpulse: {e}");
            return ExitCode::from(2);
        }
        Err(history::lock::LockError::Unavailable(e)) => {
            warn!(error = %e, "cannot lock data_dir");
            None
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            error!(listen = %config.listen, error = %e, "cannot listen");
            eprintln!("redpulse: cannot listen on {}: {e}", config.listen);
            return ExitCode::from(1);
        }
    };
    let store = Arc::new(Store::new(config.stale_after()));
    let heartbeats = Arc::new(Heartbeats::new(&config.heartbeats));
    let settings = PollSettings::of(&config);
    let fleet = match Fleet::start(store.clone(), settings, shutdown.clone()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("redpulse: cannot start the poller thread: {e}");
            return ExitCode::from(1);
        }
    };
    let (recorder, samples) = Recorder::new();
    let _ = store.recorder.set(recorder);
    let notifier = (!config.notify.is_empty())
        .then(|| Arc::new(history::notify::Notifier::new(config.notify.clone())));
    // Without the lock the database still gets a try: a read-only or full
    // data_dir then fails to open, and the writer says so loudly.
    let history = history::writer::start(
        Some(&config.data_dir),
        config.history_retention,
        store.clone(),
        samples,
        notifier.clone(),
    );
    if let Some(n) = &notifier {
        n.start(history.clone());
    }
    tokio::spawn(topology::record_topology(
        store.clone(),
        heartbeats.clone(),
        shutdown.clone(),
    ));
    let peering = Arc::new(http::peers::PeeringCell::new(http::peers::Peering::new(
        config.shard.as_ref(),
        config.consensus.as_ref(),
        config.interval,
    )));
    if let Some(w) = &web {
        for warning in &w.warnings {
            warn!(file = %w.path.display(), "web config: {warning}");
        }
    }
    let state = Arc::new(AppState {
        store: store.clone(),
        heartbeats: heartbeats.clone(),
        history: Some(history.clone()),
        peering: peering.clone(),
        gate: gate.clone(),
    });
    let server = tokio::spawn(http::serve(
        listener,
        state.clone(),
        config.max_http_connections,
        shutdown.clone(),
    ));
    let (mut running, mut discovered_rx) =
        Running::start(fleet, store, heartbeats, peering, &config, shutdown.clone());
    info!(
        listen = %config.listen,
        shard = config.shard.as_ref().map(|m| format!("{}/{}", m.me, m.count)),
        region = config.consensus.as_ref().map(|c| c.region.clone()),
        instances = config.targets.len(),
        heartbeats = config.heartbeats.len(),
        interval_ms = config.interval.as_millis() as u64,
        timeout_ms = config.timeout.as_millis() as u64,
        "redpulse started"
    );
    running::warn_insecure(&config);
    // The running set holds the targets from here on (and every reload
    // brings its own): a second copy per instance is not kept.
    let mut config = config;
    config.targets = Vec::new();
    // Under a Type=notify unit: READY=1 once the first verdicts are in.
    let systemd = systemd::Systemd::from_env();
    if let Some(sd) = &systemd {
        tokio::spawn(sd.clone().run(state.store.clone(), shutdown.clone()));
    }
    if let Some(b) = banner {
        println!("{b}");
    }

    // At most one reload loads at a time, on its own thread: reading a
    // config can block (a password_file that is a FIFO, a hung network
    // mount), and neither the runtime's workers nor a stop may wait on it.
    let mut loading: Option<oneshot::Receiver<Loaded>> = None;
    state.store.reload.record(true);
    // The config and targets files are watched only when SIGHUP could
    // reload them: a change then applies the same way.
    let watched = Arc::new(std::sync::Mutex::new(config.files.clone()));
    let (changed_tx, mut changed_rx) = tokio::sync::mpsc::channel(1);
    if reload.is_some() && !config.files.is_empty() {
        watch::start(watched.clone(), config.watch_interval, changed_tx);
    }
    // A file changed while a reload was loading: load once more after it.
    let mut again = false;
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            Some(()) = hup.recv() => match (&reload, &loading) {
                (None, _) => info!("SIGHUP ignored: nothing to reload"),
                (Some(_), Some(_)) => warn!("SIGHUP ignored: the previous reload is still loading"),
                (Some(o), None) => {
                    systemd.iter().for_each(|sd| sd.reloading());
                    loading = Some(load_in_background(o.clone()));
                }
            },
            Some(()) = changed_rx.recv() => match (&reload, &loading) {
                (Some(_), Some(_)) => again = true,
                (Some(o), None) => {
                    info!("a watched config or targets file changed; reloading");
                    systemd.iter().for_each(|sd| sd.reloading());
                    loading = Some(load_in_background(o.clone()));
                }
                (None, _) => {}
            },
            (loaded, web) = reload_result(&mut loading) => {
                loading = None;
                if let Ok(c) = &loaded {
                    *watched.lock().expect("watch list lock is never held across a panic") =
                        c.files.clone();
                }
                apply_web(&gate, loaded.is_ok(), web);
                if let Ok(c) = &loaded {
                    gate.set_tokens(c.heartbeat_tokens.clone());
                    warn_open_heartbeats(c, &gate);
                }
                running.apply_reload(loaded);
                if std::mem::take(&mut again) {
                    if let Some(o) = &reload {
                        loading = Some(load_in_background(o.clone()));
                    }
                }
                if loading.is_none() {
                    systemd.iter().for_each(|sd| sd.reloaded());
                }
            }
            Some(found) = discovered_rx.recv() => running.apply_discovery(found),
        }
    }
    info!("shutting down: stopping pollers, draining HTTP");
    systemd.iter().for_each(|sd| sd.stopping());
    // The history's last commit: pending transitions and the partial minute.
    let _ = tokio::task::spawn_blocking(move || history.shutdown()).await;
    let fleet = running.stop();
    let stopped = tokio::task::spawn_blocking(move || fleet.join());
    if tokio::time::timeout(POLLER_STOP_TIMEOUT, stopped)
        .await
        .is_err()
    {
        warn!("some pollers did not stop in time");
    }
    if let Err(e) = server.await {
        error!(error = %e, "HTTP server task failed");
        return ExitCode::from(1);
    }
    info!("stopped");
    ExitCode::SUCCESS
}

/// Load the config on a thread of its own and hand the result back.
/// A reload's result: the config, and its web config when it names one
/// (each may fail on its own).
type Loaded = (
    Result<Config, ConfigError>,
    Option<Result<WebConfig, String>>,
);

fn load_in_background(o: Overrides) -> oneshot::Receiver<Loaded> {
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("redpulse-reload".into())
        .spawn(move || {
            let config = crate::config::load(&o);
            let web = config
                .as_ref()
                .ok()
                .and_then(|c| c.web_config_file.as_deref().map(web::load));
            let _ = tx.send((config, web));
        });
    if let Err(e) = spawned {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send((
            Err(ConfigError(format!("cannot start the reload thread: {e}"))),
            None,
        ));
        return rx;
    }
    rx
}

/// The pending reload's result; never returns while none is pending.
async fn reload_result(loading: &mut Option<oneshot::Receiver<Loaded>>) -> Loaded {
    match loading {
        Some(rx) => rx.await.unwrap_or_else(|_| {
            (
                Err(ConfigError(
                    "the reload thread ended without a result".into(),
                )),
                None,
            )
        }),
        None => std::future::pending().await,
    }
}

/// Say which heartbeats anyone who reaches a non-loopback listener can
/// ping: no token, and no basic auth either.
fn warn_open_heartbeats(config: &Config, gate: &Gate) {
    if config.listen.ip().is_loopback() || gate.web().auth_on() {
        return;
    }
    for h in config.heartbeats.iter().filter(|h| h.token.is_none()) {
        warn!(
            heartbeat = %h.name,
            listen = %config.listen,
            "this heartbeat takes pings from anyone who reaches the port: give it a token_file or turn on basic auth"
        );
    }
}

/// Apply a reload's web config: a new one for new requests, a broken one
/// keeps the running one (and says so), none means no web config.
fn apply_web(gate: &Gate, config_ok: bool, web: Option<Result<WebConfig, String>>) {
    match (config_ok, web) {
        (false, _) => {}
        (true, Some(Ok(w))) => {
            for warning in &w.warnings {
                warn!(file = %w.path.display(), "web config: {warning}");
            }
            gate.reload(Ok(&w));
        }
        (true, Some(Err(e))) => gate.reload(Err(&e)),
        (true, None) => gate.clear(),
    }
}
