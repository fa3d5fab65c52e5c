//! Target URLs: `redis://[[user]:password@]host[:port][/db]`, `rediss://`
//! (TLS), the `valkey` synonyms and `unix:///path?db=N`; `[NAME=]URL` specs
//! and instance names. Error messages never repeat the userinfo part, and
//! never depend on the password.

use super::secret::Secret;
use super::text::{percent_decode, query_pairs, Plus};
use std::path::PathBuf;

/// Longest instance name; names appear in URLs and metric labels.
pub const MAX_NAME_LEN: usize = 128;
/// Port assumed when a URL has none.
pub const DEFAULT_PORT: u16 = 6379;

/// Where a target listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A host name or IP literal (an IPv6 one without brackets) and a port.
    Tcp { host: String, port: u16 },
    /// A unix domain socket.
    Unix { path: PathBuf },
}

impl Endpoint {
    /// `host:port` (`[v6]:port`), or `unix:/path`, as shown to operators.
    pub fn display(&self) -> String {
        match self {
            Endpoint::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Endpoint::Tcp { host, port } => format!("{host}:{port}"),
            Endpoint::Unix { path } => format!("unix:{}", path.display()),
        }
    }
}

/// A parsed target URL, before a name is settled.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetUrl {
    pub endpoint: Endpoint,
    /// `rediss://` or `valkeys://`.
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub db: u32,
}

/// What a scheme asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Tcp { tls: bool },
    Unix,
}

const SCHEMES: &str = "redis://, rediss://, valkey://, valkeys:// or unix://";

/// Parse `redis://[[user]:password@]host[:port][/db]`, `rediss://` (TLS),
/// the `valkey://` / `valkeys://` synonyms, and `unix:///path[?db=N]`
/// (also `redis+unix://`). IPv6 literals must be bracketed.
///
/// The userinfo is split off and percent-decoded here (strictly: `%` must
/// be followed by two hex digits); only the rest goes to the URL parser, so
/// no error message repeats the password or depends on it.
pub fn parse_url(url: &str) -> Result<TargetUrl, String> {
    let Some((scheme_text, rest)) = url.split_once("://") else {
        return Err(format!("target URL must start with {SCHEMES}"));
    };
    let scheme = match scheme_text {
        "redis" | "valkey" => Scheme::Tcp { tls: false },
        "rediss" | "valkeys" => Scheme::Tcp { tls: true },
        "unix" | "redis+unix" | "valkey+unix" => Scheme::Unix,
        // Echo a scheme only when it looks like one: anything else before
        // "://" may be a mistyped credential.
        _ if scheme_text.len() <= 12
            && scheme_text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)) =>
        {
            return Err(format!(
                "unknown URL scheme {scheme_text:?}: expected {SCHEMES}"
            ))
        }
        _ => return Err(format!("unknown URL scheme: expected {SCHEMES}")),
    };
    // A unix URL names its path right after "://"; only a URL whose rest
    // does not start with '/' can carry userinfo.
    let at = match scheme {
        Scheme::Unix if rest.starts_with('/') => None,
        _ => rest.rfind('@'),
    };
    let (userinfo, hostpart) = match at {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let Some((user, pass)) = info.split_once(':') else {
                return Err("credentials need a colon: redis://:PASSWORD@host or redis://USER:PASSWORD@host".into());
            };
            let user = percent_decode(user, Plus::Literal)
                .ok_or("user name has a bad percent-encoding")?;
            let pass = percent_decode(pass, Plus::Literal).ok_or(
                "password has a bad percent-encoding (a % must be followed by two hex digits; write % itself as %25)",
            )?;
            (
                Some(user).filter(|u| !u.is_empty()),
                Some(Secret::new(pass)).filter(|p| !p.expose().is_empty()),
            )
        }
    };
    let (endpoint, db) = match scheme {
        Scheme::Unix => parse_unix(hostpart)?,
        Scheme::Tcp { .. } => parse_tcp(hostpart)?,
    };
    Ok(TargetUrl {
        endpoint,
        tls: scheme == Scheme::Tcp { tls: true },
        username,
        password,
        db,
    })
}

