//! Notifications: each transition that a `[[notify]]` receiver wants is
//! stored as a pending delivery in the history database, in the same
//! transaction as the transition, and sent by that receiver's own task:
//! in order, retried with backoff until `retry_for` is up, resent after a
//! restart while still pending. Every delivery carries an `id` that stays
//! the same across retries and restarts, so receivers can deduplicate.
//! One receiver's task never waits for another's, nor for a poll or an
//! HTTP answer.
//!
//! Formats: `json` (the transition as an object), `slack` (a `text`
//! message for an incoming webhook), `alertmanager` (POST
//! `{url}/api/v2/alerts` with one alert per subject, `endsAt` set when it
//! recovers).

use super::{now_ms, rfc3339_ms, History};
use crate::config::{Labels, NotifyFormat, NotifySpec};
use crate::judge::outcome::Status;
use crate::net::http_client::{Client, Origin};
use crate::state::record::Kind;
use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE, USER_AGENT};
use hyper::Method;
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

/// A transition as the writer found it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub kind: Kind,
    pub name: Arc<str>,
    pub at_ms: i64,
    pub from: Option<Status>,
    pub to: Status,
    pub reason: Option<&'static str>,
    pub error: Option<Arc<str>>,
    pub labels: Option<Arc<Labels>>,
}

/// First retry delay; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// One attempt's deadline: connect, send, and the answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an idle sender looks for work it was not woken for.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Every receiver, how to wake their senders, and a kept-alive client of
/// each (a receiver's connection is its own).
#[derive(Debug)]
pub struct Notifier {
    receivers: Vec<NotifySpec>,
    wake: Vec<Arc<Notify>>,
    clients: Vec<Client>,
}

impl Notifier {
    /// A notifier for `receivers`; nothing is sent before [`Notifier::start`].
    pub fn new(receivers: Vec<NotifySpec>) -> Notifier {
        let wake = receivers.iter().map(|_| Arc::new(Notify::new())).collect();
        let clients = receivers
            .iter()
            .map(|r| {
                let origin = Origin {
                    host: r.url.host.clone(),
                    port: r.url.port,
                    tls: r.url.tls.clone(),
                };
                // One delivery at a time per receiver, in order.
                Client::new(origin, 1)
            })
            .collect();
        Notifier {
            receivers,
            wake,
            clients,
        }
    }

    /// Store a pending delivery for every receiver that wants `e`.
    pub fn enqueue(&self, tx: &Transaction<'_>, e: &Event) -> rusqlite::Result<()> {
        for r in &self.receivers {
            if !wants(r, e) {
                continue;
            }
            let id = format!(
                "{}:{}/{}@{}:{}",
                r.name,
                e.kind.as_str(),
                e.name,
                e.at_ms,
                e.to.as_str()
            );
            let payload = payload(r, e, &id);
            tx.execute(
                "INSERT OR IGNORE INTO notifications \
                 (id, receiver, seq, payload, created_ms, deadline_ms, attempts, next_ms, done) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?5, 0)",
                params![
                    id,
                    r.name,
                    e.at_ms,
                    payload,
                    now_ms(),
                    now_ms() + r.retry_for.as_millis() as i64
                ],
            )?;
        }
        Ok(())
    }

    /// Wake every sender (after a commit).
    pub fn wake(&self) {
        for w in &self.wake {
            w.notify_one();
        }
    }

    /// Start one sender task per receiver on the current runtime.
    pub fn start(self: &Arc<Self>, history: Arc<History>) {
        for i in 0..self.receivers.len() {
            tokio::spawn(send_loop(self.clone(), i, history.clone()));
        }
    }
}

/// Whether receiver `r` is told about `e`: entering `min_status` or worse,
/// or leaving it (for the better), for a subject whose labels match.
pub fn wants(r: &NotifySpec, e: &Event) -> bool {
    let bad = |s: Status| s as u8 >= r.min_level;
    let entering = bad(e.to) && e.from.is_none_or(|f| !bad(f) || f != e.to);
    let leaving = e.from.is_some_and(bad) && !bad(e.to);
    if !(entering || leaving) {
        return false;
    }
    r.labels.iter().all(|(k, v)| {
        e.labels
            .as_deref()
            .and_then(|l| l.get(k))
            .is_some_and(|have| have == v)
    })
}

