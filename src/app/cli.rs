//! The command line: flags of a run, and the `demo`, `simulate` and
//! `check-config` subcommands. Parsed by `main`; a run's flags become
//! [`Overrides`] of the config file, applied again on every reload.

use crate::config::{self, Overrides};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "redpulse",
    version = crate::LONG_VERSION,
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
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// TOML config file (listen, interval, timeout, [[instance]], [thresholds]...).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// An instance to watch, as [NAME=]redis://[[user]:password@]host[:port][/db]. Repeatable; adds to the config's instances.
    #[arg(long = "target", value_name = "[NAME=]URL")]
    pub targets: Vec<String>,
    /// A file with one [NAME=]URL per line (# comments and blank lines allowed).
    #[arg(long, value_name = "FILE")]
    pub targets_file: Option<PathBuf>,
    /// HTTP listen address [default: $REDPULSE_LISTEN, else 127.0.0.1:9379; the config file's `listen` comes before both].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Time between polls of each instance, e.g. 250ms, 1s, 2m [default: 1s].
    #[arg(long, value_name = "DUR")]
    pub interval: Option<String>,
    /// Deadline for a whole poll: connect + write + read [default: 1s].
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<String>,
    /// Open HTTP connections at most; more are closed on accept [default: 4096].
    #[arg(long, value_name = "N")]
    pub max_http_connections: Option<usize>,
    /// Where the history database lives (one redpulse per directory) [default: $REDPULSE_DATA_DIR, else ./redpulse-data; the config file's `data_dir` comes before both].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// This process is shard I (0-based) of N: it polls only the instances it owns and forwards
    /// requests for the others to their owner in `peers`. I may be `ordinal`: the number after
    /// the host name's last `-` (a StatefulSet's redpulse-2 is shard 2).
    #[arg(long, value_name = "I/N", env = "REDPULSE_SHARD")]
    pub shard: Option<String>,
    /// Web configuration for redpulse's own HTTP, in the Prometheus exporter-toolkit format:
    /// TLS, client certificates, basic auth users, headers, rate limit. Watched for changes.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,
    /// Log format on stderr [default: text].
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    /// CA bundle (PEM) that rediss:// servers' certificates must chain to [default: the system's CA bundle].
    #[arg(long, value_name = "FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for servers that require one (mutual TLS); needs --tls-key-file.
    #[arg(long, value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert-file.
    #[arg(long, value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// Name the server certificate must carry, also sent as SNI [default: the target's host].
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Accept any server certificate for any name: no verification at all (warned at start).
    #[arg(long)]
    pub tls_insecure_skip_verify: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
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

impl RunArgs {
    /// What these flags override in the config file.
    pub fn overrides(self) -> Overrides {
        let a = self;
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
            web_config_file: a.web_config_file,
            tls: config::TlsTable {
                ca_file: a.tls_ca_file,
                cert_file: a.tls_cert_file,
                key_file: a.tls_key_file,
                server_name: a.tls_server_name,
                insecure_skip_verify: a.tls_insecure_skip_verify.then_some(true),
            },
            env: config::EnvDefaults::from_env(),
        }
    }
}