/// `host[:port][/db]` of a TCP URL, userinfo already removed.
fn parse_tcp(hostpart: &str) -> Result<(Endpoint, u32), String> {
    let authority_end = hostpart.find(['/', '?', '#']).unwrap_or(hostpart.len());
    let authority = &hostpart[..authority_end];
    if authority.starts_with('[') && !authority.contains(']') {
        return Err("IPv6 host is missing its closing ']'".into());
    }
    if !authority.starts_with('[') && authority.matches(':').count() > 1 {
        // redis://fe80::1 would otherwise read as host "fe80:" port 1.
        let shown = if authority
            .chars()
            .all(|c| c.is_ascii_hexdigit() || ":.%".contains(c))
        {
            format!(": redis://[{authority}]:6379")
        } else {
            String::new()
        };
        return Err(format!(
            "an IPv6 address must be in brackets, with the port after them{shown}"
        ));
    }
    let parsed = url::Url::parse(&format!("redis://{hostpart}")).map_err(|e| match e {
        url::ParseError::EmptyHost => "target URL has no host".to_string(),
        url::ParseError::InvalidPort => {
            let port = authority.rsplit_once(':').map_or("", |(_, p)| p);
            format!("port {port:?} is not a port number (1-65535)")
        }
        url::ParseError::InvalidIpv6Address => format!("{authority:?} is not a valid IPv6 address"),
        url::ParseError::InvalidIpv4Address => format!("{authority:?} is not a valid IPv4 address"),
        url::ParseError::InvalidDomainCharacter => {
            "host has characters a host name cannot have".to_string()
        }
        other => format!("target URL is not valid: {other}"),
    })?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("query strings and fragments are not supported in redis:// URLs".into());
    }
    let host = match parsed.host() {
        None => return Err("target URL has no host".into()),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Domain(d)) => {
            if d.is_empty() {
                return Err("target URL has no host".into());
            }
            if !d
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            {
                return Err(format!("host {d:?} has characters a host name cannot have"));
            }
            d.to_string()
        }
    };
    let port = match parsed.port() {
        None => DEFAULT_PORT,
        Some(0) => return Err("port \"0\" is not a port number (1-65535)".into()),
        Some(p) => p,
    };
    let db = match parsed.path() {
        "" | "/" => 0,
        path => {
            let db = &path[1..];
            db.parse::<u32>()
                .map_err(|_| format!("database {db:?} is not a number"))?
        }
    };
    Ok((Endpoint::Tcp { host, port }, db))
}

/// `/path/to/redis.sock[?db=N]` of a unix URL.
fn parse_unix(hostpart: &str) -> Result<(Endpoint, u32), String> {
    let (path, query) = match hostpart.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (hostpart, None),
    };
    if !path.starts_with('/') || path.len() < 2 {
        return Err("a unix socket URL needs an absolute path: unix:///path/to/redis.sock".into());
    }
    if path.contains('#') {
        return Err("fragments are not supported in unix:// URLs".into());
    }
    let path =
        percent_decode(path, Plus::Literal).ok_or("socket path has a bad percent-encoding")?;
    let mut db = 0;
    for pair in query.into_iter().flat_map(query_pairs) {
        match pair {
            Ok(("db", n)) => {
                db = n
                    .parse::<u32>()
                    .map_err(|_| format!("database {n:?} is not a number"))?
            }
            Ok((key, _)) => {
                return Err(format!(
                    "unix:// URLs take only ?db=N, not {:?}",
                    key.chars().take(32).collect::<String>()
                ))
            }
            Err(e) => return Err(format!("unix:// URL query: {e}")),
        }
    }
    Ok((
        Endpoint::Unix {
            path: PathBuf::from(path),
        },
        db,
    ))
}

/// Check an instance name: URL-safe `[A-Za-z0-9._:-]`, 1 to 128 bytes.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!("instance name must be 1 to {MAX_NAME_LEN} bytes"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(format!(
            "instance name {name:?} has {c:?}; allowed: A-Z a-z 0-9 . _ : -"
        ));
    }
    Ok(())
}