/// The body sent to `r` for `e`.
pub fn payload(r: &NotifySpec, e: &Event, id: &str) -> String {
    let labels = e.labels.as_deref().cloned().unwrap_or_default();
    match r.format {
        NotifyFormat::Json => json!({
            "id": id,
            "kind": e.kind.as_str(),
            "name": &*e.name,
            "at": rfc3339_ms(e.at_ms),
            "from": e.from.map(|s| s.as_str()),
            "to": e.to.as_str(),
            "reason": e.reason,
            "error": e.error.as_deref(),
            "labels": labels,
        })
        .to_string(),
        NotifyFormat::Slack => {
            let icon = match e.to {
                Status::Ok => ":white_check_mark:",
                Status::Degraded => ":warning:",
                Status::Critical | Status::Down => ":rotating_light:",
            };
            let mut text = format!(
                "{icon} {} *{}* is *{}*",
                e.kind.as_str(),
                e.name,
                e.to.as_str()
            );
            if let Some(from) = e.from {
                text.push_str(&format!(" (was {})", from.as_str()));
            }
            if let Some(r) = e.reason {
                text.push_str(&format!(": {r}"));
            }
            if let Some(err) = &e.error {
                text.push_str(&format!(" ({err})"));
            }
            text.push_str(&format!(" at {}", rfc3339_ms(e.at_ms)));
            json!({ "text": text, "id": id }).to_string()
        }
        NotifyFormat::Alertmanager => {
            // One alert per subject: the same labels when it fires and
            // when it resolves, so Alertmanager pairs them.
            let mut alert_labels = serde_json::Map::new();
            alert_labels.insert("alertname".into(), json!("RedpulseNotOk"));
            alert_labels.insert("kind".into(), json!(e.kind.as_str()));
            alert_labels.insert(
                match e.kind {
                    Kind::Instance => "instance",
                    Kind::Cluster | Kind::Group => "group",
                    Kind::Heartbeat => "heartbeat",
                }
                .into(),
                json!(&*e.name),
            );
            for (k, v) in &labels {
                alert_labels.entry(k.clone()).or_insert(json!(v));
            }
            let resolved = (e.to as u8) < r.min_level;
            let mut alert = json!({
                "labels": alert_labels,
                "annotations": {
                    "summary": format!("{} {} is {}", e.kind.as_str(), e.name, e.to.as_str()),
                    "status": e.to.as_str(),
                    "reason": e.reason.unwrap_or(""),
                    "error": e.error.as_deref().unwrap_or(""),
                    "id": id,
                },
                "startsAt": rfc3339_ms(e.at_ms),
                "generatorURL": format!("redpulse:/health/{}/{}", e.kind.as_str(), e.name),
            });
            if resolved {
                alert["endsAt"] = json!(rfc3339_ms(e.at_ms));
            }
            json!([alert]).to_string()
        }
    }
}

