//! The metrics poll's commands beyond INFO (SLOWLOG, LATENCY LATEST,
//! CONFIG GET, CLIENT LIST), pre-encoded behind INFO ALL so they ride in
//! the same write. A command a server refused is left out of that
//! connection's later metrics polls until it reconnects or the
//! configuration is reloaded. Plans are shared: a fleet with one set of
//! options holds a handful, not one per instance.

use crate::config::MetricsOptions;
use crate::wire::resp::encode_command;
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// One reply of a metrics poll after INFO ALL (and CLUSTER INFO).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extra {
    SlowlogLen,
    SlowlogGet,
    LatencyLatest,
    ConfigGet,
    ClientList,
}

/// A command a server may refuse, a bit of a connection's refusals: the
/// metrics poll's commands beyond INFO, and the kinds of key check (each
/// left out as a whole until a reconnect or a reload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusable {
    Slowlog = 1,
    Latency = 2,
    Config = 4,
    Client = 8,
    /// SCAN (key patterns and counts).
    Scan = 16,
    /// TYPE and the size commands of the checked keys.
    Keys = 32,
    Xinfo = 64,
}

/// The refusals a metrics poll's write depends on (the others are the
/// key checks').
const PLAN_BITS: u8 = Refusable::Slowlog as u8
    | Refusable::Latency as u8
    | Refusable::Config as u8
    | Refusable::Client as u8;

impl Extra {
    /// The command this reply belongs to.
    pub fn command(self) -> Refusable {
        match self {
            Extra::SlowlogLen | Extra::SlowlogGet => Refusable::Slowlog,
            Extra::LatencyLatest => Refusable::Latency,
            Extra::ConfigGet => Refusable::Config,
            Extra::ClientList => Refusable::Client,
        }
    }
}

impl Refusable {
    /// Every refusable command, in bit order.
    pub const ALL: [Refusable; 7] = [
        Refusable::Slowlog,
        Refusable::Latency,
        Refusable::Config,
        Refusable::Client,
        Refusable::Scan,
        Refusable::Keys,
        Refusable::Xinfo,
    ];

    /// The lower-case name sent (CONFIG's may be renamed), as
    /// `redpulse_metrics_command_errors_total` labels it.
    pub fn label(self, options: &MetricsOptions) -> String {
        match self {
            Refusable::Slowlog => "slowlog".into(),
            Refusable::Latency => "latency".into(),
            Refusable::Config => options.config_command.to_ascii_lowercase(),
            Refusable::Client => "client".into(),
            Refusable::Scan => "scan".into(),
            Refusable::Keys => "type".into(),
            Refusable::Xinfo => "xinfo".into(),
        }
    }
}

/// The write of one kind of metrics poll and what its replies are.
#[derive(Debug)]
pub struct MetricsPlan {
    /// INFO ALL, CLUSTER INFO on a cluster node, then the extras.
    pub cmd: Bytes,
    /// The replies after INFO ALL and CLUSTER INFO, in order.
    pub extras: Box<[Extra]>,
}

/// The config keys read by default (redis_exporter publishes these three
/// from CONFIG GET *; asking for them alone costs the server less).
const DEFAULT_CONFIG_KEYS: [&[u8]; 3] = [b"maxclients", b"maxmemory", b"io-threads"];

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    multi: bool,
    cluster: bool,
    refused: u8,
    config_command: Box<str>,
    include_config: bool,
    client_list: bool,
}

/// The metrics poll for a server (one INFO of every section or not,
/// cluster node or not) with `options`, leaving out the `refused` bits.
pub fn metrics_plan(
    multi_section: bool,
    cluster: bool,
    options: &MetricsOptions,
    refused: u8,
) -> Arc<MetricsPlan> {
    static PLANS: OnceLock<Mutex<HashMap<Key, Arc<MetricsPlan>>>> = OnceLock::new();
    let key = Key {
        multi: multi_section,
        cluster,
        // Plans differ only by the refusals they leave out.
        refused: refused & PLAN_BITS,
        config_command: options.config_command.clone(),
        include_config: options.include_config_metrics,
        client_list: options.export_client_list,
    };
    let mut plans = PLANS
        .get_or_init(Default::default)
        .lock()
        .expect("plan lock is never held across a panic");
    plans.entry(key).or_insert_with_key(build).clone()
}