/// Split `[NAME=]URL`. The name, if any, comes before the scheme.
pub fn split_spec(spec: &str) -> (Option<&str>, &str) {
    let scheme_at = spec.find("://").unwrap_or(spec.len());
    match spec[..scheme_at].split_once('=') {
        Some((name, _)) => (Some(name.trim()), spec[name.len() + 1..].trim()),
        None => (None, spec.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_all_parts() {
        let tcp = |host: &str, port| Endpoint::Tcp {
            host: host.into(),
            port,
        };
        let u = parse_url("redis://alice:p%40ss:w@cache.example-1:6380/2").unwrap();
        assert_eq!(u.endpoint, tcp("cache.example-1", 6380));
        assert_eq!(u.username.as_deref(), Some("alice"));
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("p@ss:w"));
        assert_eq!((u.db, u.tls), (2, false));
        let v = parse_url("valkey://:secret@[::1]").unwrap();
        assert_eq!((v.endpoint, v.username, v.db), (tcp("::1", 6379), None, 0));
        assert_eq!(v.password.unwrap().expose(), "secret");
        let plain = parse_url("redis://127.0.0.1").unwrap();
        assert_eq!(plain.endpoint, tcp("127.0.0.1", 6379));
        assert_eq!(plain.password, None);
        // TLS schemes, a bracketed IPv6 literal with a port, a host's case.
        let t = parse_url("rediss://:pw@[fe80::1]:6380/1").unwrap();
        assert_eq!((t.endpoint, t.tls, t.db), (tcp("fe80::1", 6380), true, 1));
        assert!(parse_url("valkeys://cache.internal").unwrap().tls);
        assert_eq!(
            parse_url("redis://[2001:DB8::A]")
                .unwrap()
                .endpoint
                .display(),
            "[2001:db8::a]:6379"
        );
        // Unix sockets, with and without ?db.
        let x = parse_url("unix:///run/redis/redis.sock?db=3").unwrap();
        assert_eq!(
            (x.endpoint, x.db, x.tls),
            (
                Endpoint::Unix {
                    path: "/run/redis/redis.sock".into()
                },
                3,
                false
            )
        );
        let y = parse_url("redis+unix:///tmp/r.sock").unwrap();
        assert_eq!(y.endpoint.display(), "unix:/tmp/r.sock");
        let z = parse_url("unix://:pw@/tmp/r.sock").unwrap();
        assert_eq!(z.password.unwrap().expose(), "pw");
    }

    #[test]
    fn percent_decoding_is_strict() {
        // %+1 once decoded to byte 0x01 (from_str_radix takes a sign).
        for bad in ["%+1", "%-1", "%1", "%", "%g0", "%%41"] {
            let url = format!("redis://:a{bad}z@h");
            let e = parse_url(&url).unwrap_err();
            assert!(e.contains("percent-encoding"), "{bad}: {e}");
        }
        let ok = parse_url("redis://:%41%2b%25@h").unwrap();
        assert_eq!(ok.password.unwrap().expose(), "A+%");
    }

    #[test]
    fn unbracketed_ipv6_is_an_error_that_shows_the_brackets() {
        for url in ["redis://fe80::1", "redis://fe80::1:6379", "rediss://::1"] {
            let e = parse_url(url).unwrap_err();
            assert!(e.contains("brackets"), "{url}: {e}");
        }
        let e = parse_url("redis://fe80::1").unwrap_err();
        assert!(e.contains("redis://[fe80::1]:6379"), "{e}");
        assert!(parse_url("redis://[fe80::zz]")
            .unwrap_err()
            .contains("IPv6"));
    }

    #[test]
    fn bad_urls_say_why_without_the_password() {
        for (url, fragment) in [
            ("http://h", "scheme"),
            ("redis://h:0", "port"),
            ("redis://h:99999", "port"),
            ("redis://h:x", "port"),
            ("redis://", "no host"),
            ("redis://:hunter2@", "no host"),
            ("redis://hunter2@h", "colon"),
            ("redis://:a%zzhunter2@h", "percent"),
            ("redis://h/x", "database"),
            ("redis://h?x=1", "query"),
            ("redis://[::1", "]"),
            ("redis://h o", "host"),
            ("127.0.0.1:6379", "redis://"),
            ("unix://:hunter2@relative.sock", "absolute"),
            ("unix:///tmp/r.sock?db=x", "database"),
            ("unix:///tmp/r.sock?timeout=1", "only ?db"),
            // Found by the target_url fuzzer: the text before "://" was
            // echoed, and it may hold a credential.
            (
                "re`iss/:/:hunter2hunter2lBBBc$cs://:hunter2hunter2@BBBB2``",
                "scheme",
            ),
        ] {
            let e = parse_url(url).unwrap_err();
            assert!(e.contains(fragment), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{url}: password leaked in {e}");
        }
    }

    #[test]
    fn errors_do_not_depend_on_the_password() {
        // Inputs from the target_url fuzzer: a password that is a piece of
        // an error's own text, and one before a second "://".
        for (url, other) in [
            (
                "redis://0ssis:arget URL has n@",
                "redis://0ssis:xxxxxxxxxxxxxxx@",
            ),
            (
                "re`iss/:/:hunvaBBBlBBBBBBBBBc$cs://:hunvaBBB@BBBB2``",
                "re`iss/:/:hunvaBBBlBBBBBBBBBc$cs://:xxxxxxxx@BBBB2``",
            ),
            ("redis://:secret@h:0", "redis://:xxxxxx@h:0"),
            // Characters that end a URL's authority, inside the password.
            ("redis://:a/b?c#d@h:x", "redis://:xxxxxxx@h:x"),
            ("rediss://:[::1]@fe80::1", "rediss://:xxxxx@fe80::1"),
        ] {
            assert_eq!(
                parse_url(url).unwrap_err(),
                parse_url(other).unwrap_err(),
                "{url}"
            );
        }
    }

    #[test]
    fn secret_debug_hides_the_password() {
        let t = parse_url("redis://:hunter2@h").unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    #[test]
    fn spec_splits_name_before_scheme_only() {
        assert_eq!(split_spec("local=redis://h"), (Some("local"), "redis://h"));
        assert_eq!(split_spec("redis://:a=b@h"), (None, "redis://:a=b@h"));
        assert_eq!(
            split_spec("x=redis://:a=b@h"),
            (Some("x"), "redis://:a=b@h")
        );
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("cache-eu-1.x_y:6379").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name(&"a".repeat(129)).is_err());
    }
}
