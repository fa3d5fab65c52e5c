//! The web configuration file (`--web.config.file`, `web_config_file`):
//! TLS, client certificates, basic auth users, extra headers and a rate
//! limit for redpulse's own HTTP, in the format of the Prometheus
//! exporter-toolkit, so an operator's existing file works unchanged. Read
//! and checked here as the toolkit checks it (unknown keys, ciphers,
//! curves, versions, auth types, headers and non-bcrypt hashes are
//! errors); what rustls cannot offer (CBC and RSA-key-exchange suites,
//! P-521, TLS 1.0/1.1) is dropped with a warning. The certificate and key
//! are loaded by the HTTP side, which watches them for rotation.

use super::text::{read_bounded, shown};
use super::tls::read_pem;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Largest web config file: a few users and PEM blocks fit many times.
const MAX_WEB_CONFIG: u64 = 1 << 20;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileWeb {
    tls_server_config: Option<FileTls>,
    http_server_config: Option<FileHttp>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<FileRateLimit>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileHttp {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileRateLimit {
    interval: Option<serde_yaml_ng::Value>,
    burst: Option<i64>,
}

/// Where a PEM block comes from: a file (read again on every change), or
/// inline in the web config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pem {
    File(PathBuf),
    Inline(String),
}

/// How a client certificate is asked for and judged, as Go's
/// `tls.ClientAuthType` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// None asked for.
    NoClientCert,
    /// Asked for, not required, not verified.
    RequestClientCert,
    /// Required, not verified (any certificate).
    RequireAnyClientCert,
    /// Verified against the client CA when given.
    VerifyClientCertIfGiven,
    /// Required and verified against the client CA.
    RequireAndVerifyClientCert,
}

/// A TLS protocol version redpulse serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// A key-exchange group rustls offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    X25519,
    P256,
    P384,
}

/// A TLS 1.2 cipher suite rustls offers, by Go's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    EcdheEcdsaAes128Gcm,
    EcdheEcdsaAes256Gcm,
    EcdheRsaAes128Gcm,
    EcdheRsaAes256Gcm,
    EcdheEcdsaChacha20,
    EcdheRsaChacha20,
}

/// Go's TLS suite names: those rustls offers, and those it cannot (a
/// file naming them still loads, with a warning).
const SUITES: &[(&str, Option<Suite>)] = &[
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        Some(Suite::EcdheEcdsaAes128Gcm),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        Some(Suite::EcdheEcdsaAes256Gcm),
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        Some(Suite::EcdheRsaAes128Gcm),
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        Some(Suite::EcdheRsaAes256Gcm),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        Some(Suite::EcdheEcdsaChacha20),
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        Some(Suite::EcdheRsaChacha20),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        Some(Suite::EcdheEcdsaChacha20),
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        Some(Suite::EcdheRsaChacha20),
    ),
    // TLS 1.3 suites: accepted, not configurable (as in Go).
    ("TLS_AES_128_GCM_SHA256", None),
    ("TLS_AES_256_GCM_SHA384", None),
    ("TLS_CHACHA20_POLY1305_SHA256", None),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", None),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", None),
];

/// Go's curve names, and whether rustls (ring) offers the group.
const CURVES: &[(&str, Option<Curve>)] = &[
    ("CurveP256", Some(Curve::P256)),
    ("CurveP384", Some(Curve::P384)),
    ("CurveP521", None),
    ("X25519", Some(Curve::X25519)),
];

/// Headers the toolkit lets a file set, and the values it allows (any when
/// empty).
const HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// TLS settings of redpulse's listener.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsServer {
    pub cert: Pem,
    pub key: Pem,
    pub client_auth: ClientAuth,
    /// The CAs client certificates are verified against.
    pub client_ca: Option<Pem>,
    /// A client certificate must carry one of these SANs (DNS, IP, e-mail
    /// or URI), when set.
    pub client_allowed_sans: Option<Vec<String>>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// TLS 1.2 suites in preference order; empty: rustls' defaults.
    pub cipher_suites: Vec<Suite>,
    /// Key-exchange groups in preference order; empty: rustls' defaults.
    pub curves: Vec<Curve>,
    /// The server picks the suite by its own order (Go's default).
    pub prefer_server_cipher_suites: bool,
}

