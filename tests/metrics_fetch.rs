//! Metrics on demand, counted from the server's side: MONITOR on a second
//! connection sees every command redpulse sends. With nobody scraping,
//! `INFO ALL` (the metrics poll) is sent at the first poll and then not
//! again while health INFOs continue; a HEAD of /metrics changes nothing;
//! a GET resumes it at once and it stops again 3 x metrics_interval after
//! the last scrape; `metrics_fetch = "always"` keeps sending it.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

/// Every INFO command a server received, with when it was seen.
#[derive(Clone, Default)]
struct Infos(Arc<Mutex<Vec<(Instant, bool)>>>);

impl Infos {
    /// MONITOR `redis` on a thread of its own until the server goes away.
    fn watch(redis: &RedisServer) -> Infos {
        let infos = Infos::default();
        let mut c = redis.client();
        assert!(matches!(
            c.cmd(&["MONITOR"]),
            redpulse::wire::resp::Frame::Simple(_)
        ));
        let seen = infos.clone();
        std::thread::spawn(move || {
            while let Ok(f) = c.next_frame() {
                let redpulse::wire::resp::Frame::Simple(line) = f else {
                    continue;
                };
                let line = String::from_utf8_lossy(&line).to_ascii_lowercase();
                // 1733243000.123456 [0 127.0.0.1:40000] "info" "all"
                if let Some(args) = line.split("] ").nth(1) {
                    if args.starts_with("\"info\"") {
                        let all = args.split(' ').any(|a| a == "\"all\"");
                        seen.0.lock().unwrap().push((Instant::now(), all));
                    }
                }
            }
        });
        infos
    }

    /// (health INFOs, INFO ALLs) seen in [from, to).
    fn between(&self, from: Instant, to: Instant) -> (usize, usize) {
        let v = self.0.lock().unwrap();
        let inside = v.iter().filter(|(t, _)| *t >= from && *t < to);
        let all = inside.clone().filter(|(_, all)| *all).count();
        (inside.count() - all, all)
    }

    fn first_all(&self) -> Option<Instant> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|(_, all)| *all)
            .map(|(t, _)| *t)
    }
}

fn start(redis: &RedisServer, fetch: &str) -> Redpulse {
    Redpulse::start_with_config(
        &format!(
            "interval = \"200ms\"\nmetrics_interval = \"1s\"\nmetrics_fetch = \"{fetch}\"\n\
             [[instance]]\nname = \"r\"\nurl = \"{}\"\n",
            redis.url()
        ),
        &[],
    )
}

#[test]
fn info_all_is_sent_only_while_metrics_are_scraped() {
    let quiet_server = RedisServer::start(&[]);
    let always_server = RedisServer::start(&[]);
    let quiet = Infos::watch(&quiet_server);
    let always = Infos::watch(&always_server);
    let on_demand = start(&quiet_server, "on_demand");
    let kept = start(&always_server, "always");
    on_demand.wait_status("r", "ok", None);
    kept.wait_status("r", "ok", None);
    // The first poll fetched the metrics sections, on both.
    let first = wait_for(WAIT, "the first INFO ALL", || quiet.first_all());
    wait_for(WAIT, "the first INFO ALL (always)", || always.first_all());

    // Ten quiet seconds, from the first metrics poll's interval on; a HEAD
    // of /metrics halfway is a probe, not a scrape.
    let from = first + Duration::from_millis(1500);
    let to = from + Duration::from_secs(10);
    std::thread::sleep(from.saturating_duration_since(Instant::now()) + Duration::from_secs(5));
    assert_eq!(
        http_request(on_demand.port, "HEAD", "/metrics").unwrap().0,
        200
    );
    std::thread::sleep(to.saturating_duration_since(Instant::now()));
    let (health, all) = quiet.between(from, to);
    assert_eq!(all, 0, "INFO ALL sent {all} times with nobody scraping");
    // 10 s at 200 ms: about 50 health polls.
    assert!(health >= 25, "only {health} health INFOs in 10 s");
    let (_, kept_all) = always.between(from, to);
    // metrics_fetch = "always": one every metrics_interval (1 s).
    assert!(
        (8..=12).contains(&kept_all),
        "{kept_all} INFO ALLs in 10 s at one a second"
    );

    // A scrape after the quiet spell answers with the first poll's data
    // and says how old it is.
    let scraped = Instant::now();
    let (code, text) = on_demand.get("/metrics");
    assert_eq!(code, 200);
    let age: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("redpulse_metrics_oldest_fetch_age_seconds "))
        .unwrap()
        .parse()
        .unwrap();
    let since_first = scraped.duration_since(first).as_secs_f64();
    assert!(
        age >= since_first - 1.0 && age <= since_first + 1.0,
        "oldest fetch {age} s old, the first metrics poll was {since_first} s ago"
    );
    // Fetching resumes at the next poll...
    let resumed = wait_for(Duration::from_secs(5), "INFO ALL after a scrape", || {
        let v = quiet.0.lock().unwrap();
        v.iter()
            .find(|(t, all)| *all && *t >= scraped)
            .map(|(t, _)| *t)
    });
    assert!(
        resumed - scraped < Duration::from_secs(1),
        "{:?}",
        resumed - scraped
    );
    // ...and stops again once no scrape came for 3 x metrics_interval.
    let quiet_again = scraped + Duration::from_millis(4500);
    let until = quiet_again + Duration::from_secs(3);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let (_, between) = quiet.between(scraped, quiet_again);
    assert!(
        (1..=4).contains(&between),
        "{between} INFO ALLs in the 3 s after a scrape"
    );
    let (_, after) = quiet.between(quiet_again, until);
    assert_eq!(after, 0, "INFO ALL still sent 4.5 s after the only scrape");
}