fn build(k: &Key) -> Arc<MetricsPlan> {
    let mut out = BytesMut::with_capacity(256);
    let mut extras = Vec::new();
    let on = |r: Refusable| k.refused & r as u8 == 0;
    encode_command(&mut out, &[b"INFO", b"ALL"]);
    if k.cluster {
        encode_command(&mut out, &[b"CLUSTER", b"INFO"]);
    }
    if on(Refusable::Slowlog) {
        encode_command(&mut out, &[b"SLOWLOG", b"LEN"]);
        encode_command(&mut out, &[b"SLOWLOG", b"GET", b"1"]);
        extras.extend([Extra::SlowlogLen, Extra::SlowlogGet]);
    }
    if on(Refusable::Latency) {
        encode_command(&mut out, &[b"LATENCY", b"LATEST"]);
        extras.push(Extra::LatencyLatest);
    }
    if on(Refusable::Config) {
        let config = k.config_command.as_bytes();
        if k.include_config {
            encode_command(&mut out, &[config, b"GET", b"*"]);
            extras.push(Extra::ConfigGet);
        } else if k.multi {
            // Redis 7 and Valkey take several patterns in one CONFIG GET.
            let mut args: Vec<&[u8]> = vec![config, b"GET"];
            args.extend(DEFAULT_CONFIG_KEYS);
            encode_command(&mut out, &args);
            extras.push(Extra::ConfigGet);
        } else {
            // Redis 6.x takes one pattern per call.
            for key in DEFAULT_CONFIG_KEYS {
                encode_command(&mut out, &[config, b"GET", key]);
                extras.push(Extra::ConfigGet);
            }
        }
    }
    if k.client_list && on(Refusable::Client) {
        encode_command(&mut out, &[b"CLIENT", b"LIST"]);
        extras.push(Extra::ClientList);
    }
    Arc::new(MetricsPlan {
        cmd: out.freeze(),
        extras: extras.into_boxed_slice(),
    })
}

/// Bumped on every reload: connections then send the commands their
/// server refused once more.
static RETRY_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Let every connection try its refused commands again (a reload may
/// have fixed an ACL or a `config_command`).
pub fn retry_refused() {
    RETRY_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The current retry generation.
pub fn retry_generation() -> u64 {
    RETRY_GENERATION.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::resp::{Decoder, Frame};

    /// The commands of a plan, decoded back as a server would read them.
    fn sent(plan: &MetricsPlan) -> Vec<String> {
        let mut buf = BytesMut::from(&plan.cmd[..]);
        let mut d = Decoder::new();
        let mut out = Vec::new();
        while let Some(f) = d.decode(&mut buf).unwrap() {
            let Frame::Array(args) = f else { panic!() };
            let words: Vec<String> = args
                .iter()
                .map(|a| match a {
                    Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                    _ => panic!(),
                })
                .collect();
            out.push(words.join(" "));
        }
        out
    }

    #[test]
    fn a_plan_sends_one_command_per_reply_it_expects() {
        let opts = MetricsOptions {
            config_command: "MYCONFIG".into(),
            export_client_list: true,
            ..MetricsOptions::default()
        };
        let p = metrics_plan(true, true, &opts, 0);
        assert_eq!(
            sent(&p),
            [
                "INFO ALL",
                "CLUSTER INFO",
                "SLOWLOG LEN",
                "SLOWLOG GET 1",
                "LATENCY LATEST",
                "MYCONFIG GET maxclients maxmemory io-threads",
                "CLIENT LIST"
            ]
        );
        assert_eq!(p.extras.len(), 5);
        let six = metrics_plan(false, false, &MetricsOptions::default(), 0);
        let s = sent(&six);
        assert_eq!(
            &s[4..],
            [
                "CONFIG GET maxclients",
                "CONFIG GET maxmemory",
                "CONFIG GET io-threads"
            ]
        );
        assert_eq!(six.extras.len(), s.len() - 1);
    }

    #[test]
    fn refused_commands_are_left_out_and_plans_are_shared() {
        let opts = MetricsOptions::default();
        let p = metrics_plan(
            true,
            false,
            &opts,
            Refusable::Slowlog as u8 | Refusable::Config as u8,
        );
        assert_eq!(sent(&p), ["INFO ALL", "LATENCY LATEST"]);
        assert_eq!(&*p.extras, [Extra::LatencyLatest]);
        let again = metrics_plan(
            true,
            false,
            &opts,
            Refusable::Slowlog as u8 | Refusable::Config as u8,
        );
        assert!(Arc::ptr_eq(&p, &again));
        let all = MetricsOptions {
            include_config_metrics: true,
            ..opts
        };
        assert_eq!(
            sent(&metrics_plan(false, false, &all, 0))[4],
            "CONFIG GET *"
        );
    }
}
