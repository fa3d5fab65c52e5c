//! `/history/...` and `/events`: read from the history database on the
//! blocking pool (a read can wait on the disk; health answers never do).
//!
//! - `GET /history/redis/{name}?window=24h` (also `/history/cluster/{name}`,
//!   `/history/group/{name}`, `/history/heartbeat/{name}`): uptime over
//!   1h/24h/7d/30d, the transitions in the window (the first verdict of a
//!   run has `"from":null`), and the window's minutes, an instance's
//!   minute in progress last (`"partial":true`, not yet in the database).
//! - `GET /history/bars?window=24h&cells=96&name=A&name=B...`: for the status
//!   page, each named instance's uptime over the window and one character
//!   per cell for the worst status in it (`o` ok, `g` degraded, `c`
//!   critical, `d` down, `-` not observed).
//! - `GET /events?since=RFC3339&limit=N`: fleet-wide transitions, newest
//!   first (default: the last 24 h, 100; at most 1,000).

use super::route::Query;
use crate::config::parse_duration;
use crate::history::db::{self, Transition};
use crate::history::uptime::{cells, share};
use crate::history::{now_ms, rfc3339_ms, History};
use crate::judge::outcome::Status;
use crate::state::record::{Kind, MinuteAcc};
use hyper::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// Longest window a history request may ask for.
const MAX_WINDOW: Duration = Duration::from_secs(366 * 86_400);
/// Names per bars request at most, and cells per bar.
const MAX_BAR_NAMES: usize = 500;
const MAX_CELLS: i64 = 1_440;
const MAX_EVENTS: u32 = 1_000;

/// The uptime windows every history answer carries.
const UPTIME_WINDOWS: [(&str, i64); 4] = [
    ("1h", 3_600_000),
    ("24h", 86_400_000),
    ("7d", 7 * 86_400_000),
    ("30d", 30 * 86_400_000),
];

fn error(code: StatusCode, msg: impl Into<String>) -> (StatusCode, Vec<u8>) {
    (
        code,
        json!({ "error": msg.into() }).to_string().into_bytes(),
    )
}

fn window_of(p: &Query) -> Result<(String, i64), String> {
    let text = p.get("window").unwrap_or("24h").to_string();
    match parse_duration(&text) {
        Ok(d) if !d.is_zero() && d <= MAX_WINDOW => Ok((text, d.as_millis() as i64)),
        Ok(_) => Err(format!("window {text:?}: between 1ms and 366 days")),
        Err(e) => Err(format!("window: {e}")),
    }
}

/// Every run since `since_ms`, the running one ending now.
fn runs(
    c: &rusqlite::Connection,
    history: &History,
    since_ms: i64,
    now: i64,
) -> rusqlite::Result<Vec<(i64, i64, i64)>> {
    let current = history.run.load(std::sync::atomic::Ordering::Relaxed);
    Ok(db::runs(c, since_ms)?
        .into_iter()
        .map(|(id, start, end)| (id, start, if id == current { now } else { end }))
        .collect())
}

fn transition_json(t: &Transition) -> Value {
    let mut v = json!({
        "at": rfc3339_ms(t.at_ms),
        "from": t.from.map(|s| s.as_str()),
        "to": t.to.as_str(),
    });
    if let Some(r) = &t.reason {
        v["reason"] = json!(r);
    }
    if let Some(e) = &t.error {
        v["error"] = json!(e);
    }
    v
}

/// `GET /history/{kind}/{name}`. `unwritten` are an instance's minutes
/// not in the database yet (the one in progress last): each is appended
/// after the stored ones, the current one with `"partial": true`.
pub fn subject(
    history: &History,
    kind: Kind,
    name: &str,
    p: &Query,
    known: bool,
    unwritten: &[(i64, MinuteAcc)],
) -> (StatusCode, Vec<u8>) {
    let (window_text, window) = match window_of(p) {
        Ok(w) => w,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let result = (|| -> rusqlite::Result<Option<Value>> {
        let c = history.reader()?;
        let Some(id) = db::subject_id(&c, kind, name)? else {
            return Ok(None);
        };
        let now = now_ms();
        let longest = window.max(UPTIME_WINDOWS[3].1);
        let ts = db::transitions(&c, id, now - longest)?;
        let rs = runs(&c, history, now - longest, now)?;
        let mut uptime = serde_json::Map::new();
        for (label, ms) in UPTIME_WINDOWS {
            uptime.insert(
                label.into(),
                json!(share(&ts, &rs, now - ms, now).ratio().map(round6)),
            );
        }
        let from = now - window;
        let in_window: Vec<Value> = ts
            .iter()
            .filter(|t| t.at_ms >= from)
            .map(transition_json)
            .collect();
        let stored = db::minutes(&c, id, from / 60_000, now / 60_000)?;
        let last_stored = stored.last().map(|m| m.minute);
        let mut minutes: Vec<Value> = stored
            .iter()
            .map(|m| {
                json!({
                    "at": rfc3339_ms(m.minute * 60_000),
                    "status": m.status.as_str(),
                    "polls": m.polls,
                    "latency_ms_max": m.latency_ms_max,
                    "mem_ratio": m.mem_ratio,
                })
            })
            .collect();
        minutes.extend(unwritten_json(unwritten, from, now, last_stored));
        Ok(Some(json!({
            kind_key(kind): name,
            "window": window_text,
            "uptime": uptime,
            "uptime_window": share(&ts, &rs, from, now).ratio().map(round6),
            "transitions": in_window,
            "minutes": minutes,
        })))
    })();
    match result {
        Ok(Some(v)) => (StatusCode::OK, v.to_string().into_bytes()),
        // Watched but nothing recorded yet: an empty history.
        Ok(None) if known => (
            StatusCode::OK,
            json!({kind_key(kind): name, "window": window_text, "uptime": {}, "transitions": [],
                "minutes": unwritten_json(unwritten, now_ms() - window, now_ms(), None).collect::<Vec<_>>()})
                .to_string()
                .into_bytes(),
        ),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            json!({"error": format!("unknown {}", kind_key(kind)), kind_key(kind): name})
                .to_string()
                .into_bytes(),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("history unavailable: {e}")),
    }
}

