//! The redpulse binary: command line, config, logging, signals, exit codes.
//!
//! Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT stop polling and
//! drain HTTP), 2 for a bad config or arguments, 1 for a runtime failure
//! such as the listen address being taken.

use clap::{Parser, Subcommand};
use redpulse::config::{self, watch, Config, LogFormat, Overrides};
use redpulse::history;
use redpulse::http::{self, AppState};
use redpulse::limits;
use redpulse::poll::discovery::{self, Discovery};
use redpulse::poll::fleet::{log_first_verdicts, Fleet, PollSettings};
use redpulse::shutdown::{Shutdown, ShutdownSignal};
use redpulse::sim::{self, Profile, SimConfig};
use redpulse::state::heartbeat::Heartbeats;
use redpulse::state::record::{Kind, Recorder, Sample};
use redpulse::state::store::Store;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

/// How long pollers get to stop after the shutdown signal; they only have
/// to notice it, so this is generous.
const POLLER_STOP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the runtime waits for its own blocking work once the answer is
/// decided: a stuck file read must not hold up the exit.
const RUNTIME_STOP_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Parser, Debug)]
#[command(
    name = "redpulse",
    version,
    about = "Watch a fleet of Redis and Valkey servers and answer per-instance health over HTTP",
    long_about = "Watch a fleet of Redis and Valkey servers over one long-lived connection each \
(one pipelined INFO round trip per poll) and answer, per instance, GET /health/redis/NAME \
with 200 when healthy or 503 with the reason.\n\n\
With no --config and no --target it watches redis://127.0.0.1:6379.",
    after_help = "Examples:\n  \
redpulse --target local=redis://127.0.0.1:6379\n  \
redpulse --target cache=redis://:PASSWORD@10.0.0.5:6379 --interval 2s\n  \
redpulse --config /etc/redpulse/redpulse.toml\n\n\
Then: curl -i http://127.0.0.1:9379/health/redis/local"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// TOML config file (listen, interval, timeout, [[instance]], [thresholds]...).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// An instance to watch, as [NAME=]redis://[[user]:password@]host[:port][/db]. Repeatable; adds to the config's instances.
    #[arg(long = "target", value_name = "[NAME=]URL")]
    targets: Vec<String>,
    /// A file with one [NAME=]URL per line (# comments and blank lines allowed).
    #[arg(long, value_name = "FILE")]
    targets_file: Option<PathBuf>,
    /// HTTP listen address [default: 127.0.0.1:9379].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Time between polls of each instance, e.g. 250ms, 1s, 2m [default: 1s].
    #[arg(long, value_name = "DUR")]
    interval: Option<String>,
    /// Deadline for a whole poll: connect + write + read [default: 1s].
    #[arg(long, value_name = "DUR")]
    timeout: Option<String>,
    /// Open HTTP connections at most; more are closed on accept [default: 4096].
    #[arg(long, value_name = "N")]
    max_http_connections: Option<usize>,
    /// Where the history database lives (one redpulse per directory) [default: ./redpulse-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// This process is shard I (0-based) of N: it polls only the instances it owns and forwards
    /// requests for the others to their owner in `peers`. I may be `ordinal`: the number after
    /// the host name's last `-` (a StatefulSet's redpulse-2 is shard 2).
    #[arg(long, value_name = "I/N", env = "REDPULSE_SHARD")]
    shard: Option<String>,
    /// Log format on stderr [default: text].
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
    /// CA bundle (PEM) that rediss:// servers' certificates must chain to [default: the system's CA bundle].
    #[arg(long, value_name = "FILE")]
    tls_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for servers that require one (mutual TLS); needs --tls-key-file.
    #[arg(long, value_name = "FILE")]
    tls_cert_file: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert-file.
    #[arg(long, value_name = "FILE")]
    tls_key_file: Option<PathBuf>,
    /// Name the server certificate must carry, also sent as SNI [default: the target's host].
    #[arg(long, value_name = "NAME")]
    tls_server_name: Option<String>,
    /// Accept any server certificate for any name: no verification at all (warned at start).
    #[arg(long)]
    tls_insecure_skip_verify: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a simulated fleet and watch it: the quickest way to see redpulse work.
    Demo {
        /// Simulated instances (ports BASE_PORT..BASE_PORT+N-1; a few are unhealthy on purpose).
        #[arg(long, default_value_t = 200)]
        instances: u32,
        /// First port of the simulated fleet (keep it below the ephemeral range, 32768).
        #[arg(long, default_value_t = 20_000)]
        base_port: u16,
        /// HTTP listen address.
        #[arg(long, default_value = config::DEFAULT_LISTEN)]
        listen: String,
        /// Time between polls of each instance.
        #[arg(long, default_value = "1s")]
        interval: String,
    },
    /// Run only the simulated fleet (for load tests): instance i listens on ADDR's port + i.
    Simulate {
        /// Simulated instances.
        #[arg(long)]
        instances: u32,
        /// Address of the first instance, e.g. 127.0.0.1:20000.
        #[arg(long, value_name = "ADDR")]
        listen: String,
        /// Speak TLS: a CA and a server certificate (for localhost, 127.0.0.1, ::1) are made at
        /// start, and the CA's path is printed for redpulse's --tls-ca-file.
        #[arg(long)]
        tls: bool,
        /// Where --tls writes ca.crt [default: a new folder under the system temp dir].
        #[arg(long, value_name = "DIR", requires = "tls")]
        tls_dir: Option<PathBuf>,
    },
    /// Validate a config file and print a summary; exit 0 if valid, 2 if not.
    CheckConfig {
        /// The TOML config file to check.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { config }) => check_config(config),
        Some(Command::Demo {
            instances,
            base_port,
            listen,
            interval,
        }) => demo(instances, base_port, &listen, &interval),
        Some(Command::Simulate {
            instances,
            listen,
            tls,
            tls_dir,
        }) => simulate(instances, &listen, tls.then_some(tls_dir)),
        None => run(cli.run),
    }
}

