//! A simulated fleet in one process, for the demo and for load tests.
//!
//! Instance `i` listens on `base_port + i` and speaks real RESP: PING, AUTH,
//! CLIENT, HELLO-less RESP2, SLOWLOG, LATENCY LATEST, CONFIG GET and INFO
//! with replies shaped like the corpus
//! (the same section headers and field names). Counters grow with time, so
//! rates look alive; a fixed share of instances is in a bad state (memory
//! pressure, low hit rate, replica link down, Redis 6.2 that refuses
//! multi-section INFO) so every code path runs at scale. With [`SimTls`]
//! every instance speaks TLS, with a CA and server certificate made at
//! start, so TLS polling can be load-tested too.

use crate::shutdown::ShutdownSignal;
use crate::wire::resp::{Decoder, Frame};
use bytes::{BufMut, BytesMut};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

/// Commands a simulated client may send in one read before we answer; a
/// real poll sends at most a handful.
const MAX_PIPELINE: usize = 64;
/// Read buffer per simulated connection; a poll's commands are ~200 bytes.
const READ_BUF: usize = 1024;

/// What a simulated instance pretends to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// A master with plenty of memory and a good hit rate.
    Healthy,
    /// A replica whose link is up.
    Replica,
    /// used_memory above maxmemory: `memory_pressure`.
    MemoryPressure,
    /// Mostly misses: `low_hit_rate`.
    LowHitRate,
    /// A replica whose master is gone: `replica_disconnected`.
    ReplicaDown,
    /// Redis 6.2: multi-section INFO is a syntax error.
    Redis62,
    /// Memory pressure for a minute, then fine for a minute, and so on:
    /// a steady stream of transitions for the history.
    Flapping,
}

/// How long a flapping instance stays in each state.
pub const FLAP_PERIOD: Duration = Duration::from_secs(60);

impl Profile {
    /// The profile of instance `i`: about 1 in 25 is unhealthy, 1 in 100
    /// flaps, 1 in 10 is a replica, 1 in 20 runs 6.2.
    pub fn of(i: u32) -> Profile {
        match i % 100 {
            7 | 57 => Profile::MemoryPressure,
            31 => Profile::Flapping,
            13 | 63 => Profile::LowHitRate,
            21 | 71 => Profile::ReplicaDown,
            n if n % 10 == 3 => Profile::Replica,
            n if n % 20 == 5 => Profile::Redis62,
            _ => Profile::Healthy,
        }
    }
}

/// One simulated instance.
#[derive(Debug)]
struct Instance {
    index: u32,
    port: u16,
    profile: Profile,
    clients: AtomicU32,
    started: Instant,
}

/// Where the fleet listens.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    pub ip: IpAddr,
    pub base_port: u16,
    pub instances: u32,
}

impl SimConfig {
    /// The address of instance `i`.
    pub fn addr(&self, i: u32) -> SocketAddr {
        SocketAddr::new(self.ip, self.base_port + i as u16)
    }

    /// Check the ports fit below 65536.
    pub fn validate(&self) -> Result<(), String> {
        let last = self.base_port as u32 + self.instances;
        if self.instances == 0 {
            return Err("--instances must be at least 1".into());
        }
        if last > 65_536 {
            return Err(format!(
                "{} instances from port {} would need ports up to {}",
                self.instances,
                self.base_port,
                last - 1
            ));
        }
        Ok(())
    }
}

/// Bind every instance's listener. Binding happens before anything is
/// spawned, so a taken port fails the whole start with a clear error.
pub async fn bind(cfg: SimConfig) -> std::io::Result<Vec<(TcpListener, u32)>> {
    let mut listeners = Vec::with_capacity(cfg.instances as usize);
    for i in 0..cfg.instances {
        let addr = cfg.addr(i);
        let l = TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("simulated instance {i} on {addr}: {e}"))
        })?;
        listeners.push((l, i));
    }
    Ok(listeners)
}

