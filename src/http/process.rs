//! redpulse's own process in `/metrics`: `redpulse_build_info` and the
//! standard `process_*` series every Prometheus client library exports,
//! read from /proc at scrape time as client_golang does (USER_HZ ticks,
//! start time from the boot time in /proc/stat). Off Linux, or when /proc
//! cannot be read, the process series are left out rather than invented.

use crate::wire::prom_text::{escape_label_value, header, write_value};
use std::io::Write;
use std::sync::OnceLock;

/// Clock ticks per second in /proc/*/stat: the kernel's USER_HZ, 100 on
/// every architecture Linux exports to user space (client_golang's
/// procfs assumes the same).
const USER_HZ: f64 = 100.0;

/// `redpulse_build_info{version,revision,rustc_version} 1`.
pub fn build_info_series(b: &mut Vec<u8>) {
    header(
        b,
        "redpulse_build_info",
        "gauge",
        "A metric with a constant '1' value labeled by version, revision and rustc_version of this build.",
    );
    b.extend_from_slice(b"redpulse_build_info{version=\"");
    escape_label_value(b, crate::VERSION.as_bytes());
    b.extend_from_slice(b"\",revision=\"");
    escape_label_value(b, crate::REVISION.as_bytes());
    b.extend_from_slice(b"\",rustc_version=\"");
    escape_label_value(b, crate::RUSTC_VERSION.as_bytes());
    b.extend_from_slice(b"\"} 1\n");
}

/// The process as /proc tells it now.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub resident_bytes: u64,
    /// Virtual memory size, bytes.
    pub virtual_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit on open file descriptors.
    pub max_fds: u64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

impl ProcessStats {
    /// Read this process's figures; `None` when /proc is not there.
    pub fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let (cpu_ticks, start_ticks, virtual_bytes, rss_pages) = parse_stat(&stat)?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        let max_fds = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        Some(ProcessStats {
            cpu_seconds: cpu_ticks as f64 / USER_HZ,
            resident_bytes: rss_pages * rustix::param::page_size() as u64,
            virtual_bytes,
            open_fds,
            max_fds,
            start_time_seconds: boot_time()? + start_ticks as f64 / USER_HZ,
        })
    }
}

/// From /proc/self/stat: utime + stime, starttime (ticks), vsize (bytes)
/// and rss (pages). The command name sits in parentheses and may hold
/// spaces or parentheses itself, so fields are counted after the last ')'.
fn parse_stat(stat: &str) -> Option<(u64, u64, u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state); field n is rest[n - 3].
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
    Some((field(14)? + field(15)?, field(22)?, field(23)?, field(24)?))
}

/// The boot time in seconds since the epoch (`btime` in /proc/stat); it
/// does not change while the system runs, so it is read once.
fn boot_time() -> Option<f64> {
    static BTIME: OnceLock<Option<f64>> = OnceLock::new();
    *BTIME.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    })
}

/// The standard `process_*` series, when /proc can be read.
pub fn process_series(b: &mut Vec<u8>) {
    let Some(p) = ProcessStats::read() else {
        return;
    };
    let series: [(&str, &str, &str, f64); 6] = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            p.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.resident_bytes as f64,
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            p.virtual_bytes as f64,
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            p.open_fds as f64,
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            p.max_fds as f64,
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            p.start_time_seconds,
        ),
    ];
    for (name, kind, help, value) in series {
        header(b, name, kind, help);
        let _ = write!(b, "{name} ");
        write_value(b, value);
        b.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        // A command name with spaces and a ')' in it; fields from proc(5):
        // utime 14 = 7, stime 15 = 5, starttime 22 = 4242, vsize 23, rss 24.
        let stat = "123 (a b) c) S 1 123 123 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 3 0 4242 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_stat(stat), Some((12, 4242, 104_857_600, 2560)));
        assert_eq!(parse_stat("123 (x) S 1"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn build_info_names_this_build() {
        let mut b = Vec::new();
        build_info_series(&mut b);
        let text = String::from_utf8(b).unwrap();
        let line = text.lines().last().unwrap();
        assert!(line.starts_with("redpulse_build_info{version=\""), "{line}");
        assert!(line.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))));
        assert!(line.ends_with("\"} 1"), "{line}");
    }
}