/// Minutes still folded in the slot, as the stored ones are written,
/// when inside the window and newer than the last stored minute; the
/// minute of `now_ms` is marked `"partial": true`.
fn unwritten_json(
    unwritten: &[(i64, MinuteAcc)],
    from_ms: i64,
    now_ms: i64,
    last_stored: Option<i64>,
) -> impl Iterator<Item = Value> + '_ {
    let now_minute = now_ms / 60_000;
    unwritten
        .iter()
        .filter(move |(m, acc)| {
            *m >= from_ms / 60_000
                && *m <= now_minute
                && last_stored.is_none_or(|l| *m > l)
                && acc.worst.is_some()
        })
        .map(move |(m, acc)| {
            json!({
                "at": rfc3339_ms(m * 60_000),
                "status": acc.worst.map_or("unknown", |s| s.as_str()),
                "polls": acc.polls,
                "latency_ms_max": acc.latency_us_max.map(|us| f64::from(us) / 1000.0),
                "mem_ratio": acc.mem_ratio.map(|r| round6(f64::from(r))),
                "partial": *m == now_minute,
            })
        })
}

fn kind_key(kind: Kind) -> &'static str {
    kind.as_str()
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn cell_char(s: Option<Status>) -> char {
    match s {
        None => '-',
        Some(Status::Ok) => 'o',
        Some(Status::Degraded) => 'g',
        Some(Status::Critical) => 'c',
        Some(Status::Down) => 'd',
    }
}

/// `GET /history/bars`.
pub fn bars(history: &History, p: &Query) -> (StatusCode, Vec<u8>) {
    let (window_text, window) = match window_of(p) {
        Ok(w) => w,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let n_cells = p
        .get("cells")
        .map_or(Ok(96), str::parse::<i64>)
        .ok()
        .filter(|n| (1..=MAX_CELLS).contains(n));
    let Some(n_cells) = n_cells else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("cells: a number from 1 to {MAX_CELLS}"),
        );
    };
    let names: Vec<&str> = p.all_of("name").collect();
    if names.len() > MAX_BAR_NAMES {
        return error(
            StatusCode::BAD_REQUEST,
            format!("at most {MAX_BAR_NAMES} names"),
        );
    }
    let result = (|| -> rusqlite::Result<Value> {
        let c = history.reader()?;
        let now = now_ms();
        let cell_ms = (window / n_cells).max(1);
        let from = now - cell_ms * n_cells;
        let rs = runs(&c, history, from, now)?;
        let mut out = serde_json::Map::new();
        for name in names {
            let Some(id) = db::subject_id(&c, Kind::Instance, name)? else {
                continue;
            };
            let ts = db::transitions(&c, id, from)?;
            let bar: String = cells(&ts, &rs, from, now, cell_ms)
                .into_iter()
                .map(cell_char)
                .collect();
            out.insert(
                name.to_string(),
                json!({"uptime": share(&ts, &rs, from, now).ratio().map(round6), "cells": bar}),
            );
        }
        Ok(
            json!({"window": window_text, "cells": n_cells, "from": rfc3339_ms(from), "instances": out}),
        )
    })();
    match result {
        Ok(v) => (StatusCode::OK, v.to_string().into_bytes()),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("history unavailable: {e}"),
        ),
    }
}

/// `GET /events`.
pub fn events(history: &History, p: &Query) -> (StatusCode, Vec<u8>) {
    let now = now_ms();
    let since = match p.get("since") {
        None => now - 86_400_000,
        Some(v) => {
            match time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339) {
                Ok(t) => (t.unix_timestamp_nanos() / 1_000_000) as i64,
                Err(e) => return error(StatusCode::BAD_REQUEST, format!("since {v:?}: {e}")),
            }
        }
    };
    let limit = match p.get("limit") {
        None => 100,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_EVENTS).contains(&n) => n,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("limit: a number from 1 to {MAX_EVENTS}"),
                )
            }
        },
    };
    let result = (|| -> rusqlite::Result<Value> {
        let c = history.reader()?;
        let list: Vec<Value> = db::events(&c, since, limit)?
            .iter()
            .map(|t| {
                let mut v = transition_json(t);
                v[kind_key(t.kind)] = json!(t.name);
                v["kind"] = json!(t.kind.as_str());
                v
            })
            .collect();
        Ok(json!({"since": rfc3339_ms(since), "events": list}))
    })();
    match result {
        Ok(v) => (StatusCode::OK, v.to_string().into_bytes()),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("history unavailable: {e}"),
        ),
    }
}