/// A token bucket: one request per `interval`, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub interval: Duration,
    pub burst: u32,
}

/// A checked web config.
#[derive(Clone, Debug, PartialEq)]
pub struct WebConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// None: plain HTTP.
    pub tls: Option<TlsServer>,
    /// Basic auth users and their bcrypt hashes; empty: no basic auth.
    pub users: BTreeMap<String, String>,
    /// `http_server_config.headers`, set on every answer.
    pub headers: Vec<(String, String)>,
    pub rate_limit: Option<RateLimit>,
    /// `http_server_config.http2`: accepted; redpulse serves HTTP/1.1.
    pub http2: bool,
    /// What was accepted but cannot be honoured, one line each.
    pub warnings: Vec<String>,
}

/// Read and check the web config at `path`, with its certificate, key
/// and client CAs. The error is one line naming the file and the key.
pub fn load(path: &Path) -> Result<WebConfig, String> {
    let label = shown(path);
    let at = |what: String| format!("web config {label}: {what}");
    let text = read_bounded(path, MAX_WEB_CONFIG).map_err(|e| at(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let c = parse(&text, dir, path).map_err(at)?;
    if let Some(t) = &c.tls {
        t.keys().map_err(at)?;
        t.client_roots().map_err(at)?;
    }
    Ok(c)
}

impl Pem {
    /// The PEM text: the file's contents, or the inline block.
    pub fn read(&self, key: &str) -> Result<Vec<u8>, String> {
        match self {
            Pem::File(path) => read_pem(path, key),
            Pem::Inline(text) => Ok(text.as_bytes().to_vec()),
        }
    }
}

impl TlsServer {
    /// The certificate chain and its private key, read now and checked to
    /// belong together.
    pub fn keys(&self) -> Result<Arc<CertifiedKey>, String> {
        let cert_pem = self.cert.read("tls_server_config.cert_file")?;
        let key_pem = self.key.read("tls_server_config.key_file")?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or("tls_server_config.cert: no PEM certificate in it")?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
            "tls_server_config.key: no PEM private key in it (PKCS#8, PKCS#1 or SEC1)"
        })?;
        let provider = rustls::crypto::ring::default_provider();
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| format!("tls_server_config.key: {e}"))?;
        let certified = CertifiedKey::new(chain, signing);
        certified
            .keys_match()
            .map_err(|_| "tls_server_config: the key does not match the certificate".to_string())?;
        Ok(Arc::new(certified))
    }

    /// The client CA certificates (empty when none is configured).
    pub fn client_roots(&self) -> Result<Vec<CertificateDer<'static>>, String> {
        let Some(ca) = &self.client_ca else {
            return Ok(Vec::new());
        };
        let pem = ca.read("tls_server_config.client_ca_file")?;
        CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("tls_server_config.client_ca: not valid PEM: {e}"))
    }
}

/// Check the text of a web config whose relative paths resolve from `dir`.
pub fn parse(text: &str, dir: &Path, path: &Path) -> Result<WebConfig, String> {
    // An empty file is an empty config, as in the toolkit.
    let file: FileWeb = if text.trim().is_empty() {
        FileWeb::default()
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string().replace('\n', " "))?
    };
    let mut warnings = Vec::new();
    let mut headers = Vec::new();
    let http = file.http_server_config.unwrap_or_default();
    for (k, v) in http.headers.unwrap_or_default() {
        let Some((_, allowed)) = HEADERS.iter().find(|(name, _)| *name == k) else {
            return Err(format!(
                "http_server_config.headers: HTTP header {k:?} can not be configured"
            ));
        };
        if !allowed.is_empty() && !allowed.contains(&v.as_str()) {
            return Err(format!(
                "http_server_config.headers: invalid value for {k}: expected one of {allowed:?}, got {v:?}"
            ));
        }
        headers.push((k, v));
    }
    let mut users = BTreeMap::new();
    for (user, hash) in file.basic_auth_users.unwrap_or_default() {
        if !is_bcrypt(&hash) {
            // The hash is not shown: a mistake may have put a password here.
            return Err(format!(
                "basic_auth_users: {user:?}: not a bcrypt hash ($2a$, $2b$ or $2y$, as htpasswd -nbB makes)"
            ));
        }
        users.insert(user, hash);
    }
    let rate_limit = match file.rate_limit {
        None => None,
        Some(r) => {
            let interval = match &r.interval {
                None => Duration::ZERO,
                Some(v) => go_duration_value(v).map_err(|e| format!("rate_limit.interval: {e}"))?,
            };
            let burst = r.burst.unwrap_or(0);
            if burst < 0 || burst > u32::MAX as i64 {
                return Err(format!("rate_limit.burst: {burst} is out of range"));
            }
            (!interval.is_zero()).then_some(RateLimit {
                interval,
                burst: burst as u32,
            })
        }
    };
    let tls = match file.tls_server_config {
        Some(t) if tls_enabled(&t) => Some(tls_server(t, dir, &mut warnings)?),
        _ => None,
    };
    Ok(WebConfig {
        path: path.to_path_buf(),
        tls,
        users,
        headers,
        rate_limit,
        http2: http.http2.unwrap_or(true),
        warnings,
    })
}