/// Exit 2 with one line.
fn bad_usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("redpulse: {msg}");
    ExitCode::from(2)
}

/// What every mode does before it runs: make `open_files` descriptors
/// available (exit 2 saying how many are missing), start logging, and
/// build the runtime (exit 1 if that fails).
fn prepare(open_files: u64, log_format: LogFormat) -> Result<tokio::runtime::Runtime, ExitCode> {
    limits::ensure_open_files(open_files).map_err(bad_usage)?;
    init_tracing(log_format);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("redpulse: cannot start the runtime: {e}");
            ExitCode::from(1)
        })
}

/// Run `main` on the runtime to completion, then stop the runtime without
/// waiting long for blocking work left behind.
fn run_to_exit(
    rt: tokio::runtime::Runtime,
    main: impl std::future::Future<Output = ExitCode>,
) -> ExitCode {
    let code = rt.block_on(main);
    rt.shutdown_timeout(RUNTIME_STOP_TIMEOUT);
    code
}

/// SIGTERM, SIGINT and SIGHUP, each installed once for the process's life.
struct Signals {
    stop: StopSignals,
    hup: Signal,
}

/// The signals that end the process.
struct StopSignals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Install the handlers (inside the runtime).
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            stop: StopSignals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            },
            hup: signal(SignalKind::hangup())?,
        })
    }
}