/// A TLS identity for the simulated fleet: a CA made at start (written to
/// `ca_path` for redpulse's `ca_file`) and a server certificate it signed
/// for localhost, 127.0.0.1 and ::1.
#[derive(Clone)]
pub struct SimTls {
    pub acceptor: TlsAcceptor,
    pub ca_path: std::path::PathBuf,
}

/// How long a simulated instance waits for a client's TLS handshake.
const TLS_ACCEPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl SimTls {
    /// Make the CA and server certificate; write the CA to `dir/ca.crt`.
    pub fn generate(dir: &std::path::Path) -> Result<SimTls, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let fail = |e: &dyn std::fmt::Display| format!("simulated TLS identity: {e}");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail(&e))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "redpulse simulated fleet CA");
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(|e| fail(&e))?)
                .map_err(|e| fail(&e))?;
        let names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        let mut leaf_params = CertificateParams::new(names).map_err(|e| fail(&e))?;
        let now = time::OffsetDateTime::now_utc();
        leaf_params.not_before = now - time::Duration::days(1);
        leaf_params.not_after = now + time::Duration::days(365);
        let leaf_key = KeyPair::generate().map_err(|e| fail(&e))?;
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca)
            .map_err(|e| fail(&e))?;
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        let ca_path = dir.join("ca.crt");
        std::fs::write(&ca_path, ca.pem()).map_err(|e| fail(&e))?;
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
        .map_err(|e| fail(&e))?;
        Ok(SimTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ca_path,
        })
    }
}

/// Serve bound listeners until `shutdown` fires.
pub async fn serve(listeners: Vec<(TcpListener, u32)>, shutdown: ShutdownSignal) {
    serve_with(listeners, shutdown, None).await
}