/// Whether the file asks for TLS at all (the toolkit's `IsEnabled`).
fn tls_enabled(t: &FileTls) -> bool {
    let set = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.is_empty());
    set(&t.cert_file)
        || set(&t.cert)
        || set(&t.key_file)
        || set(&t.key)
        || set(&t.client_ca_file)
        || set(&t.client_ca)
        || set(&t.client_auth_type)
}

fn tls_server(t: FileTls, dir: &Path, warnings: &mut Vec<String>) -> Result<TlsServer, String> {
    let source = |file: &Option<String>, inline: &Option<String>| -> Option<Pem> {
        match (file.as_deref(), inline.as_deref()) {
            (Some(f), _) if !f.is_empty() => Some(Pem::File(dir.join(f))),
            (_, Some(i)) if !i.is_empty() => Some(Pem::Inline(i.to_string())),
            _ => None,
        }
    };
    let cert = source(&t.cert_file, &t.cert)
        .ok_or("tls_server_config: missing one of cert or cert_file")?;
    let key =
        source(&t.key_file, &t.key).ok_or("tls_server_config: missing one of key or key_file")?;
    let client_ca = source(&t.client_ca_file, &t.client_ca);
    let client_auth = match t.client_auth_type.as_deref().unwrap_or("") {
        "" | "NoClientCert" => ClientAuth::NoClientCert,
        "RequestClientCert" => ClientAuth::RequestClientCert,
        "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
        other => {
            return Err(format!(
                "tls_server_config.client_auth_type: invalid ClientAuth {other:?}"
            ))
        }
    };
    if client_ca.is_some() && client_auth == ClientAuth::NoClientCert {
        return Err(
            "tls_server_config: client CA's have been configured without a client_auth_type".into(),
        );
    }
    let version = |key: &str,
                   v: &Option<String>,
                   default: TlsVersion,
                   warnings: &mut Vec<String>| {
        match v.as_deref() {
            None => Ok(default),
            Some("TLS13") => Ok(TlsVersion::Tls13),
            Some("TLS12") => Ok(TlsVersion::Tls12),
            Some(old @ ("TLS10" | "TLS11")) => {
                warnings.push(format!(
                    "tls_server_config.{key}: {old} is not offered; TLS 1.2 is the lowest version redpulse serves"
                ));
                Ok(TlsVersion::Tls12)
            }
            Some(other) => Err(format!(
                "tls_server_config.{key}: unknown TLS version {other:?}"
            )),
        }
    };
    let min_version = version("min_version", &t.min_version, TlsVersion::Tls12, warnings)?;
    let max_version = version("max_version", &t.max_version, TlsVersion::Tls13, warnings)?;
    if min_version > max_version {
        return Err("tls_server_config: min_version is above max_version".into());
    }
    let mut cipher_suites = Vec::new();
    for name in t.cipher_suites.unwrap_or_default() {
        match SUITES.iter().find(|(n, _)| *n == name) {
            None => return Err(format!("tls_server_config.cipher_suites: unknown cipher {name:?}")),
            Some((_, Some(s))) => cipher_suites.push(*s),
            Some((_, None)) if name.starts_with("TLS_AES_") || name.starts_with("TLS_CHACHA20") => {}
            Some((_, None)) => warnings.push(format!(
                "tls_server_config.cipher_suites: {name} is not offered (redpulse's TLS has no CBC or RSA key exchange suites)"
            )),
        }
    }
    let mut curves = Vec::new();
    for name in t.curve_preferences.unwrap_or_default() {
        match CURVES.iter().find(|(n, _)| *n == name) {
            None => {
                return Err(format!(
                    "tls_server_config.curve_preferences: unknown curve {name:?}"
                ))
            }
            Some((_, Some(c))) => curves.push(*c),
            Some((_, None)) => warnings.push(format!(
                "tls_server_config.curve_preferences: {name} is not offered"
            )),
        }
    }
    Ok(TlsServer {
        cert,
        key,
        client_auth,
        client_ca,
        client_allowed_sans: t.client_allowed_sans,
        min_version,
        max_version,
        cipher_suites,
        curves,
        prefer_server_cipher_suites: t.prefer_server_cipher_suites.unwrap_or(true),
    })
}