impl StopSignals {
    /// Return at the next SIGTERM or SIGINT.
    async fn requested(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Install the signal handlers or say why not (exit 1).
fn install_signals() -> Result<Signals, ExitCode> {
    Signals::install().map_err(|e| {
        eprintln!("redpulse: cannot install signal handlers: {e}");
        ExitCode::from(1)
    })
}

/// `tls`: None for plaintext, Some(dir) for TLS (None dir: a temp one).
fn simulate(instances: u32, listen: &str, tls: Option<Option<PathBuf>>) -> ExitCode {
    let addr: std::net::SocketAddr = match listen.parse() {
        Ok(a) => a,
        Err(_) => {
            return bad_usage(format!(
                "--listen {listen:?} is not an address like 127.0.0.1:20000"
            ))
        }
    };
    let cfg = SimConfig {
        ip: addr.ip(),
        base_port: addr.port(),
        instances,
    };
    if let Err(e) = cfg.validate() {
        return bad_usage(e);
    }
    let tls = match tls {
        None => None,
        Some(dir) => {
            let dir = dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("redpulse-simulate-{}", std::process::id()))
            });
            match sim::SimTls::generate(&dir) {
                Ok(t) => Some(t),
                Err(e) => return bad_usage(e),
            }
        }
    };
    let rt = match prepare(
        2 * instances as u64 + limits::SIM_SPARE_DESCRIPTORS,
        LogFormat::Text,
    ) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    run_to_exit(rt, async move {
        let mut signals = match install_signals() {
            Ok(s) => s,
            Err(code) => return code,
        };
        let shutdown = Shutdown::new();
        let ca = tls.as_ref().map(|t| t.ca_path.clone());
        let fleet = match start_sim(cfg, shutdown.signal(), tls).await {
            Ok(started) => started,
            Err(code) => return code,
        };
        println!(
            "simulating {instances} instances on {}..{}{}; Ctrl-C stops",
            cfg.addr(0),
            cfg.addr(instances - 1).port(),
            ca.map(|p| format!(" over TLS (CA: {})", p.display()))
                .unwrap_or_default()
        );
        signals.stop.requested().await;
        shutdown.trigger();
        let _ = tokio::time::timeout(POLLER_STOP_TIMEOUT, fleet).await;
        ExitCode::SUCCESS
    })
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

