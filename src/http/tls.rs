//! TLS on redpulse's own listener, from the web config: the rustls server
//! configuration (versions, TLS 1.2 suites and key-exchange groups in the
//! file's order), a certificate resolver that picks up a renewed
//! certificate and key from disk within a second or two (so cert-manager
//! or certbot rotation needs no restart), and client certificates judged
//! as Go's crypto/tls judges them for each `client_auth_type` — including
//! a self-signed certificate listed in the client CA file, which webpki
//! alone refuses — and `client_allowed_sans`.

use crate::config::web::{ClientAuth, Curve, Suite, TlsServer, TlsVersion};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, UnixTime};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How often the certificate and key are looked at again for a renewal.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// The server configuration for `t`: its certificate is read now (and
/// again when it changes on disk).
pub fn server_config(t: &TlsServer) -> Result<Arc<ServerConfig>, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !t.cipher_suites.is_empty() {
        use rustls::crypto::ring::cipher_suite as cs;
        // TLS 1.3 suites are not configurable (as in Go); the file's TLS
        // 1.2 suites in its order.
        let mut suites = vec![
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
        ];
        for s in &t.cipher_suites {
            let suite = match s {
                Suite::EcdheEcdsaAes128Gcm => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                Suite::EcdheEcdsaAes256Gcm => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                Suite::EcdheRsaAes128Gcm => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                Suite::EcdheRsaAes256Gcm => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                Suite::EcdheEcdsaChacha20 => cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                Suite::EcdheRsaChacha20 => cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            };
            if !suites.iter().any(|x| x.suite() == suite.suite()) {
                suites.push(suite);
            }
        }
        provider.cipher_suites = suites;
    }
    if !t.curves.is_empty() {
        use rustls::crypto::ring::kx_group;
        provider.kx_groups = t
            .curves
            .iter()
            .map(|c| match c {
                Curve::X25519 => kx_group::X25519,
                Curve::P256 => kx_group::SECP256R1,
                Curve::P384 => kx_group::SECP384R1,
            })
            .collect();
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match (t.min_version, t.max_version) {
        (TlsVersion::Tls13, _) => &[&rustls::version::TLS13],
        (_, TlsVersion::Tls12) => &[&rustls::version::TLS12],
        _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let provider = Arc::new(provider);
    let verifier = Arc::new(ClientVerifier::new(t, provider.clone())?);
    let resolver = Arc::new(Rotating::new(t.clone())?);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("tls_server_config: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.ignore_client_order = t.prefer_server_cipher_suites;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificate in force, looked at again on disk at most every
/// [`RELOAD_EVERY`]; a renewal that does not load keeps the old one.
#[derive(Debug)]
struct Rotating {
    t: TlsServer,
    current: Mutex<(Arc<CertifiedKey>, Instant)>,
}

impl Rotating {
    fn new(t: TlsServer) -> Result<Rotating, String> {
        let key = t.keys()?;
        Ok(Rotating {
            t,
            current: Mutex::new((key, Instant::now())),
        })
    }
}

impl ResolvesServerCert for Rotating {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.1.elapsed() >= RELOAD_EVERY {
            current.1 = Instant::now();
            // Small files read at most once a second: cheap enough in the
            // handshake, and no task to keep alive beside it.
            match self.t.keys() {
                Ok(k) if k.cert != current.0.cert => {
                    info!("the TLS certificate changed on disk; new connections use it");
                    current.0 = k;
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(error = %e, "a changed TLS certificate or key does not load; keeping the last one")
                }
            }
        }
        Some(current.0.clone())
    }
}

/// Client certificates as Go's crypto/tls judges them for each
/// `client_auth_type`, and `client_allowed_sans`.
#[derive(Debug)]
struct ClientVerifier {
    mode: ClientAuth,
    /// The client CA file's certificates, as given.
    roots: Vec<CertificateDer<'static>>,
    /// webpki's verifier over those roots, when there are any.
    webpki: Option<Arc<dyn ClientCertVerifier>>,
    sans: Option<Vec<String>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientVerifier {
    fn new(t: &TlsServer, provider: Arc<CryptoProvider>) -> Result<ClientVerifier, String> {
        let roots = t.client_roots()?;
        let mut store = RootCertStore::empty();
        for r in &roots {
            // A certificate webpki cannot use as a root is still matched
            // by its bytes below.
            let _ = store.add(r.clone());
        }
        let webpki = if store.is_empty() {
            None
        } else {
            Some(
                WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider.clone())
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| format!("tls_server_config.client_ca: {e}"))?,
            )
        };
        Ok(ClientVerifier {
            mode: t.client_auth,
            roots,
            webpki,
            sans: t.client_allowed_sans.clone(),
            algorithms: provider.signature_verification_algorithms,
        })
    }

    /// Whether the certificate chains to the client CAs (or is one of
    /// them, as Go accepts a listed self-signed certificate).
    fn verified(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        if self.roots.iter().any(|r| r.as_ref() == end_entity.as_ref())
            && within_validity(end_entity, now)
        {
            return Ok(());
        }
        match &self.webpki {
            Some(v) => v
                .verify_client_cert(end_entity, intermediates, now)
                .map(|_| ()),
            None => Err(rustls::Error::General(
                "no client CA is configured to verify client certificates".into(),
            )),
        }
    }

    /// `client_allowed_sans`: the certificate must carry one of them.
    fn san_allowed(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let Some(allowed) = &self.sans else {
            return Ok(());
        };
        let names = sans_of(end_entity);
        if names.iter().any(|n| allowed.contains(n)) {
            Ok(())
        } else {
            Err(rustls::Error::General(format!(
                "the client certificate has none of the allowed SANs {allowed:?}"
            )))
        }
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.mode != ClientAuth::NoClientCert
    }

    fn client_auth_mandatory(&self) -> bool {
        matches!(
            self.mode,
            ClientAuth::RequireAnyClientCert | ClientAuth::RequireAndVerifyClientCert
        )
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.mode {
            ClientAuth::NoClientCert
            | ClientAuth::RequestClientCert
            | ClientAuth::RequireAnyClientCert => {}
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
                self.verified(end_entity, intermediates, now)?
            }
        }
        self.san_allowed(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Whether `now` is within the certificate's notBefore..notAfter.
fn within_validity(cert: &CertificateDer<'_>, now: UnixTime) -> bool {
    let Ok((_, c)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return false;
    };
    let now = now.as_secs() as i64;
    c.validity().not_before.timestamp() <= now && now <= c.validity().not_after.timestamp()
}

/// A certificate's SANs as Go lists them: DNS names, e-mail addresses, IP
/// addresses and URIs, as text.
fn sans_of(cert: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, c)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(san)) = c.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            GeneralName::RFC822Name(e) => Some(e.to_string()),
            GeneralName::URI(u) => Some(u.to_string()),
            GeneralName::IPAddress(ip) => match ip.len() {
                4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*ip).ok()?).to_string()),
                16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*ip).ok()?).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}
