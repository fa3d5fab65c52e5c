//! TLS settings for `rediss://` targets: the `[tls]` tables as written
//! (top level, per instance, and the `--tls-*` flags, merged key by key),
//! and the rustls client configuration built from them at load time.
//!
//! Every file problem (missing, unreadable, not PEM, a key that does not
//! match its certificate) is a config error naming the file and the key,
//! so it stops the process at start (exit 2) or keeps the running config on
//! a reload; nothing about TLS files is discovered at poll time. One
//! client configuration is built per distinct settings, not per target.

use super::text::shown;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde::Deserialize;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the system's CA bundle usually is, in the order tried when no
/// `ca_file` is given (`SSL_CERT_FILE` first, as OpenSSL does).
const SYSTEM_CA_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",             // openSUSE
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem", // macOS, BSDs
];
/// Largest PEM file read: a CA bundle is a few hundred KiB.
const MAX_PEM_FILE: u64 = 16 << 20;

/// A `[tls]` table as written: every key optional.
#[derive(Deserialize, Default, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsTable {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: Option<bool>,
}

impl TlsTable {
    /// `self`'s keys where set, else `base`'s: key by key.
    pub fn over(&self, base: &TlsTable) -> TlsTable {
        TlsTable {
            ca_file: self.ca_file.clone().or_else(|| base.ca_file.clone()),
            cert_file: self.cert_file.clone().or_else(|| base.cert_file.clone()),
            key_file: self.key_file.clone().or_else(|| base.key_file.clone()),
            server_name: self
                .server_name
                .clone()
                .or_else(|| base.server_name.clone()),
            insecure_skip_verify: self.insecure_skip_verify.or(base.insecure_skip_verify),
        }
    }

    /// Paths made relative to `dir` (the config file's folder).
    pub fn relative_to(mut self, dir: &Path) -> TlsTable {
        for p in [&mut self.ca_file, &mut self.cert_file, &mut self.key_file]
            .into_iter()
            .flatten()
        {
            *p = dir.join(&*p);
        }
        self
    }
}

/// The resolved settings of one TLS target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
}

impl From<&TlsTable> for TlsSettings {
    fn from(t: &TlsTable) -> Self {
        TlsSettings {
            ca_file: t.ca_file.clone(),
            cert_file: t.cert_file.clone(),
            key_file: t.key_file.clone(),
            server_name: t.server_name.clone(),
            insecure_skip_verify: t.insecure_skip_verify.unwrap_or(false),
        }
    }
}

/// What a TLS target connects with.
#[derive(Clone)]
pub struct TlsTarget {
    pub settings: TlsSettings,
    /// Shared by every target with the same settings.
    pub client: Arc<ClientConfig>,
    /// The name verified (and sent as SNI): `server_name`, else the host.
    /// An IP literal is verified against the certificate's IP SANs.
    pub server_name: ServerName<'static>,
    /// A hash of the files' contents: a reload after a certificate was
    /// rotated in place counts as a change and reconnects.
    files_digest: u64,
}

impl TlsTarget {
    /// The same settings for another host (a discovered cluster node):
    /// the verified name follows the host unless `server_name` is set.
    pub fn for_host(&self, host: &str) -> Result<TlsTarget, String> {
        let name = self.settings.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|_| format!("{name:?} is neither a DNS name nor an IP address"))?;
        Ok(TlsTarget {
            server_name,
            ..self.clone()
        })
    }

    /// Whether a client certificate is configured (mutual TLS).
    pub fn has_client_cert(&self) -> bool {
        self.settings.cert_file.is_some()
    }
}

impl PartialEq for TlsTarget {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
            && self.server_name == other.server_name
            && self.files_digest == other.files_digest
    }
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTarget")
            .field("settings", &self.settings)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Client configurations built during one load, by settings.
#[derive(Default)]
pub struct TlsCache {
    built: HashMap<TlsSettings, (Arc<ClientConfig>, u64)>,
    system_roots: Option<Arc<RootCertStore>>,
}

