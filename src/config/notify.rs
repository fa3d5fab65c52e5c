//! `[[notify]]` receivers: where transitions are POSTed, in which format,
//! for which statuses and labels, and for how long a failing delivery is
//! retried.

use super::labels::{self, Labels};
use super::tls::{TlsCache, TlsTable, TlsTarget};
use std::time::Duration;

/// Status names in order, as `min_status` takes them.
pub const LEVELS: [&str; 4] = ["ok", "degraded", "critical", "down"];

/// Retried this long unless configured.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(600);

/// The body a receiver gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyFormat {
    Json,
    Slack,
    Alertmanager,
}

/// An `http://` or `https://` URL, split for a client that needs no more.
/// Its text is a secret (webhook URLs carry tokens): never logged.
#[derive(Clone, PartialEq)]
pub struct NotifyUrl {
    pub host: String,
    pub port: u16,
    /// Path and query, `/` at least.
    pub path: String,
    pub tls: Option<TlsTarget>,
}

impl std::fmt::Debug for NotifyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NotifyUrl({}:{}/***)", self.host, self.port)
    }
}

impl NotifyUrl {
    /// Parse; https gets the system roots.
    pub fn parse(text: &str) -> Result<NotifyUrl, String> {
        let u = url::Url::parse(text).map_err(|e| format!("url: {e}"))?;
        let tls = match u.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(format!("url: scheme {other:?}: use http or https")),
        };
        if !u.username().is_empty() || u.password().is_some() {
            return Err("url: put credentials in the path or query, not user:password@".into());
        }
        let host = match u.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => return Err("url: no host".into()),
        };
        let port = u
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let mut path = u.path().to_string();
        if let Some(q) = u.query() {
            path.push('?');
            path.push_str(q);
        }
        let tls = if tls {
            Some(TlsCache::default().target(&TlsTable::default(), &host)?)
        } else {
            None
        };
        Ok(NotifyUrl {
            host,
            port,
            path,
            tls,
        })
    }
}

/// One receiver.
#[derive(Clone, Debug, PartialEq)]
pub struct NotifySpec {
    pub name: String,
    pub url: NotifyUrl,
    pub format: NotifyFormat,
    /// Transitions into this status or worse, and out of it, are sent:
    /// 0 ok, 1 degraded, 2 critical, 3 down (the status order).
    pub min_level: u8,
    /// Only subjects with all these labels.
    pub labels: Labels,
    pub retry_for: Duration,
}

/// A `[[notify]]` as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileNotify {
    pub name: String,
    pub url: String,
    pub format: Option<String>,
    pub min_status: Option<String>,
    #[serde(default)]
    pub labels: Labels,
    pub retry_for: Option<String>,
}

impl FileNotify {
    pub(crate) fn build(&self) -> Result<NotifySpec, String> {
        let format = match self.format.as_deref().unwrap_or("json") {
            "json" => NotifyFormat::Json,
            "slack" => NotifyFormat::Slack,
            "alertmanager" => NotifyFormat::Alertmanager,
            other => {
                return Err(format!(
                    "format {other:?}: expected json, slack or alertmanager"
                ))
            }
        };
        let s = self.min_status.as_deref().unwrap_or("critical");
        let min_level =
            LEVELS.iter().position(|x| *x == s).ok_or_else(|| {
                format!("min_status {s:?}: expected ok, degraded, critical or down")
            })? as u8;
        let retry_for = match &self.retry_for {
            Some(d) => super::parse_duration(d).map_err(|e| format!("retry_for: {e}"))?,
            None => DEFAULT_RETRY_FOR,
        };
        labels::validate(&self.labels)?;
        Ok(NotifySpec {
            name: self.name.clone(),
            url: NotifyUrl::parse(&self.url)?,
            format,
            min_level,
            labels: self.labels.clone(),
            retry_for,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_settings_are_checked_without_showing_the_url() {
        let u = NotifyUrl::parse("http://127.0.0.1:9093/hooks/T0KEN?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 9093, "/hooks/T0KEN?x=1")
        );
        assert!(!format!("{u:?}").contains("T0KEN"));
        assert!(NotifyUrl::parse("https://hooks.example/abc")
            .unwrap()
            .tls
            .is_some());
        assert!(NotifyUrl::parse("ftp://x/").is_err());
        assert!(NotifyUrl::parse("http://u:p@x/").is_err());
        let f = |format: &str, min: &str| FileNotify {
            name: "n".into(),
            url: "http://127.0.0.1:1/".into(),
            format: Some(format.into()),
            min_status: Some(min.into()),
            labels: Labels::new(),
            retry_for: None,
        };
        assert!(f("json", "critical").build().is_ok());
        assert!(f("xml", "critical").build().unwrap_err().contains("format"));
        assert!(f("json", "bad").build().unwrap_err().contains("min_status"));
    }
}