/// Whether `hash` has the shape of a bcrypt hash: `$2a$`, `$2b$`, `$2x$`
/// or `$2y$`, a cost from 04 to 31, and 53 characters of bcrypt's base64
/// (22 of salt, 31 of hash), as Go's `bcrypt.Cost` accepts.
pub fn is_bcrypt(hash: &str) -> bool {
    let b = hash.as_bytes();
    let alphabet = |c: &u8| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/';
    b.len() == 60
        && b.starts_with(b"$2")
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[6] == b'$'
        && std::str::from_utf8(&b[4..6])
            .ok()
            .and_then(|c| c.parse::<u32>().ok())
            .is_some_and(|c| (4..=31).contains(&c))
        && b[7..].iter().all(alphabet)
}

/// A YAML value as Go's yaml.v2 reads a `time.Duration`: a string in Go's
/// syntax, or an integer of nanoseconds.
fn go_duration_value(v: &serde_yaml_ng::Value) -> Result<Duration, String> {
    match v {
        serde_yaml_ng::Value::String(s) => go_duration(s),
        serde_yaml_ng::Value::Number(n) => n
            .as_u64()
            .map(Duration::from_nanos)
            .ok_or_else(|| format!("{n} is not a duration")),
        _ => Err("expected a duration such as 1s or 100ms".into()),
    }
}

