//! Target URLs: `redis://[[user]:password@]host[:port][/db]` (and
//! `valkey://`), `[NAME=]URL` specs and instance names. Error messages never
//! repeat the userinfo part, and never depend on the password.

use super::secret::Secret;

/// Longest instance name; names appear in URLs and metric labels.
pub const MAX_NAME_LEN: usize = 128;
/// Port assumed when a URL has none.
pub const DEFAULT_PORT: u16 = 6379;

/// A parsed target URL, before a name is settled.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetUrl {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub db: u32,
}

/// Parse `redis://[[user]:password@]host[:port][/db]` (also `valkey://`).
/// Error messages never repeat the userinfo part, which holds the password.
pub fn parse_url(url: &str) -> Result<TargetUrl, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("target URL must start with redis:// or valkey://".into());
    };
    match scheme {
        "redis" | "valkey" => {}
        "rediss" | "valkeys" => {
            return Err(format!(
            "{scheme}:// (TLS) targets are not supported yet; use redis:// on a trusted network"
        ))
        }
        // Echo a scheme only when it looks like one: anything else before
        // "://" may be a mistyped credential.
        _ if scheme.len() <= 10
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)) =>
        {
            return Err(format!(
                "unknown URL scheme {scheme:?}: expected redis:// or valkey://"
            ))
        }
        _ => return Err("unknown URL scheme: expected redis:// or valkey://".into()),
    }
    let (userinfo, hostpart) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let Some((user, pass)) = info.split_once(':') else {
                return Err("credentials need a colon: redis://:PASSWORD@host or redis://USER:PASSWORD@host".into());
            };
            let user = percent_decode(user).ok_or("user name has a bad percent-encoding")?;
            let pass = percent_decode(pass).ok_or("password has a bad percent-encoding")?;
            (
                Some(user).filter(|u| !u.is_empty()),
                Some(Secret::new(pass)).filter(|p| !p.expose().is_empty()),
            )
        }
    };
    if hostpart.contains('?') || hostpart.contains('#') {
        return Err("query strings and fragments are not supported in target URLs".into());
    }
    let (authority, db) = match hostpart.split_once('/') {
        Some((a, "")) => (a, 0),
        Some((a, db)) => (
            a,
            db.parse::<u32>()
                .map_err(|_| format!("database {db:?} is not a number"))?,
        ),
        None => (hostpart, 0),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err("IPv6 host is missing its closing ']'".into());
        };
        let port = match after {
            "" => DEFAULT_PORT,
            p => parse_port(p.strip_prefix(':').ok_or("junk after IPv6 host")?)?,
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), parse_port(p)?),
            None => (authority.to_string(), DEFAULT_PORT),
        }
    };
    if host.is_empty() {
        return Err("target URL has no host".into());
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
    {
        return Err(format!(
            "host {host:?} has characters a host name cannot have"
        ));
    }
    Ok(TargetUrl {
        host,
        port,
        username,
        password,
        db,
    })
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("port {p:?} is not a port number (1-65535)")),
        Ok(n) => Ok(n),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
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
        let u = parse_url("redis://alice:p%40ss:w@cache.example-1:6380/2").unwrap();
        assert_eq!(u.host, "cache.example-1");
        assert_eq!(u.port, 6380);
        assert_eq!(u.username.as_deref(), Some("alice"));
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("p@ss:w"));
        assert_eq!(u.db, 2);
        let v = parse_url("valkey://:secret@[::1]").unwrap();
        assert_eq!(
            (v.host.as_str(), v.port, v.username, v.db),
            ("::1", 6379, None, 0)
        );
        assert_eq!(v.password.unwrap().expose(), "secret");
        let plain = parse_url("redis://127.0.0.1").unwrap();
        assert_eq!((plain.port, plain.password), (6379, None));
    }

    #[test]
    fn bad_urls_say_why_without_the_password() {
        for (url, fragment) in [
            ("http://h", "scheme"),
            ("rediss://:hunter2@h", "TLS"),
            ("redis://h:0", "port"),
            ("redis://h:99999", "port"),
            ("redis://", "no host"),
            ("redis://hunter2@h", "colon"),
            ("redis://:a%zzhunter2@h", "percent"),
            ("redis://h/x", "database"),
            ("redis://h?x=1", "query"),
            ("redis://[::1", "]"),
            ("127.0.0.1:6379", "redis://"),
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
