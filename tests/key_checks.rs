//! Key checks stay bounded on a real server with 100,000 keys matching the
//! checked pattern: each metrics poll reads at most `check_keys_max` keys
//! (counted by the server), the truncated counter grows, the checked set
//! is the same scrape after scrape (across re-scans), and the instance's
//! verdict stays fresh and ok throughout.

mod support;

use std::collections::BTreeSet;
use support::prom::Exposition;
use support::*;

const MAX: usize = 50;

fn scrape(port: u16) -> Exposition {
    let (code, body) = http_get(port, "/metrics").expect("GET /metrics");
    assert_eq!(code, 200, "{body}");
    Exposition::parse(&body)
}

fn key_set(e: &Exposition) -> BTreeSet<String> {
    e.find("redis_key_size", &[("instance", "big")])
        .iter()
        .map(|s| s.labels["key"].clone())
        .collect()
}

#[test]
fn a_hundred_thousand_matching_keys_are_checked_within_the_bound() {
    let server = RedisServer::start(&["--enable-debug-command", "yes"]);
    let mut c = server.client();
    c.cmd(&["DEBUG", "POPULATE", "100000", "user:"]);
    let keyspace = c.info("keyspace");
    let keys = keyspace.lines().find_map(|l| {
        l.strip_prefix("db0:keys=")?
            .split(',')
            .next()?
            .parse::<u64>()
            .ok()
    });
    assert_eq!(keys, Some(100_000), "{keyspace}");

    let dir = temp_dir("key-checks");
    let config = write_file(
        &dir,
        "redpulse.toml",
        &format!(
            "interval = \"100ms\"\ntimeout = \"1s\"\nmetrics_interval = \"200ms\"\n\
             metrics_fetch = \"always\"\n\
             [metrics]\ncheck_keys = [\"db0=user:*\"]\ncheck_keys_max = {MAX}\n\
             [[instance]]\nname = \"big\"\nurl = \"{}\"\n",
            server.url()
        ),
    );
    let rp = Redpulse::start(&["--config", config.to_str().unwrap()]);
    rp.wait_status("big", "ok", None);
    let first = wait_for(WAIT, "the checked keys", || {
        let e = scrape(rp.port);
        (key_set(&e).len() == MAX).then_some(e)
    });
    let set = key_set(&first);
    let truncated = |e: &Exposition| {
        e.value(
            "redpulse_key_checks_truncated_total",
            &[("instance", "big")],
        )
        .unwrap_or(0.0)
    };
    let mut last_truncated = truncated(&first);
    assert!(last_truncated > 0.0, "keys past the cap are counted");

    // What the server counts: SCANs (one per pass), TYPEs (one per checked
    // key per metrics poll) and metrics polls (two SLOWLOG calls each).
    let stats = |c: &mut Client| {
        let s = c.info("commandstats");
        (
            cmdstat_calls(&s, "scan"),
            cmdstat_calls(&s, "type"),
            cmdstat_calls(&s, "slowlog|len"),
        )
    };
    let (scans0, types0, polls0) = stats(&mut c);
    // Three passes more (a pass every 10 metrics polls): the set must not
    // move, every scrape stays within the cap, the verdict stays fresh.
    let mut scrapes = 0;
    wait_for(
        std::time::Duration::from_secs(60),
        "three more passes",
        || {
            let e = scrape(rp.port);
            scrapes += 1;
            assert_eq!(key_set(&e), set, "the checked set moved");
            let t = truncated(&e);
            assert!(t >= last_truncated);
            last_truncated = t;
            let (code, v) = rp.health("big");
            assert_eq!(code, 200, "{v}");
            let age = v["age_ms"].as_u64().unwrap();
            assert!(age < 1100, "the verdict is {age} ms old: {v}");
            (stats(&mut c).0 >= scans0 + 3).then_some(())
        },
    );
    let (scans1, types1, polls1) = stats(&mut c);
    let polls = polls1 - polls0;
    println!(
        "{scrapes} scrapes; {} passes, {} TYPE over {polls} metrics polls",
        scans1 - scans0,
        types1 - types0
    );
    assert!(polls >= 20, "{polls} metrics polls");
    // At most MAX keys read per metrics poll (one poll may be in flight
    // between the two readings).
    assert!(
        types1 - types0 <= (polls + 1) * MAX as u64,
        "{} TYPE calls for {polls} polls",
        types1 - types0
    );
    assert!(types1 - types0 >= (polls - 2) * MAX as u64);
    assert!(
        last_truncated > truncated(&first),
        "the truncated counter grows"
    );
}
