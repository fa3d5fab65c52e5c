//! The metrics poll's commands beyond INFO fail soft, against real servers:
//! CONFIG renamed (and named in `config_command`, or not), CONFIG, SLOWLOG
//! and LATENCY disabled, and an ACL user refused them. Each instance stays
//! ok with its INFO series, loses only the refused command's families,
//! counts the refusal once (the command is not sent again), and counts it
//! again after a reload; the other instances in the process keep theirs.

mod support;

use support::prom::Exposition;
use support::*;

fn scrape(port: u16) -> Exposition {
    let (code, body) = http_get(port, "/metrics").expect("GET /metrics");
    assert_eq!(code, 200, "{body}");
    Exposition::parse(&body)
}

fn errors(e: &Exposition, instance: &str, command: &str) -> Option<f64> {
    e.value(
        "redpulse_metrics_command_errors_total",
        &[("instance", instance), ("command", command)],
    )
}

#[test]
fn refused_metrics_commands_drop_only_their_own_series_and_never_the_health() {
    let renamed = RedisServer::start(&["--rename-command", "CONFIG", "MYCONFIG"]);
    let disabled = RedisServer::start(&[
        "--rename-command",
        "CONFIG",
        "",
        "--rename-command",
        "SLOWLOG",
        "",
        "--rename-command",
        "LATENCY",
        "",
    ]);
    let plain = RedisServer::start(&[]);
    // An ACL user that may run INFO but not the metrics-only commands:
    // the server answers them -NOPERM, which on INFO would be auth_failed.
    plain.client().cmd(&[
        "ACL", "SETUSER", "limited", "on", ">secret", "~*", "&*", "+@all", "-slowlog", "-latency",
        "-config",
    ]);
    let limited_url = format!("redis://limited:secret@127.0.0.1:{}", plain.port);

    let dir = temp_dir("metrics-commands");
    let config = write_file(
        &dir,
        "redpulse.toml",
        &format!(
            "interval = \"100ms\"\nmetrics_interval = \"300ms\"\nmetrics_fetch = \"always\"\n\
             [[instance]]\nname = \"renamed\"\nurl = \"{r}\"\n\
             [instance.metrics]\nconfig_command = \"MYCONFIG\"\n\
             [[instance]]\nname = \"unnamed\"\nurl = \"{r}\"\n\
             [[instance]]\nname = \"disabled\"\nurl = \"{d}\"\n\
             [[instance]]\nname = \"plain\"\nurl = \"{p}\"\n\
             [[instance]]\nname = \"limited\"\nurl = \"{limited_url}\"\n",
            r = renamed.url(),
            d = disabled.url(),
            p = plain.url(),
        ),
    );
    let rp = Redpulse::start(&["--config", config.to_str().unwrap()]);
    for name in ["renamed", "unnamed", "disabled", "plain", "limited"] {
        rp.wait_status(name, "ok", None);
    }
    // Many metrics polls later (300 ms apart) ...
    let seen = wait_for(
        WAIT,
        "every instance's INFO series and errors counted",
        || {
            let e = scrape(rp.port);
            let all = ["renamed", "unnamed", "disabled", "plain", "limited"]
                .iter()
                .all(|i| {
                    e.value("redis_uptime_in_seconds", &[("instance", i)])
                        .is_some()
                });
            (all && errors(&e, "disabled", "latency").is_some()
                && errors(&e, "limited", "config").is_some())
            .then_some(e)
        },
    );
    drop(seen);
    // At least three more metrics polls of each instance on `renamed`,
    // counted by the server (two SLOWLOG calls per poll, two instances).
    let slowlog_calls = || cmdstat_calls(&renamed.client().info("commandstats"), "slowlog|len");
    let before = slowlog_calls();
    wait_for(WAIT, "three more metrics polls", || {
        (slowlog_calls() >= before + 6).then_some(())
    });
    let e = scrape(rp.port);
    for name in ["renamed", "unnamed", "disabled", "plain", "limited"] {
        let (code, body) = http_get(rp.port, &format!("/health/redis/{name}")).unwrap();
        assert_eq!(code, 200, "{name}: {body}");
        assert!(body.contains("\"status\":\"ok\""), "{name}: {body}");
        assert_eq!(
            e.value("redis_up", &[("instance", name)]),
            Some(1.0),
            "{name}"
        );
        assert!(
            e.value(
                "redis_commands_total",
                &[("instance", name), ("cmd", "info")]
            )
            .is_some_and(|n| n > 0.0),
            "{name}: INFO series"
        );
    }
    let has = |instance: &str, family: &str| !e.find(family, &[("instance", instance)]).is_empty();
    let config = "redis_config_maxclients";
    let slowlog = "redis_slowlog_length";
    // The renamed CONFIG, named: every family, no error.
    assert!(has("renamed", config) && has("renamed", slowlog));
    assert_eq!(errors(&e, "renamed", "myconfig"), None);
    // The renamed CONFIG, not named: no config series, one error each
    // connection (not one per metrics poll: three or more ran since).
    assert!(!has("unnamed", config) && has("unnamed", slowlog));
    assert_eq!(errors(&e, "unnamed", "config"), Some(1.0));
    // All three disabled.
    for family in [
        config,
        slowlog,
        "redis_config_io_threads",
        "redis_last_slow_execution_duration_seconds",
    ] {
        assert!(!has("disabled", family), "{family}");
    }
    for command in ["config", "slowlog", "latency"] {
        assert_eq!(errors(&e, "disabled", command), Some(1.0), "{command}");
        assert_eq!(errors(&e, "limited", command), Some(1.0), "{command}");
    }
    assert!(!has("limited", config) && !has("limited", slowlog));
    // The plain instance in the same process keeps everything.
    assert!(has("plain", config) && has("plain", slowlog));
    for command in ["config", "slowlog", "latency"] {
        assert_eq!(errors(&e, "plain", command), None, "{command}");
    }
    assert_eq!(
        e.value("redis_config_maxclients", &[("instance", "plain")]),
        info_field(&plain.client().info("clients"), "maxclients").map(|n| n as f64)
    );

    // A reload: each refused command is tried once more.
    signal(rp.pid(), "HUP");
    wait_for(WAIT, "the refusals counted again after the reload", || {
        let e = scrape(rp.port);
        (errors(&e, "unnamed", "config") == Some(2.0)
            && errors(&e, "disabled", "slowlog") == Some(2.0))
        .then_some(())
    });
    let before = slowlog_calls();
    wait_for(WAIT, "three more metrics polls", || {
        (slowlog_calls() >= before + 6).then_some(())
    });
    let e = scrape(rp.port);
    assert_eq!(
        errors(&e, "unnamed", "config"),
        Some(2.0),
        "once per reload"
    );
    assert_eq!(errors(&e, "renamed", "myconfig"), None);
    let (code, _) = http_get(rp.port, "/health/redis/limited").unwrap();
    assert_eq!(code, 200);
}