/// Deliver receiver `i`'s pending notifications, oldest first, forever.
async fn send_loop(n: Arc<Notifier>, i: usize, history: Arc<History>) {
    let r = &n.receivers[i];
    let mut backoff = FIRST_BACKOFF;
    loop {
        let next = {
            let history = history.clone();
            let name = r.name.clone();
            tokio::task::spawn_blocking(move || oldest_pending(&history, &name))
                .await
                .ok()
                .and_then(Result::ok)
                .flatten()
        };
        let Some(p) = next else {
            let _ = tokio::time::timeout(IDLE_CHECK, n.wake[i].notified()).await;
            continue;
        };
        let now = now_ms();
        if now > p.deadline_ms {
            warn!(receiver = %r.name, id = %p.id, attempts = p.attempts, "notification given up after retry_for");
            history
                .notifications_expired
                .fetch_add(1, Ordering::Relaxed);
            mark(&history, &p.id, 2, p.attempts, now).await;
            continue;
        }
        if p.next_ms > now {
            let wait = Duration::from_millis((p.next_ms - now) as u64);
            let _ = tokio::time::timeout(wait, std::future::pending::<()>()).await;
            continue;
        }
        match post(&n.clients[i], r, p.payload.clone()).await {
            Ok(()) => {
                debug!(receiver = %r.name, id = %p.id, "notification sent");
                history.notifications_sent.fetch_add(1, Ordering::Relaxed);
                mark(&history, &p.id, 1, p.attempts + 1, now).await;
                backoff = FIRST_BACKOFF;
            }
            Err(why) => {
                let next = now + backoff.as_millis() as i64;
                if p.attempts == 0 || (p.attempts + 1) % 10 == 0 {
                    info!(receiver = %r.name, id = %p.id, attempts = p.attempts + 1, error = %why, "notification failed; will retry");
                }
                mark(&history, &p.id, 0, p.attempts + 1, next).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[derive(Debug)]
struct Pending {
    id: String,
    payload: String,
    attempts: i64,
    next_ms: i64,
    deadline_ms: i64,
}

fn oldest_pending(history: &History, receiver: &str) -> rusqlite::Result<Option<Pending>> {
    let c = history.reader()?;
    c.query_row(
        "SELECT id, payload, attempts, next_ms, deadline_ms FROM notifications \
         WHERE receiver = ?1 AND done = 0 ORDER BY seq, rowid LIMIT 1",
        [receiver],
        |r| {
            Ok(Pending {
                id: r.get(0)?,
                payload: r.get(1)?,
                attempts: r.get(2)?,
                next_ms: r.get(3)?,
                deadline_ms: r.get(4)?,
            })
        },
    )
    .optional()
}

/// Record an attempt's outcome: done 1 sent, 2 given up, 0 retry at `next_ms`.
async fn mark(history: &Arc<History>, id: &str, done: i64, attempts: i64, next_ms: i64) {
    let history = history.clone();
    let id = id.to_string();
    let result = tokio::task::spawn_blocking(move || -> rusqlite::Result<()> {
        let c = history.writer_connection()?;
        c.execute(
            "UPDATE notifications SET done = ?2, attempts = ?3, next_ms = ?4 WHERE id = ?1",
            params![id, done, attempts, next_ms],
        )?;
        Ok(())
    })
    .await;
    if let Ok(Err(e)) = result {
        warn!(error = %e, "cannot record a notification attempt");
    }
}

/// Largest answer read from a receiver: its body is only drained, so the
/// kept-alive connection can serve the next delivery.
const MAX_RECEIVER_ANSWER: usize = 1 << 20;

/// One POST of `body` to the receiver over its client; Ok on a 2xx answer.
/// Errors name the receiver's host and port only: its path may hold a
/// token.
async fn post(client: &Client, r: &NotifySpec, body: String) -> Result<(), String> {
    let path = match r.format {
        NotifyFormat::Alertmanager => {
            format!("{}/api/v2/alerts", r.url.path.trim_end_matches('/'))
        }
        _ => r.url.path.clone(),
    };
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (USER_AGENT, HeaderValue::from_static("redpulse")),
    ];
    let answer = client
        .call(
            &Method::POST,
            if path.is_empty() { "/" } else { &path },
            &headers,
            Bytes::from(body),
            ATTEMPT_TIMEOUT,
            MAX_RECEIVER_ANSWER,
        )
        .await?;
    if answer.status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", answer.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NotifyUrl, DEFAULT_RETRY_FOR};

    fn spec(format: NotifyFormat, min: Status, labels: &[(&str, &str)]) -> NotifySpec {
        let min_level = min as u8;
        NotifySpec {
            name: "r".into(),
            url: NotifyUrl::parse("http://127.0.0.1:9/hook").unwrap(),
            format,
            min_level,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            retry_for: DEFAULT_RETRY_FOR,
        }
    }

    fn event(from: Option<Status>, to: Status, team: Option<&str>) -> Event {
        Event {
            kind: Kind::Instance,
            name: "cache-1".into(),
            at_ms: 1_800_000_000_000,
            from,
            to,
            reason: Some("timeout"),
            error: None,
            labels: team.map(|t| Arc::new([("team".to_string(), t.to_string())].into())),
        }
    }

    #[test]
    fn receivers_get_entering_and_leaving_their_level() {
        use Status::*;
        let r = spec(NotifyFormat::Json, Critical, &[]);
        assert!(wants(&r, &event(Some(Ok), Down, None)));
        assert!(wants(&r, &event(Some(Down), Ok, None)));
        assert!(
            wants(&r, &event(None, Critical, None)),
            "a first verdict that is bad"
        );
        assert!(
            wants(&r, &event(Some(Critical), Down, None)),
            "worse within the level"
        );
        assert!(!wants(&r, &event(Some(Ok), Degraded, None)));
        assert!(!wants(&r, &event(None, Ok, None)));
        let team = spec(NotifyFormat::Json, Degraded, &[("team", "a")]);
        assert!(wants(&team, &event(Some(Ok), Down, Some("a"))));
        assert!(!wants(&team, &event(Some(Ok), Down, Some("b"))));
        assert!(!wants(&team, &event(Some(Ok), Down, None)));
    }

    #[test]
    fn payloads_carry_the_id_and_alertmanager_resolves() {
        use Status::*;
        let am = spec(NotifyFormat::Alertmanager, Critical, &[]);
        let fire: serde_json::Value =
            serde_json::from_str(&payload(&am, &event(Some(Ok), Down, Some("a")), "x1")).unwrap();
        assert_eq!(fire[0]["labels"]["alertname"], "RedpulseNotOk");
        assert_eq!(fire[0]["labels"]["instance"], "cache-1");
        assert_eq!(fire[0]["labels"]["team"], "a");
        assert!(fire[0].get("endsAt").is_none());
        let resolve: serde_json::Value =
            serde_json::from_str(&payload(&am, &event(Some(Down), Ok, Some("a")), "x2")).unwrap();
        assert_eq!(resolve[0]["labels"], fire[0]["labels"], "same alert");
        assert_eq!(resolve[0]["endsAt"], "2027-01-15T08:00:00.000Z");
        let j: serde_json::Value = serde_json::from_str(&payload(
            &spec(NotifyFormat::Json, Critical, &[]),
            &event(None, Down, None),
            "x3",
        ))
        .unwrap();
        assert_eq!(
            (j["id"].as_str(), j["from"].is_null(), j["to"].as_str()),
            (Some("x3"), true, Some("down"))
        );
        let s: serde_json::Value = serde_json::from_str(&payload(
            &spec(NotifyFormat::Slack, Critical, &[]),
            &event(Some(Ok), Down, None),
            "x4",
        ))
        .unwrap();
        assert!(s["text"]
            .as_str()
            .unwrap()
            .contains("*cache-1* is *down* (was ok): timeout"));
    }
}