/// Go's `time.ParseDuration`: a sequence of decimal numbers with units
/// (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), e.g. `1m30s`, `1.5s`; negative
/// durations are refused.
pub fn go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration such as 1s or 100ms");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * nanos;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<WebConfig, String> {
        parse(
            text,
            Path::new("/etc/redpulse"),
            Path::new("/etc/redpulse/web.yml"),
        )
    }

    /// The exporter-toolkit's own dummy hash (cost 10).
    const HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

    #[test]
    fn an_empty_file_is_plain_http_without_auth() {
        let c = check("").unwrap();
        assert_eq!(
            (c.tls, c.users.len(), c.rate_limit, c.http2),
            (None, 0, None, true)
        );
    }

    #[test]
    fn every_key_of_the_format_is_read_with_its_meaning() {
        let c = check(&format!(
            "tls_server_config:\n  cert_file: tls/server.crt\n  key: |\n    -----BEGIN PRIVATE KEY-----\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: /abs/ca.pem\n  \
             client_allowed_sans: [one, two]\n  min_version: TLS13\n  max_version: TLS13\n  \
             cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA]\n  \
             curve_preferences: [X25519, CurveP521]\n  prefer_server_cipher_suites: false\n\
             http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n\
             basic_auth_users:\n  alice: {HASH}\n\
             rate_limit:\n  interval: 1m30s\n  burst: 5\n"
        ))
        .unwrap();
        let t = c.tls.unwrap();
        assert_eq!(t.cert, Pem::File("/etc/redpulse/tls/server.crt".into()));
        assert_eq!(t.key, Pem::Inline("-----BEGIN PRIVATE KEY-----\n".into()));
        assert_eq!(t.client_ca, Some(Pem::File("/abs/ca.pem".into())));
        assert_eq!(t.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert_eq!(t.client_allowed_sans.unwrap(), ["one", "two"]);
        assert_eq!(
            (t.min_version, t.max_version),
            (TlsVersion::Tls13, TlsVersion::Tls13)
        );
        assert_eq!(t.cipher_suites, [Suite::EcdheRsaAes128Gcm]);
        assert_eq!(t.curves, [Curve::X25519]);
        assert!(!t.prefer_server_cipher_suites);
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"));
        assert!(c.warnings[1].contains("CurveP521"));
        assert_eq!(
            c.headers,
            [("X-Frame-Options".to_string(), "deny".to_string())]
        );
        assert_eq!(c.users["alice"], HASH);
        assert_eq!(
            c.rate_limit,
            Some(RateLimit {
                interval: Duration::from_secs(90),
                burst: 5
            })
        );
        assert!(!c.http2);
    }

    #[test]
    fn what_the_toolkit_refuses_is_refused_naming_the_key() {
        for (text, want) in [
            ("hWkNKCp3fvIx3jKnsaBI\nTuEjdwNS8A2vYdFbiKqr\n", "invalid type"),
            ("tls_server_config:\n  cert_filse: a\n", "cert_filse"),
            ("tls_server_config:\n  cert_file: \"\"\n  key_file: k\n", "missing one of cert or cert_file"),
            ("tls_server_config:\n  cert: \"\"\n  key_file: k\n", "missing one of cert or cert_file"),
            ("tls_server_config:\n  cert_file: c\n  key_file: \"\"\n", "missing one of key or key_file"),
            ("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: /dev/null\n", "without a client_auth_type"),
            ("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: Sometimes\n", "invalid ClientAuth"),
            ("tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS111\n", "unknown TLS version"),
            ("tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA2048]\n", "unknown cipher"),
            ("tls_server_config:\n  cert_file: c\n  key_file: k\n  curve_preferences: [CurveP257]\n", "unknown curve"),
            ("basic_auth_users:\n  john: doe\n", "\"john\": not a bcrypt hash"),
            ("http_server_config:\n  headers:\n    Content-Type: foo\n", "\"Content-Type\" can not be configured"),
            ("http_server_config:\n  headers:\n    X-Content-Type-Options: foo\n", "invalid value for X-Content-Type-Options"),
            ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "invalid value for X-Frame-Options"),
            ("rate_limit:\n  interval: soon\n", "rate_limit.interval"),
        ] {
            let e = check(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        // The rejected "hash" is not echoed: it may be a password.
        assert!(!check("basic_auth_users:\n  john: hunter2\n")
            .unwrap_err()
            .contains("hunter2"));
    }

    #[test]
    fn bcrypt_hashes_are_recognised_as_go_recognises_them() {
        assert!(is_bcrypt(HASH));
        // What the bcrypt crate makes passes, and verifies.
        let made = bcrypt::hash("hello", 4).unwrap();
        assert!(is_bcrypt(&made), "{made}");
        assert!(bcrypt::verify("hello", &made).unwrap());
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            assert!(is_bcrypt(&HASH.replacen("$2y$", prefix, 1)));
        }
        for bad in [
            "doe",
            &HASH[..59],
            &HASH.replacen("$2y$", "$3y$", 1),
            &HASH.replacen("$10$", "$03$", 1),
            &HASH.replacen("$10$", "$32$", 1),
            &HASH.replacen('Q', "!", 1),
        ] {
            assert!(!is_bcrypt(bad), "{bad}");
        }
    }

    #[test]
    fn durations_read_as_go_reads_them() {
        for (text, ms) in [
            ("1s", 1000),
            ("100ms", 100),
            ("1m30s", 90_000),
            ("1.5s", 1500),
            ("0", 0),
            ("2h", 7_200_000),
        ] {
            assert_eq!(
                go_duration(text).unwrap(),
                Duration::from_millis(ms),
                "{text}"
            );
        }
        assert_eq!(go_duration("250us").unwrap(), Duration::from_micros(250));
        for bad in ["", "1", "-1s", "s", "1d", "1.2.3s", "abc"] {
            assert!(go_duration(bad).is_err(), "{bad}");
        }
    }
}