/// Serve bound listeners until `shutdown` fires, over TLS when given.
pub async fn serve_with(
    listeners: Vec<(TcpListener, u32)>,
    shutdown: ShutdownSignal,
    tls: Option<SimTls>,
) {
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(listeners.len());
    for (listener, index) in listeners {
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let inst = Arc::new(Instance {
            index,
            port,
            profile: Profile::of(index),
            clients: AtomicU32::new(0),
            started,
        });
        tasks.push(tokio::spawn(accept_loop(
            listener,
            inst,
            shutdown.clone(),
            tls.as_ref().map(|t| t.acceptor.clone()),
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    inst: Arc<Instance>,
    mut shutdown: ShutdownSignal,
    tls: Option<TlsAcceptor>,
) {
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    warn!(port = inst.port, error = %e, "simulated accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => return,
        };
        let _ = stream.set_nodelay(true);
        let inst = inst.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            inst.clients.fetch_add(1, Ordering::Relaxed);
            let served = match tls {
                None => serve_conn(stream, &inst, shutdown).await,
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_ACCEPT_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => serve_conn(tls_stream, &inst, shutdown).await,
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(std::io::Error::other("TLS handshake timed out")),
                    }
                }
            };
            if let Err(e) = served {
                debug!(port = inst.port, error = %e, "simulated connection ended");
            }
            inst.clients.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn serve_conn(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    inst: &Instance,
    mut shutdown: ShutdownSignal,
) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(READ_BUF);
    let mut out = BytesMut::new();
    let mut decoder = Decoder::new();
    loop {
        let n = tokio::select! {
            r = stream.read_buf(&mut buf) => r?,
            _ = shutdown.wait() => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        let mut answered = 0;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(Frame::Array(args))) => {
                    inst.answer(&args, &mut out);
                    answered += 1;
                    if answered > MAX_PIPELINE {
                        return Ok(());
                    }
                }
                Ok(Some(_)) => {
                    out.put_slice(b"-ERR Protocol error: expected an array of bulk strings\r\n")
                }
                Ok(None) => break,
                Err(_) => return Ok(()),
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            // A TLS stream may hold the last record until flushed.
            stream.flush().await?;
            out.clear();
        }
        if buf.capacity() > 4 * READ_BUF && buf.is_empty() {
            // A client sent something big once; do not keep its buffer.
            buf = BytesMut::with_capacity(READ_BUF);
        }
    }
}

fn arg(args: &[Frame], i: usize) -> &[u8] {
    match args.get(i) {
        Some(Frame::Bulk(b)) => b,
        _ => b"",
    }
}

impl Instance {
    fn answer(&self, args: &[Frame], out: &mut BytesMut) {
        let cmd = arg(args, 0).to_ascii_uppercase();
        match cmd.as_slice() {
            b"PING" => out.put_slice(b"+PONG\r\n"),
            b"AUTH" | b"CLIENT" | b"SELECT" => out.put_slice(b"+OK\r\n"),
            b"SLOWLOG" | b"LATENCY" | b"CONFIG" => self.answer_metrics(&cmd, args, out),
            b"INFO" => {
                let sections: Vec<Vec<u8>> = args[1..]
                    .iter()
                    .filter_map(|a| match a {
                        Frame::Bulk(b) => Some(b.to_ascii_lowercase()),
                        _ => None,
                    })
                    .collect();
                if sections.len() > 1 && self.profile == Profile::Redis62 {
                    out.put_slice(b"-ERR syntax error\r\n");
                    return;
                }
                let mut text = Vec::with_capacity(4096);
                self.render_info(&sections, &mut text);
                out.put_u8(b'$');
                out.put_slice(text.len().to_string().as_bytes());
                out.put_slice(b"\r\n");
                out.put_slice(&text);
                out.put_slice(b"\r\n");
            }
            _ => {
                let name = String::from_utf8_lossy(&cmd).into_owned();
                let _ = write!(out.writer(), "-ERR unknown command '{name}'\r\n");
            }
        }
    }

    /// Per-instance variety that stays stable over time.
    fn seed(&self) -> u64 {
        (self.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40
    }

    fn maxmemory(&self) -> u64 {
        if matches!(self.profile, Profile::MemoryPressure | Profile::Flapping) {
            100 << 20
        } else if self.seed() % 3 == 0 {
            0
        } else {
            1 << 30
        }
    }

    /// SLOWLOG, LATENCY and CONFIG GET as a real server shapes them, so a
    /// metrics poll against the fleet reads what it reads from Redis.
    fn answer_metrics(&self, cmd: &[u8], args: &[Frame], out: &mut BytesMut) {
        let sub = arg(args, 1).to_ascii_uppercase();
        let seed = self.seed();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut w = out.writer();
        let _ = match (cmd, sub.as_slice()) {
            (b"SLOWLOG", b"LEN") => write!(w, ":{}\r\n", seed % 129),
            (b"SLOWLOG", b"GET") => write!(
                w,
                "*1\r\n*6\r\n:{}\r\n:{}\r\n:{}\r\n*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n$15\r\n127.0.0.1:40000\r\n$0\r\n\r\n",
                seed % 1000,
                now - 60,
                10_000 + seed % 5000
            ),
            (b"LATENCY", b"LATEST") => write!(
                w,
                "*1\r\n*4\r\n$7\r\ncommand\r\n:{}\r\n:{}\r\n:{}\r\n",
                now - 120,
                100 + seed % 50,
                250
            ),
            (b"CONFIG", b"GET") => {
                let maxmemory = self.maxmemory().to_string();
                let known: [(&[u8], &str); 3] = [
                    (b"maxclients", "10000"),
                    (b"maxmemory", &maxmemory),
                    (b"io-threads", "1"),
                ];
                let asked = &args[2.min(args.len())..];
                // Redis 6.2 takes one pattern; `*` matches every key.
                if asked.len() != 1 && self.profile == Profile::Redis62 {
                    write!(w, "-ERR wrong number of arguments for 'config|get' command\r\n")
                } else {
                    let pairs: Vec<_> = known
                        .iter()
                        .filter(|(k, _)| asked.iter().any(|a| matches!(a, Frame::Bulk(b) if &b[..] == *k || &b[..] == b"*")))
                        .collect();
                    let _ = write!(w, "*{}\r\n", pairs.len() * 2);
                    for (k, v) in pairs {
                        let _ = write!(w, "${}\r\n{}\r\n${}\r\n{v}\r\n", k.len(), String::from_utf8_lossy(k), v.len());
                    }
                    Ok(())
                }
            }
            _ => write!(w, "-ERR unknown subcommand\r\n"),
        };
    }

    fn render_info(&self, sections: &[Vec<u8>], t: &mut Vec<u8>) {
        let all = sections.is_empty()
            || sections
                .iter()
                .any(|s| s == b"all" || s == b"everything" || s == b"default");
        let want = |name: &[u8]| all || sections.iter().any(|s| s == name);
        let elapsed = self.started.elapsed();
        let secs = elapsed.as_secs();
        let t_ms = elapsed.as_millis() as u64;
        // Per-instance variety that stays stable over time.
        let seed = self.seed();
        // Ops per second; low-hit-rate instances are busy, so their window
        // passes hit_rate_min_lookups within a poll or two.
        let rate = if self.profile == Profile::LowHitRate {
            5000
        } else {
            50 + seed % 2000
        };
        let ops = rate * t_ms / 1000;
        let hit_ratio_pct = if self.profile == Profile::LowHitRate {
            10
        } else {
            90 + seed % 10
        };
        let lookups = ops / 2;
        let hits = lookups * hit_ratio_pct / 100;
        let misses = lookups - hits;
        // A flapping instance is under pressure every other period, each
        // starting at its own phase.
        let pressed = match self.profile {
            Profile::MemoryPressure => true,
            Profile::Flapping => {
                let wall = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                ((wall + seed) / FLAP_PERIOD.as_secs()) % 2 == 1
            }
            _ => false,
        };
        let maxmemory = self.maxmemory();
        let used = match self.profile {
            _ if pressed => 99 << 20,
            _ => (2 << 20) + (seed % 500) * 100_000 + (secs % 60) * 1000,
        };
        let replica = matches!(self.profile, Profile::Replica | Profile::ReplicaDown);
        let clients = self.clients.load(Ordering::Relaxed) + (seed % 40) as u32;
        let offset = 1_000_000 + ops * 30;
        let mut sep = false;
        let mut section = |t: &mut Vec<u8>, title: &str| {
            if sep {
                t.extend_from_slice(b"\r\n");
            }
            sep = true;
            let _ = write!(t, "# {title}\r\n");
        };
        if want(b"server") {
            section(t, "Server");
            let version = if self.profile == Profile::Redis62 {
                "6.2.14"
            } else {
                "7.2.4"
            };
            let _ = write!(
                t,
                "redis_version:{version}\r\nredis_mode:standalone\r\nos:Linux x86_64\r\narch_bits:64\r\n\
process_id:{}\r\nrun_id:{:040x}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:10\r\n",
                1000 + self.index,
                self.index as u128 * 0x1_0000_0001 + 0xabc,
                self.port,
                3600 + secs,
                (3600 + secs) / 86_400
            );
        }
        if want(b"clients") {
            section(t, "Clients");
            let _ = write!(
                t,
                "connected_clients:{clients}\r\ncluster_connections:0\r\nmaxclients:10000\r\n\
client_recent_max_input_buffer:20480\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:0\r\n\
tracking_clients:0\r\nclients_in_timeout_table:0\r\n"
            );
        }
        if want(b"memory") {
            section(t, "Memory");
            let _ = write!(
                t,
                "used_memory:{used}\r\nused_memory_human:{:.2}M\r\nused_memory_rss:{}\r\nused_memory_peak:{used}\r\n\
maxmemory:{maxmemory}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:1.21\r\nmem_allocator:jemalloc-5.3.0\r\n",
                used as f64 / 1048576.0,
                used + used / 5,
                if maxmemory > 0 { "allkeys-lru" } else { "noeviction" }
            );
        }
        if want(b"persistence") {
            section(t, "Persistence");
            let _ = write!(
                t,
                "loading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:0\r\n\
rdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\n\
aof_last_bgrewrite_status:ok\r\naof_last_write_status:ok\r\n",
                ops % 10_000,
                // Saved a few minutes ago, as a server saving regularly would have.
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs().saturating_sub(300))
            );
        }
        if want(b"stats") {
            section(t, "Stats");
            let _ = write!(
                t,
                "total_connections_received:{}\r\ntotal_commands_processed:{ops}\r\ninstantaneous_ops_per_sec:{rate}\r\n\
total_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:0\r\nsync_full:0\r\n\
expired_keys:{}\r\nevicted_keys:0\r\nkeyspace_hits:{hits}\r\nkeyspace_misses:{misses}\r\npubsub_channels:0\r\n",
                10 + self.index % 7,
                ops * 40,
                ops * 120,
                ops / 100
            );
        }
        if want(b"replication") {
            section(t, "Replication");
            if replica {
                let up = self.profile == Profile::Replica;
                let _ = write!(
                    t,
                    "role:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:{}\r\nmaster_link_status:{}\r\n\
master_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:0\r\nslave_read_repl_offset:{offset}\r\n\
slave_repl_offset:{offset}\r\nslave_priority:100\r\nslave_read_only:1\r\nconnected_slaves:0\r\n\
master_repl_offset:{offset}\r\n",
                    self.port.wrapping_sub(3),
                    if up { "up" } else { "down" },
                    if up { 1 } else { -1 }
                );
            } else {
                let _ = write!(
                    t,
                    "role:master\r\nconnected_slaves:0\r\nmaster_repl_offset:{offset}\r\n"
                );
            }
        }
        if want(b"cpu") {
            section(t, "CPU");
            let cpu = t_ms as f64 / 1000.0 * 0.002;
            let _ = write!(
                t,
                "used_cpu_sys:{:.6}\r\nused_cpu_user:{:.6}\r\nused_cpu_sys_children:0.000000\r\n\
used_cpu_user_children:0.000000\r\nused_cpu_sys_main_thread:{:.6}\r\nused_cpu_user_main_thread:{:.6}\r\n",
                cpu,
                cpu * 2.0,
                cpu,
                cpu * 2.0
            );
        }
        if want(b"commandstats") {
            // A cache's usual mix, with Redis 7's rejected/failed counts.
            section(t, "Commandstats");
            for (cmd, share, usec) in [
                ("get", 50, 2),
                ("set", 30, 3),
                ("del", 10, 2),
                ("expire", 9, 1),
                ("info", 1, 40),
            ] {
                let calls = ops * share / 100;
                let _ = write!(
                    t,
                    "cmdstat_{cmd}:calls={calls},usec={},usec_per_call={usec}.00,rejected_calls=0,failed_calls=0\r\n",
                    calls * usec
                );
            }
        }
        if want(b"errorstats") {
            section(t, "Errorstats");
            let _ = write!(t, "errorstat_ERR:count={}\r\n", seed % 5);
        }
        if want(b"latencystats") {
            section(t, "Latencystats");
            for cmd in ["get", "set", "del", "expire", "info"] {
                let _ = write!(
                    t,
                    "latency_percentiles_usec_{cmd}:p50=1.003,p99=3.007,p99.9=10.047\r\n"
                );
            }
        }
        if want(b"keyspace") {
            section(t, "Keyspace");
            let _ = write!(
                t,
                "db0:keys={},expires=0,avg_ttl=0\r\n",
                1000 + seed % 100_000
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Thresholds;
    use crate::judge::outcome::{Outcome, Status};
    use crate::judge::rules::Tracker;
    use crate::wire::info::{info_text, Snapshot};
    use crate::wire::resp::encode_command;
    use std::time::SystemTime;

    fn info(inst: &Instance, sections: &[&str]) -> Frame {
        let mut cmd = BytesMut::new();
        let mut args: Vec<&[u8]> = vec![b"INFO"];
        args.extend(sections.iter().map(|s| s.as_bytes()));
        encode_command(&mut cmd, &args);
        let Some(Frame::Array(args)) = Decoder::new().decode(&mut cmd).unwrap() else {
            panic!()
        };
        let mut out = BytesMut::new();
        inst.answer(&args, &mut out);
        Decoder::new().decode(&mut out).unwrap().unwrap()
    }

    fn instance(index: u32) -> Instance {
        Instance {
            index,
            port: 20_000 + index as u16,
            profile: Profile::of(index),
            clients: AtomicU32::new(1),
            started: Instant::now() - Duration::from_secs(5),
        }
    }

    #[test]
    fn simulated_replies_parse_like_real_ones_and_give_the_intended_health() {
        for (index, status, role) in [
            (0, Status::Ok, "master"),
            (3, Status::Ok, "replica"),
            (7, Status::Critical, "master"),
            (21, Status::Degraded, "replica"),
        ] {
            let inst = instance(index);
            let Frame::Bulk(server) = info(&inst, &["server"]) else {
                panic!()
            };
            let mut s = Snapshot::default();
            s.merge_info(&server);
            let f = info(
                &inst,
                &["clients", "memory", "stats", "replication", "persistence"],
            );
            s.merge_info(info_text(&f).unwrap());
            for field in [
                s.used_memory,
                s.maxmemory,
                s.connected_clients,
                s.keyspace_hits,
                s.rejected_connections,
            ] {
                assert!(field.is_some(), "{index}: {s:?}");
            }
            assert!(s.server.version().is_some() && s.server.run_id.is_some());
            let h = Tracker::new(Thresholds::default()).observe(
                Outcome::Polled {
                    snapshot: s.into(),
                    latency: Duration::from_micros(100),
                    tls: None,
                },
                std::time::Instant::now(),
                SystemTime::now(),
            );
            assert_eq!(h.status, status, "{index}: {:?}", h.reasons);
            let is_replica = s.role == Some(crate::wire::info::Role::Replica);
            assert_eq!(is_replica, role == "replica", "{index}");
        }
    }

    #[test]
    fn simulated_6_2_refuses_multi_section_info() {
        let inst = instance(5);
        assert_eq!(inst.profile, Profile::Redis62);
        assert!(matches!(
            info(&inst, &["clients", "memory"]),
            Frame::Error(_)
        ));
        assert!(matches!(info(&inst, &["memory"]), Frame::Bulk(_)));
    }

    #[test]
    fn low_hit_rate_instances_miss_most_lookups() {
        let inst = instance(13);
        let read = || {
            let mut s = Snapshot::default();
            s.merge_info(info_text(&info(&inst, &["stats"])).unwrap());
            (s.keyspace_hits.unwrap(), s.keyspace_misses.unwrap())
        };
        let (h0, m0) = read();
        std::thread::sleep(Duration::from_millis(50));
        let (h1, m1) = read();
        assert!(
            m1 - m0 > 4 * (h1 - h0),
            "hits {h0}->{h1}, misses {m0}->{m1}"
        );
    }

    #[test]
    fn profiles_mix_is_mostly_healthy() {
        let unhealthy = (0..1000)
            .filter(|&i| {
                matches!(
                    Profile::of(i),
                    Profile::MemoryPressure | Profile::LowHitRate | Profile::ReplicaDown
                )
            })
            .count();
        assert_eq!(unhealthy, 60);
    }

    #[test]
    fn config_rejects_ports_past_65535() {
        let cfg = SimConfig {
            ip: [127, 0, 0, 1].into(),
            base_port: 60_000,
            instances: 10_000,
        };
        assert!(cfg.validate().is_err());
        assert!(SimConfig {
            base_port: 20_000,
            ..cfg
        }
        .validate()
        .is_ok());
    }
}