impl TlsCache {
    /// The TLS side of a target whose host is `host`.
    pub fn target(&mut self, table: &TlsTable, host: &str) -> Result<TlsTarget, String> {
        let settings = TlsSettings::from(table);
        let name = settings.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_string()).map_err(|_| {
            format!("tls server_name {name:?} is neither a DNS name nor an IP address")
        })?;
        let (client, files_digest) = match self.built.get(&settings) {
            Some(built) => built.clone(),
            None => {
                let built = self.build(&settings)?;
                self.built.insert(settings.clone(), built.clone());
                built
            }
        };
        Ok(TlsTarget {
            settings,
            client,
            server_name,
            files_digest,
        })
    }

    fn build(&mut self, s: &TlsSettings) -> Result<(Arc<ClientConfig>, u64), String> {
        let mut digest = std::collections::hash_map::DefaultHasher::new();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("tls: {e}"))?;
        let builder = if s.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        } else {
            let roots = match &s.ca_file {
                Some(path) => {
                    let pem = read_pem(path, "ca_file")?;
                    pem.hash(&mut digest);
                    Arc::new(roots_from_pem(&pem, path, "ca_file")?)
                }
                None => self.system_roots()?,
            };
            builder.with_root_certificates(roots)
        };
        let client = match (&s.cert_file, &s.key_file) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let cert_pem = read_pem(cert, "cert_file")?;
                let key_pem = read_pem(key, "key_file")?;
                cert_pem.hash(&mut digest);
                key_pem.hash(&mut digest);
                let chain = certs_from_pem(&cert_pem, cert, "cert_file")?;
                let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
                    format!(
                        "tls key_file {}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1)",
                        shown(key)
                    )
                })?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| match e {
                        rustls::Error::InconsistentKeys(_) => format!(
                            "tls key_file {} does not match cert_file {}",
                            shown(key),
                            shown(cert)
                        ),
                        e => format!(
                            "tls cert_file {} / key_file {}: {e}",
                            shown(cert),
                            shown(key)
                        ),
                    })?
            }
            (Some(_), None) => return Err("tls cert_file is set but key_file is not".into()),
            (None, Some(_)) => return Err("tls key_file is set but cert_file is not".into()),
        };
        Ok((Arc::new(client), digest.finish()))
    }

    /// The system's CA bundle, read once per load.
    fn system_roots(&mut self) -> Result<Arc<RootCertStore>, String> {
        if let Some(r) = &self.system_roots {
            return Ok(r.clone());
        }
        let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
        let candidates = from_env
            .iter()
            .cloned()
            .chain(SYSTEM_CA_BUNDLES.iter().map(PathBuf::from));
        for path in candidates {
            let Ok(pem) = read_pem(&path, "system CA bundle") else {
                continue;
            };
            let roots = Arc::new(roots_from_pem(&pem, &path, "system CA bundle")?);
            self.system_roots = Some(roots.clone());
            return Ok(roots);
        }
        Err(format!(
            "tls: no ca_file given and no system CA bundle found (tried $SSL_CERT_FILE, {}); set ca_file",
            SYSTEM_CA_BUNDLES.join(", ")
        ))
    }
}

pub(crate) fn read_pem(path: &Path, key: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("tls {key} {}: {e}", shown(path)))?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(format!(
            "tls {key} {}: larger than {MAX_PEM_FILE} bytes",
            shown(path)
        ));
    }
    Ok(bytes)
}

pub(crate) fn certs_from_pem(
    pem: &[u8],
    path: &Path,
    key: &str,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls {key} {}: not valid PEM: {e}", shown(path)))?;
    if certs.is_empty() {
        return Err(format!(
            "tls {key} {}: no PEM certificate in it",
            shown(path)
        ));
    }
    Ok(certs)
}

fn roots_from_pem(pem: &[u8], path: &Path, key: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from_pem(pem, path, key)? {
        roots
            .add(cert)
            .map_err(|e| format!("tls {key} {}: {e}", shown(path)))?;
    }
    Ok(roots)
}

/// `insecure_skip_verify = true`: any certificate for any name is
/// accepted. The handshake's signatures are still checked, so the peer
/// holds the key of the certificate it shows; nothing says whose it is.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_merge_key_by_key() {
        let base = TlsTable {
            ca_file: Some("/ca.pem".into()),
            server_name: Some("a".into()),
            insecure_skip_verify: Some(true),
            ..TlsTable::default()
        };
        let own = TlsTable {
            server_name: Some("b".into()),
            insecure_skip_verify: Some(false),
            ..TlsTable::default()
        };
        let m = own.over(&base);
        assert_eq!(m.ca_file.as_deref(), Some(Path::new("/ca.pem")));
        assert_eq!(m.server_name.as_deref(), Some("b"));
        assert_eq!(m.insecure_skip_verify, Some(false));
    }

    #[test]
    fn file_problems_name_the_file_and_the_key() {
        let dir = std::env::temp_dir().join(format!("redpulse-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "hello\n").unwrap();
        let mut cache = TlsCache::default();
        let table = |ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>| TlsTable {
            ca_file: ca.map(Path::to_path_buf),
            cert_file: cert.map(Path::to_path_buf),
            key_file: key.map(Path::to_path_buf),
            ..TlsTable::default()
        };
        let missing = dir.join("missing.pem");
        for (t, want) in [
            (table(Some(&missing), None, None), "ca_file"),
            (table(Some(&not_pem), None, None), "no PEM certificate"),
            (table(None, Some(&not_pem), None), "key_file is not"),
            (table(None, None, Some(&not_pem)), "cert_file is not"),
        ] {
            let e = cache.target(&t, "h").unwrap_err();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let e = cache
            .target(&table(Some(&missing), None, None), "h")
            .unwrap_err();
        assert!(e.contains("missing.pem"), "{e}");
    }

    #[test]
    fn server_name_defaults_to_the_host_and_ip_hosts_are_ip_names() {
        let mut cache = TlsCache::default();
        let insecure = TlsTable {
            insecure_skip_verify: Some(true),
            ..TlsTable::default()
        };
        let t = cache.target(&insecure, "127.0.0.1").unwrap();
        assert!(matches!(t.server_name, ServerName::IpAddress(_)));
        let named = TlsTable {
            server_name: Some("redis.internal".into()),
            ..insecure.clone()
        };
        let t = cache.target(&named, "10.0.0.1").unwrap();
        assert_eq!(t.server_name.to_str(), "redis.internal");
        // One client configuration per distinct settings.
        let a = cache.target(&insecure, "a").unwrap();
        let b = cache.target(&insecure, "b").unwrap();
        assert!(Arc::ptr_eq(&a.client, &b.client));
    }
}