fn demo(instances: u32, base_port: u16, listen: &str, interval: &str) -> ExitCode {
    let cfg = SimConfig {
        ip: [127, 0, 0, 1].into(),
        base_port,
        instances,
    };
    if let Err(e) = cfg.validate() {
        return bad_usage(e);
    }
    let targets: Vec<String> = (0..instances)
        .map(|i| format!("sim-{i:05}=redis://{}", cfg.addr(i)))
        .collect();
    // The demo's history lives in a directory of its own, removed at exit.
    let data_dir = std::env::temp_dir().join(format!("redpulse-demo-{}", std::process::id()));
    let o = Overrides {
        targets,
        listen: Some(listen.to_string()),
        interval: Some(interval.to_string()),
        data_dir: Some(data_dir.clone()),
        ..Overrides::default()
    };
    let config = match config::load(&o) {
        Ok(c) => c,
        Err(e) => return bad_usage(e),
    };
    // Listener + accepted socket per simulated instance, one client socket each.
    let rt = match prepare(
        3 * instances as u64 + limits::SPARE_DESCRIPTORS,
        LogFormat::Text,
    ) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    run_to_exit(rt, async move {
        let signals = match install_signals() {
            Ok(s) => s,
            Err(code) => return code,
        };
        let shutdown = Shutdown::new();
        let fleet = match start_sim(cfg, shutdown.signal(), None).await {
            Ok(started) => started,
            Err(code) => return code,
        };
        let base = format!("http://{}", config.listen);
        let mut banner = format!(
            "redpulse demo: {instances} simulated instances on 127.0.0.1:{}..{}, polled every {:?}\n\nTry:\n",
            cfg.base_port,
            cfg.addr(instances - 1).port(),
            config.interval
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
        let code = serve(config, Some(banner), None, signals, &shutdown).await;
        let _ = tokio::time::timeout(POLLER_STOP_TIMEOUT, fleet).await;
        let _ = std::fs::remove_dir_all(&data_dir);
        code
    })
}

fn overrides(a: RunArgs) -> Overrides {
    Overrides {
        config: a.config,
        targets: a.targets,
        targets_file: a.targets_file,
        listen: a.listen,
        interval: a.interval,
        timeout: a.timeout,
        log_format: a.log_format.and_then(|f| f.parse().ok()),
        max_http_connections: a.max_http_connections,
        data_dir: a.data_dir,
        shard: a.shard,
        tls: config::TlsTable {
            ca_file: a.tls_ca_file,
            cert_file: a.tls_cert_file,
            key_file: a.tls_key_file,
            server_name: a.tls_server_name,
            insecure_skip_verify: a.tls_insecure_skip_verify.then_some(true),
        },
    }
}

fn check_config(path: PathBuf) -> ExitCode {
    let o = Overrides {
        config: Some(path.clone()),
        ..Overrides::default()
    };
    match config::load(&o) {
        Ok(c) => {
            let shard = c
                .shard
                .as_ref()
                .map(|m| format!(" (shard {}/{}'s share)", m.me, m.count))
                .unwrap_or_default();
            println!(
                "{}: ok: {} instance(s){shard}, {} heartbeat(s), {} cluster(s), listen {}, interval {:?}, timeout {:?}",
                path.display(),
                c.targets.len(),
                c.heartbeats.len(),
                c.clusters.len(),
                c.listen,
                c.interval,
                c.timeout
            );
            ExitCode::SUCCESS
        }
        Err(e) => bad_usage(e),
    }
}

fn run(args: RunArgs) -> ExitCode {
    let reload = overrides(args);
    let config = match config::load(&reload) {
        Ok(c) => c,
        Err(e) => return bad_usage(e),
    };
    match prepare(
        config.targets.len() as u64 + limits::SPARE_DESCRIPTORS,
        config.log_format,
    ) {
        Ok(rt) => run_to_exit(rt, async move {
            let signals = match install_signals() {
                Ok(s) => s,
                Err(code) => return code,
            };
            serve(config, None, Some(reload), signals, &Shutdown::new()).await
        }),
        Err(code) => code,
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Poll every target and serve HTTP until SIGTERM/SIGINT, then fire
/// `shutdown` (which stops the pollers, the server and anything else the
/// caller gave a signal to) and drain. `banner` is printed once the
/// listener is up. With `reload`, SIGHUP re-reads the config and targets
/// file from those settings and applies the difference.
async fn serve(
    config: Config,
    banner: Option<String>,
    reload: Option<Overrides>,
    mut signals: Signals,
    shutdown: &Shutdown,
) -> ExitCode {
    // One redpulse per data_dir; one that cannot be written means history
    // in memory, not a refusal to start.
    let _data_lock = match config.data_dir.as_deref().map(history::lock::lock) {
        Some(Ok(l)) => Some(l),
        Some(Err(history::lock::LockError::InUse(e))) => {
            eprintln!("redpulse: {e}");
            return ExitCode::from(2);
        }
        Some(Err(history::lock::LockError::Unavailable(e))) => {
            warn!(error = %e, "cannot lock data_dir");
            None
        }
        None => None,
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
    let fleet = match Fleet::start(store.clone(), settings, shutdown.signal()) {
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
        config.data_dir.as_deref(),
        config.history_retention,
        store.clone(),
        samples,
        notifier.clone(),
    );
    if let Some(n) = &notifier {
        n.start(history.clone());
    }
    tokio::spawn(record_topology(
        store.clone(),
        heartbeats.clone(),
        shutdown.signal(),
    ));
    let peering = Arc::new(http::peers::PeeringCell::new(http::peers::Peering::new(
        config.shard.as_ref(),
        config.consensus.as_ref(),
        config.interval,
    )));
    let state = Arc::new(AppState {
        store: store.clone(),
        heartbeats: heartbeats.clone(),
        history: Some(history.clone()),
        peering: peering.clone(),
    });
    let server = tokio::spawn(http::serve(
        listener,
        state,
        config.max_http_connections,
        shutdown.signal(),
    ));
    let (discovered_tx, mut discovered_rx) = tokio::sync::mpsc::channel(64);
    let mut running = Running {
        fleet,
        store,
        heartbeats,
        listen: config.listen,
        settings,
        configured: config.targets.clone(),
        discovered: std::collections::BTreeMap::new(),
        discovery: Vec::new(),
        discovered_tx,
        timeout: config.timeout,
        shutdown: shutdown.signal(),
        peering,
    };
    let started = running.fleet.apply(&config.targets, settings);
    tokio::spawn(log_first_verdicts(
        running.store.clone(),
        started.fresh,
        first_verdicts_within(&config),
    ));
    running.start_discovery(&config);
    set_groups(&running.store, &config);
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
    warn_insecure(&config);
    if let Some(b) = banner {
        println!("{b}");
    }

    // At most one reload loads at a time, on its own thread: reading a
    // config can block (a password_file that is a FIFO, a hung network
    // mount), and neither the runtime's workers nor a stop may wait on it.
    let mut loading: Option<oneshot::Receiver<Result<Config, config::ConfigError>>> = None;
    running.store.reload.record(true);
    // The config and targets files are watched only when SIGHUP could
    // reload them: a change then applies the same way.
    let watched = Arc::new(std::sync::Mutex::new(config.files.clone()));
    let (changed_tx, mut changed_rx) = tokio::sync::mpsc::channel(1);
    if reload.is_some() && !config.files.is_empty() {
        watch::start(watched.clone(), config.watch_interval, changed_tx);
    }
    // A file changed while a reload was loading: load once more after it.
    let mut again = false;
    loop {
        tokio::select! {
            _ = signals.stop.requested() => break,
            _ = signals.hup.recv() => match (&reload, &loading) {
                (None, _) => info!("SIGHUP ignored: nothing to reload"),
                (Some(_), Some(_)) => warn!("SIGHUP ignored: the previous reload is still loading"),
                (Some(o), None) => loading = Some(load_in_background(o.clone())),
            },
            Some(()) = changed_rx.recv() => match (&reload, &loading) {
                (Some(_), Some(_)) => again = true,
                (Some(o), None) => {
                    info!("a watched config or targets file changed; reloading");
                    loading = Some(load_in_background(o.clone()));
                }
                (None, _) => {}
            },
            loaded = reload_result(&mut loading) => {
                loading = None;
                if let Ok(c) = &loaded {
                    *watched.lock().expect("watch list lock is never held across a panic") =
                        c.files.clone();
                }
                running.apply_reload(loaded);
                if std::mem::take(&mut again) {
                    if let Some(o) = &reload {
                        loading = Some(load_in_background(o.clone()));
                    }
                }
            }
            Some(found) = discovered_rx.recv() => running.apply_discovery(found),
        }
    }
    info!("shutting down: stopping pollers, draining HTTP");
    shutdown.trigger();
    // The history's last commit: pending transitions and the partial minute.
    let _ = tokio::task::spawn_blocking(move || history.shutdown()).await;
    for task in &running.discovery {
        task.abort();
    }
    let fleet = running.fleet;
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

/// Once a second, hand the history every cluster's, group's and
/// heartbeat's status (they are judged from their members' verdicts, not
/// polled).
async fn record_topology(store: Arc<Store>, heartbeats: Arc<Heartbeats>, mut stop: ShutdownSignal) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait() => return,
        }
        let Some(recorder) = store.recorder.get() else {
            continue;
        };
        let now = std::time::Instant::now();
        let at = std::time::SystemTime::now();
        let sample = |kind, name: &str, status, reason, labels: &config::Labels| Sample {
            kind,
            name: name.into(),
            at,
            status,
            reason,
            error: None,
            latency_us: None,
            mem_ratio: None,
            labels: (!labels.is_empty()).then(|| Arc::new(labels.clone())),
        };
        for (name, view) in store.clusters() {
            let v = http::views::cluster_verdict(&store, &view, now);
            let reason = v.reasons.first().map(|r| r.as_str());
            recorder.record(sample(Kind::Cluster, &name, v.status, reason, &view.labels));
        }
        for (name, view) in store.groups() {
            let v = http::views::group_verdict(&store, &view, now);
            let reason = v.reasons.first().map(|r| r.as_str());
            recorder.record(sample(Kind::Group, &name, v.status, reason, &view.labels));
        }
        for name in heartbeats.names() {
            if let Some(b) = heartbeats.state(&name, now) {
                let (status, reason) = if b.alive {
                    (redpulse::judge::outcome::Status::Ok, None)
                } else {
                    (
                        redpulse::judge::outcome::Status::Down,
                        Some("heartbeat_missed"),
                    )
                };
                recorder.record(sample(
                    Kind::Heartbeat,
                    &name,
                    status,
                    reason,
                    &config::Labels::new(),
                ));
            }
        }
    }
}

/// The config's static groups into the store.
fn set_groups(store: &Store, config: &Config) {
    store.set_groups(
        None,
        config.groups.iter().map(|g| {
            (
                g.name.clone(),
                redpulse::state::store::GroupView {
                    members: g.members.clone(),
                    min_replicas: g.min_replicas,
                    sentinel: None,
                    source: None,
                    labels: g.labels.clone(),
                },
            )
        }),
    );
}

/// Say loudly which TLS targets are not verified at all.
fn warn_insecure(config: &Config) {
    let insecure: Vec<&str> = config
        .targets
        .iter()
        .filter(|t| {
            t.tls
                .as_ref()
                .is_some_and(|t| t.settings.insecure_skip_verify)
        })
        .map(|t| t.name.as_str())
        .collect();
    if !insecure.is_empty() {
        let shown = insecure
            .iter()
            .take(10)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        warn!(
            count = insecure.len(),
            instances = %shown,
            "insecure_skip_verify: these TLS servers' certificates are not verified at all"
        );
    }
}

/// How long an instance may take to its first verdict: a poll starts at a
/// random phase within the interval and takes up to the timeout.
fn first_verdicts_within(config: &Config) -> Duration {
    config.interval + config.timeout + Duration::from_millis(500)
}

/// What a reload or a topology change changes.
struct Running {
    fleet: Fleet,
    store: Arc<Store>,
    heartbeats: Arc<Heartbeats>,
    listen: std::net::SocketAddr,
    settings: PollSettings,
    /// The config's own instances.
    configured: Vec<redpulse::config::Target>,
    /// Each cluster's discovered nodes, by cluster name.
    discovered: std::collections::BTreeMap<String, Vec<redpulse::config::Target>>,
    /// One discovery task per cluster.
    discovery: Vec<tokio::task::JoinHandle<()>>,
    discovered_tx: tokio::sync::mpsc::Sender<Discovery>,
    /// Bounds each topology read.
    timeout: Duration,
    shutdown: ShutdownSignal,
    /// Other shards and regions, as the HTTP side sees them.
    peering: Arc<http::peers::PeeringCell>,
}

impl Running {
    /// Every target to poll: the configured ones and every discovered node.
    fn targets(&self) -> Vec<redpulse::config::Target> {
        let mut all = self.configured.clone();
        all.extend(self.discovered.values().flatten().cloned());
        all
    }

    /// Apply the target set to the fleet as a diff; log the new ones'
    /// first verdicts as one line.
    fn apply_targets(&mut self, within: Duration) -> redpulse::poll::fleet::Changes {
        let c = self.fleet.apply(&self.targets(), self.settings);
        tokio::spawn(log_first_verdicts(
            self.store.clone(),
            c.fresh.clone(),
            within,
        ));
        c
    }

    /// (Re)start one discovery task per cluster; forget the nodes of
    /// clusters no longer configured.
    fn start_discovery(&mut self, config: &Config) {
        let clusters = &config.clusters;
        for task in self.discovery.drain(..) {
            task.abort();
        }
        let store = self.store.clone();
        self.discovered.retain(|name, _| {
            let kept = clusters.iter().any(|c| &c.name == name)
                || config.sentinels.iter().any(|s| &s.name == name);
            if !kept {
                store.set_cluster(name, None);
                store.set_groups(Some(name), []);
            }
            kept
        });
        for spec in &config.sentinels {
            self.discovery.push(tokio::spawn(discovery::run_sentinel(
                spec.clone(),
                self.timeout,
                self.discovered_tx.clone(),
                self.shutdown.clone(),
            )));
        }
        for spec in clusters {
            // Until the first read: known, judged as nothing reachable yet.
            if !self.discovered.contains_key(&spec.name) {
                self.store.set_cluster(
                    &spec.name,
                    Some(redpulse::state::store::ClusterView {
                        shards: Vec::new(),
                        nodes: Vec::new(),
                        min_replicas: spec.seeds.first().map_or(1, |s| s.thresholds.min_replicas),
                        error: Some("the topology has not been read yet".into()),
                        labels: spec.labels.clone(),
                    }),
                );
            }
            self.discovery.push(tokio::spawn(discovery::run(
                spec.clone(),
                self.timeout,
                self.store.clone(),
                self.discovered_tx.clone(),
                self.shutdown.clone(),
            )));
        }
    }

    /// A cluster's topology was read: poll exactly its nodes.
    fn apply_discovery(&mut self, found: Discovery) {
        match found.groups {
            Some(groups) => self.store.set_groups(Some(&found.cluster), groups),
            None => self.store.set_cluster(
                &found.cluster,
                Some(redpulse::state::store::ClusterView {
                    shards: found.shards,
                    nodes: found.nodes.iter().map(|t| t.name.clone()).collect(),
                    min_replicas: found.min_replicas,
                    error: found.error,
                    labels: found.labels,
                }),
            ),
        }
        if self.discovered.get(&found.cluster) == Some(&found.nodes) {
            return;
        }
        let cluster = found.cluster.clone();
        self.discovered.insert(found.cluster, found.nodes);
        let within = self.settings.interval + self.settings.timeout + Duration::from_millis(500);
        let c = self.apply_targets(within);
        info!(
            cluster = %cluster,
            added = c.added,
            removed = c.removed,
            unchanged = c.unchanged,
            "cluster nodes applied"
        );
    }

    /// Apply a freshly loaded config as a diff, or keep the running one
    /// when it failed to load.
    fn apply_reload(&mut self, loaded: Result<Config, config::ConfigError>) {
        let new = match loaded {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "reload failed; keeping the running config");
                self.store.reload.record(false);
                return;
            }
        };
        self.store.reload.record(true);
        if new.listen != self.listen {
            warn!(listen = %new.listen, "the listen address changes only on restart");
        }
        self.settings = PollSettings::of(&new);
        self.timeout = new.timeout;
        self.store.set_stale_after(new.stale_after());
        warn_insecure(&new);
        self.configured = new.targets.clone();
        self.start_discovery(&new);
        set_groups(&self.store, &new);
        let c = self.apply_targets(first_verdicts_within(&new));
        self.heartbeats
            .configure(&new.heartbeats, std::time::Instant::now());
        let (shard, consensus) = (new.shard.as_ref(), new.consensus.as_ref());
        if !self.peering.get().same_as(shard, consensus, new.interval) {
            self.peering
                .set(http::peers::Peering::new(shard, consensus, new.interval));
        }
        info!(
            added = c.added,
            removed = c.removed,
            changed = c.changed,
            relabeled = c.relabeled,
            unchanged = c.unchanged,
            heartbeats = new.heartbeats.len(),
            "config reloaded"
        );
    }
}

/// Load the config on a thread of its own and hand the result back.
fn load_in_background(o: Overrides) -> oneshot::Receiver<Result<Config, config::ConfigError>> {
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("redpulse-reload".into())
        .spawn(move || {
            let _ = tx.send(config::load(&o));
        });
    if let Err(e) = spawned {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Err(config::ConfigError(format!(
            "cannot start the reload thread: {e}"
        ))));
        return rx;
    }
    rx
}

/// The pending reload's result; never returns while none is pending.
async fn reload_result(
    loading: &mut Option<oneshot::Receiver<Result<Config, config::ConfigError>>>,
) -> Result<Config, config::ConfigError> {
    match loading {
        Some(rx) => rx.await.unwrap_or_else(|_| {
            Err(config::ConfigError(
                "the reload thread ended without a result".into(),
            ))
        }),
        None => std::future::pending().await,
    }
}
