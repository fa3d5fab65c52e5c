//! The redpulse binary: command line, runtime, signals, exit codes. The
//! service itself is the library's `app`.
//!
//! Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT stop polling and
//! drain HTTP), 2 for a bad config or arguments, 1 for a runtime failure
//! such as the listen address being taken.

use clap::Parser;
use redpulse::app::cli::{Cli, Command, RunArgs};
use redpulse::app::{self, modes};
use redpulse::config::{self, web, LogFormat};
use redpulse::limits;
use redpulse::shutdown::{Shutdown, ShutdownSignal};
use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// How long the runtime waits for its own blocking work once the answer is
/// decided: a stuck file read must not hold up the exit.
const RUNTIME_STOP_TIMEOUT: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { config }) => match modes::check_config(&config) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => bad_usage(e),
        },
        Some(Command::Demo {
            instances,
            base_port,
            listen,
            interval,
        }) => {
            let demo = match modes::Demo::new(instances, base_port, &listen, &interval) {
                Ok(d) => d,
                Err(e) => return bad_usage(e),
            };
            // A listener and an accepted socket per simulated instance, and
            // one client socket each.
            let files = 3 * instances as u64 + limits::SPARE_DESCRIPTORS;
            on_runtime(files, LogFormat::Text, |hup, stop| demo.run(hup, stop))
        }
        Some(Command::Simulate {
            instances,
            listen,
            tls,
            tls_dir,
        }) => match modes::simulation(instances, &listen, tls.then_some(tls_dir)) {
            Ok((cfg, tls)) => {
                let files = 2 * instances as u64 + limits::SIM_SPARE_DESCRIPTORS;
                on_runtime(files, LogFormat::Text, move |_, stop| {
                    modes::simulate(cfg, tls, stop)
                })
            }
            Err(e) => bad_usage(e),
        },
        None => run(cli.run),
    }
}

/// A plain run: the config from the flags and files, reloaded on SIGHUP.
fn run(args: RunArgs) -> ExitCode {
    let reload = args.overrides();
    let config = match config::load(&reload) {
        Ok(c) => c,
        Err(e) => return bad_usage(e),
    };
    let web = match config.web_config_file.as_deref().map(web::load).transpose() {
        Ok(w) => w,
        Err(e) => return bad_usage(e),
    };
    let files = config.targets.len() as u64 + limits::SPARE_DESCRIPTORS;
    let format = config.log_format;
    on_runtime(files, format, move |hup, stop| {
        app::serve(config, web, None, Some(reload), hup, stop)
    })
}

/// Exit 2 with one line.
fn bad_usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("redpulse: {msg}");
    ExitCode::from(2)
}

/// Make `open_files` descriptors available (exit 2 saying how many are
/// missing), start logging, build the runtime (exit 1 if that fails),
/// install the signal handlers, and run `main` to completion: SIGTERM
/// and SIGINT fire its shutdown signal, each SIGHUP is a message on its
/// receiver. Then stop the runtime without waiting long for blocking
/// work left behind.
fn on_runtime<F, Fut>(open_files: u64, log_format: LogFormat, main: F) -> ExitCode
where
    F: FnOnce(mpsc::Receiver<()>, ShutdownSignal) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    if let Err(e) = limits::ensure_open_files(open_files) {
        return bad_usage(e);
    }
    init_tracing(log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("redpulse: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(async move {
        let shutdown = Shutdown::new();
        let stop = shutdown.signal();
        let hup = match forward_signals(shutdown) {
            Ok(hup) => hup,
            Err(e) => {
                eprintln!("redpulse: cannot install signal handlers: {e}");
                return ExitCode::from(1);
            }
        };
        main(hup, stop).await
    });
    rt.shutdown_timeout(RUNTIME_STOP_TIMEOUT);
    code
}

/// Install the handlers (each once for the process's life): the first
/// SIGTERM or SIGINT fires `shutdown`; every SIGHUP is passed on.
fn forward_signals(shutdown: Shutdown) -> std::io::Result<mpsc::Receiver<()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let (hup_tx, hup_rx) = mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                Some(()) = hangup.recv() => {
                    // One pending reload is enough: a burst of SIGHUPs
                    // while one waits asks for nothing more.
                    let _ = hup_tx.try_send(());
                }
            }
        }
        // The handlers stay installed for the process's life (tokio never
        // removes them), so a second SIGTERM does not cut the drain short.
        shutdown.trigger();
    });
    Ok(hup_rx)
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
