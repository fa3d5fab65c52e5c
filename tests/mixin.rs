//! The Prometheus mixin in examples/mixin: Debian's promtool accepts the
//! alert and recording rules, its unit tests pass, and no alert or
//! recording rule is shipped without a test that sees it fire and then
//! resolve (or, for a recording rule, a checked value).

mod support;

use serde_yaml_ng::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::need;

fn mixin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mixin")
}

fn yaml(file: &str) -> Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(mixin().join(file)).unwrap()).unwrap()
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(mixin())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// Every `alert:` or `record:` name in a rules file.
fn rule_names(rules: &Value, key: &str) -> BTreeSet<String> {
    rules["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .filter_map(|r| r[key].as_str().map(str::to_string))
        .collect()
}

/// A duration such as `2m45s` or `26h` in seconds (promtool's eval_time).
fn seconds(d: &str) -> u64 {
    let mut total = 0;
    let mut n = 0;
    for c in d.chars() {
        match c {
            '0'..='9' => n = n * 10 + c.to_digit(10).unwrap() as u64,
            's' => (total, n) = (total + n, 0),
            'm' => (total, n) = (total + n * 60, 0),
            'h' => (total, n) = (total + n * 3600, 0),
            _ => panic!("unexpected duration {d}"),
        }
    }
    total + n
}

#[test]
fn promtool_checks_and_tests_the_mixin() {
    need("promtool");
    let checked = promtool(&["check", "rules", "alerts.yml", "rules.yml"]);
    assert!(checked.contains("SUCCESS: 19 rules found"), "{checked}");
    assert!(checked.contains("SUCCESS: 3 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "tests.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn every_alert_is_seen_firing_then_resolved_and_every_record_checked() {
    let alerts = rule_names(&yaml("alerts.yml"), "alert");
    let records = rule_names(&yaml("rules.yml"), "record");
    assert_eq!(alerts.len(), 19, "{alerts:?}");
    let tests = yaml("tests.yml");
    let files: Vec<&str> = tests["rule_files"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(files, ["alerts.yml", "rules.yml"]);

    let mut fired_then_resolved = BTreeSet::new();
    let mut checked_records = BTreeSet::new();
    for case in tests["tests"].as_sequence().unwrap() {
        let mut fired_at: Vec<(String, u64)> = Vec::new();
        let mut quiet_at: Vec<(String, u64)> = Vec::new();
        for t in case["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = t["alertname"].as_str().unwrap().to_string();
            let at = seconds(t["eval_time"].as_str().unwrap());
            let firing = t["exp_alerts"].as_sequence().is_some_and(|a| !a.is_empty());
            if firing {
                fired_at.push((name, at));
            } else {
                quiet_at.push((name, at));
            }
        }
        for (name, at) in &fired_at {
            if quiet_at.iter().any(|(n, q)| n == name && q > at) {
                fired_then_resolved.insert(name.clone());
            }
        }
        for t in case["promql_expr_test"].as_sequence().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap().trim().to_string();
            if t["exp_samples"]
                .as_sequence()
                .is_some_and(|s| !s.is_empty())
            {
                checked_records.insert(expr);
            }
        }
    }
    let untested: Vec<_> = alerts.difference(&fired_then_resolved).collect();
    assert!(
        untested.is_empty(),
        "alerts never seen firing and then resolved: {untested:?}"
    );
    let unchecked: Vec<_> = records.difference(&checked_records).collect();
    assert!(
        unchecked.is_empty(),
        "recording rules without a checked value: {unchecked:?}"
    );
}

#[test]
fn durations_read_as_promtool_reads_them() {
    assert_eq!(seconds("2m45s"), 165);
    assert_eq!(seconds("26h"), 93_600);
    assert_eq!(seconds("0m"), 0);
    assert_eq!(seconds("30s"), 30);
}

#[test]
fn the_example_prometheus_config_loads_the_mixin() {
    need("promtool");
    let config = mixin().parent().unwrap().join("prometheus.yml");
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(&config)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS: 2 rule files found"), "{text}");
}
