//! Every path redpulse answers, parsed once into a [`Route`], and the query
//! string parsed once into a [`Query`]. What a route is asked by the rest
//! of the HTTP side lives here and nowhere else: which methods it takes
//! (a 405's `Allow`), which class of caller it serves (the one place an
//! authentication layer decides), which shard owns it, and whether it is a
//! shard-wide view.

use crate::config::labels::parse_filter;
use crate::config::text::query_pairs;
use crate::state::record::Kind;
use hyper::Method;

/// A known path, with the name it carries. A name is everything after its
/// prefix, slashes included; an unknown name is the handler's 404, with the
/// name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/healthz`, `/-/healthy`: the process is alive.
    Healthz,
    /// `/readyz`, `/-/ready`: every instance has a verdict.
    Readyz,
    /// `/metrics`.
    Metrics,
    /// `/`: the HTML status page.
    StatusPage,
    /// `/health/redis`.
    Fleet,
    /// `/health/redis/{name}`.
    Instance(&'a str),
    /// `/health/tcp/{name}`.
    Tcp(&'a str),
    /// `/health/heartbeat/{name}`.
    HeartbeatHealth(&'a str),
    /// `/heartbeat/{name}`: a ping.
    HeartbeatPing(&'a str),
    /// `/health/cluster/{name}`.
    Cluster(&'a str),
    /// `/health/clusters`.
    Clusters,
    /// `/health/group/{name}`.
    Group(&'a str),
    /// `/health/groups`.
    Groups,
    /// `/history/{redis,cluster,group,heartbeat}/{name}`.
    History(Kind, &'a str),
    /// `/history/bars`.
    Bars,
    /// `/events`.
    Events,
}

/// Who a route serves, for access control: probes stay open to the
/// orchestrator, reads show the fleet, writes change state (heartbeat
/// pings), and peer calls come from other shards and regions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Liveness and readiness probes.
    Probe,
    /// Views of the fleet, its history and metrics.
    Read,
    /// Requests that change state (heartbeat pings).
    Write,
    /// Calls from other shards and regions.
    Peer,
}

/// A view that every shard answers for its own share and the shard asked
/// merges: `/health/redis`, `/health/clusters`, `/health/groups`,
/// `/history/bars`, `/events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shared {
    /// `/health/redis`.
    Fleet,
    /// `/health/clusters`.
    Clusters,
    /// `/health/groups`.
    Groups,
    /// `/history/bars`.
    Bars,
    /// `/events`.
    Events,
}

impl Shared {
    /// Health views answer 503 when not everything is ok or seen.
    pub fn is_health(self) -> bool {
        matches!(self, Shared::Fleet | Shared::Clusters | Shared::Groups)
    }
}

/// Makes a route from the name after its prefix.
type Named<'a> = fn(&'a str) -> Route<'a>;

const GET_HEAD: &str = "GET, HEAD";
const GET_HEAD_POST: &str = "GET, HEAD, POST";

impl<'a> Route<'a> {
    /// The route of `path`, or None (404).
    pub fn parse(path: &'a str) -> Option<Route<'a>> {
        Some(match path {
            "/healthz" | "/-/healthy" => Route::Healthz,
            "/readyz" | "/-/ready" => Route::Readyz,
            "/metrics" => Route::Metrics,
            "/" => Route::StatusPage,
            "/health/redis" => Route::Fleet,
            "/health/clusters" => Route::Clusters,
            "/health/groups" => Route::Groups,
            "/history/bars" => Route::Bars,
            "/events" => Route::Events,
            _ => {
                let named: [(&str, Named<'a>); 10] = [
                    ("/health/redis/", Route::Instance),
                    ("/health/tcp/", Route::Tcp),
                    ("/health/heartbeat/", Route::HeartbeatHealth),
                    ("/health/cluster/", Route::Cluster),
                    ("/health/group/", Route::Group),
                    ("/heartbeat/", Route::HeartbeatPing),
                    ("/history/redis/", |n| Route::History(Kind::Instance, n)),
                    ("/history/cluster/", |n| Route::History(Kind::Cluster, n)),
                    ("/history/group/", |n| Route::History(Kind::Group, n)),
                    ("/history/heartbeat/", |n| {
                        Route::History(Kind::Heartbeat, n)
                    }),
                ];
                named
                    .iter()
                    .find_map(|(prefix, make)| path.strip_prefix(prefix).map(make))?
            }
        })
    }

    /// The methods this route answers, as a 405's `Allow` says them.
    pub fn allow(self) -> &'static str {
        match self {
            Route::HeartbeatPing(_) => GET_HEAD_POST,
            _ => GET_HEAD,
        }
    }

    /// Whether `method` is one [`Route::allow`] lists.
    pub fn allows(self, method: &Method) -> bool {
        *method == Method::GET
            || *method == Method::HEAD
            || (*method == Method::POST && self.allow() == GET_HEAD_POST)
    }

    /// The class of caller this request serves: a request another shard
    /// forwarded, or a region asking for `?local=1`, is a peer's whatever
    /// its path.
    pub fn class(self, from_peer: bool) -> Class {
        match self {
            Route::Healthz | Route::Readyz => Class::Probe,
            _ if from_peer => Class::Peer,
            Route::HeartbeatPing(_) => Class::Write,
            _ => Class::Read,
        }
    }

    /// The name whose shard answers this route (instances, clusters,
    /// groups, heartbeats and their history); None for a route every
    /// shard answers itself.
    pub fn owner_key(self) -> Option<&'a str> {
        let name = match self {
            Route::Instance(n)
            | Route::Tcp(n)
            | Route::HeartbeatHealth(n)
            | Route::HeartbeatPing(n)
            | Route::Cluster(n)
            | Route::Group(n)
            | Route::History(_, n) => n,
            _ => return None,
        };
        (!name.is_empty()).then_some(name)
    }

    /// The shard-wide view this route is, if any.
    pub fn gathers(self) -> Option<Shared> {
        Some(match self {
            Route::Fleet => Shared::Fleet,
            Route::Clusters => Shared::Clusters,
            Route::Groups => Shared::Groups,
            Route::Bars => Shared::Bars,
            Route::Events => Shared::Events,
            _ => return None,
        })
    }

    /// Whether the answer may be as large as a whole view or history (a
    /// peer's answer is read up to a larger cap).
    pub fn is_large(self) -> bool {
        matches!(self, Route::History(..)) || self.gathers().is_some()
    }

    /// Whether the answer's JSON names an instance (`"instance"`) rather
    /// than another subject (`"name"`).
    pub fn names_instance(self) -> bool {
        matches!(self, Route::Instance(_) | Route::Tcp(_))
    }
}

/// At most this many label filters in one request.
const MAX_LABEL_FILTERS: usize = 16;

/// A request's query string, decoded once: the flags the health views
/// read, and every pair for the history views.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// `all`: the fleet view lists every instance.
    pub all: bool,
    /// `local=1`: this region's own verdict, no consensus.
    pub local: bool,
    /// `label=k:v` filters; all must match.
    pub labels: Vec<(String, String)>,
    /// Every pair in order, values decoded.
    pub pairs: Vec<(String, String)>,
}

impl Query {
    /// Parse a query string; the error is a one-line reason for a 400.
    pub fn parse(q: &str) -> Result<Query, String> {
        let mut out = Query::default();
        for pair in query_pairs(q) {
            let (k, v) = pair.map_err(|e| e.to_string())?;
            match k {
                "all" => out.all = true,
                "local" => out.local = v != "0",
                "label" => {
                    if out.labels.len() == MAX_LABEL_FILTERS {
                        return Err(format!("at most {MAX_LABEL_FILTERS} label filters"));
                    }
                    out.labels.push(parse_filter(&v)?);
                }
                _ => {}
            }
            out.pairs.push((k.to_string(), v));
        }
        Ok(out)
    }

    /// The first value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value given for `key`, in order.
    pub fn all_of<'q>(&'q self, key: &'q str) -> impl Iterator<Item = &'q str> + 'q {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_parses_to_its_route_and_unknown_ones_to_none() {
        for (path, want) in [
            ("/healthz", Some(Route::Healthz)),
            ("/-/healthy", Some(Route::Healthz)),
            ("/-/ready", Some(Route::Readyz)),
            ("/health/redis/a/b", Some(Route::Instance("a/b"))),
            ("/health/redis/", Some(Route::Instance(""))),
            ("/history/group/g", Some(Route::History(Kind::Group, "g"))),
            ("/history/bars", Some(Route::Bars)),
            ("/history/other/x", None),
            ("/history", None),
            ("/event", None),
            ("/healthz/", None),
            ("", None),
        ] {
            assert_eq!(Route::parse(path), want, "{path}");
        }
    }

    #[test]
    fn methods_classes_owners_and_views_are_said_per_route() {
        let ping = Route::HeartbeatPing("job");
        assert!(ping.allows(&Method::POST) && ping.allows(&Method::HEAD));
        assert!(!ping.allows(&Method::PUT));
        assert!(!Route::Events.allows(&Method::POST));
        assert_eq!(Route::Events.allow(), "GET, HEAD");
        assert_eq!(ping.class(false), Class::Write);
        assert_eq!(ping.class(true), Class::Peer);
        assert_eq!(Route::Readyz.class(true), Class::Probe);
        assert_eq!(Route::Fleet.class(false), Class::Read);
        assert_eq!(ping.owner_key(), Some("job"));
        assert_eq!(Route::Instance("").owner_key(), None);
        assert_eq!(Route::Fleet.owner_key(), None);
        assert_eq!(Route::Events.gathers(), Some(Shared::Events));
        assert_eq!(Route::Instance("a").gathers(), None);
        assert!(Route::History(Kind::Instance, "a").is_large());
        assert!(!Route::Instance("a").is_large());
    }

    #[test]
    fn queries_are_decoded_once() {
        let q = Query::parse("all&label=team%3Apay+x&label=env:prod&name=a&name=b").unwrap();
        assert!(q.all && !q.local);
        assert_eq!(
            q.labels,
            vec![
                ("team".into(), "pay x".into()),
                ("env".into(), "prod".into())
            ]
        );
        assert_eq!(q.all_of("name").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(q.get("name"), Some("a"));
        assert!(Query::parse("local=1").unwrap().local);
        assert!(!Query::parse("local=0").unwrap().local);
        assert!(Query::parse("label=team").is_err());
        assert!(Query::parse("label=%zz").is_err());
        assert!(Query::parse("since=%+1").is_err());
        assert!(Query::parse(&"label=a:b&".repeat(17)).is_err());
    }
}
