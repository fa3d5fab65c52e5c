//! TLS for one connection: the handshake under the poll's deadline, the
//! server certificate's expiry, and rustls errors in words an operator can
//! act on (untrusted, expired, name mismatch, client certificate wanted or
//! refused, a plaintext port).
//!
//! The session lives as long as the connection, so the handshake is paid
//! once per connection, never per poll.

use crate::config::TlsTarget;
use crate::judge::outcome::{Failure, Reason, TlsPeer};
use rustls::{AlertDescription, CertificateError};
use std::io;
use std::time::{Duration, SystemTime};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Handshake over a connected TCP stream before `deadline`; on success
/// also the server certificate's notAfter, when it can be read.
pub async fn handshake(
    tcp: TcpStream,
    tls: &TlsTarget,
    addr: &str,
    deadline: Instant,
) -> Result<(TlsStream<TcpStream>, Option<TlsPeer>), Failure> {
    let connector = TlsConnector::from(tls.client.clone());
    match timeout_at(deadline, connector.connect(tls.server_name.clone(), tcp)).await {
        Err(_) => Err(Failure::new(
            Reason::TlsError,
            format!(
                "TLS handshake with {addr}: no answer within the poll timeout \
(a plaintext Redis never answers a TLS ClientHello: is this port TLS?)"
            ),
        )),
        Ok(Err(e)) => Err(
            failure(&format!("TLS handshake with {addr}"), &e, tls).unwrap_or_else(|| {
                Failure::new(Reason::TlsError, format!("TLS handshake with {addr}: {e}"))
            }),
        ),
        Ok(Ok(stream)) => {
            let peer = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| leaf_not_after(leaf))
                .map(|not_after| TlsPeer { not_after });
            Ok((stream, peer))
        }
    }
}

/// The failure an I/O error on a TLS connection stands for, when rustls
/// caused it (TLS 1.3 reports a refused client certificate only at the
/// first read, after the handshake looked complete).
pub fn failure(what: &str, e: &io::Error, tls: &TlsTarget) -> Option<Failure> {
    let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(Failure::new(
        Reason::TlsError,
        format!("{what}: {}", describe(inner, tls)),
    ))
}

/// A rustls error in an operator's words, with what to change.
fn describe(e: &rustls::Error, tls: &TlsTarget) -> String {
    use rustls::Error as E;
    let name = tls.server_name.to_str();
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server certificate is not valid yet (check both clocks)".into()
            }
            CertificateError::UnknownIssuer => "the server certificate is untrusted: \
it is not signed by a CA in ca_file (or the system roots); set ca_file to the CA that issued it"
                .into(),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "name mismatch: the server certificate is not valid for {name:?}; \
set server_name to a name the certificate carries"
                )
            }
            other => format!("the server certificate was rejected: {other:?}"),
        },
        E::AlertReceived(alert) => {
            let wants_cert = matches!(
                alert,
                AlertDescription::CertificateRequired | AlertDescription::HandshakeFailure
            );
            let refused_cert = matches!(
                alert,
                AlertDescription::BadCertificate
                    | AlertDescription::UnknownCA
                    | AlertDescription::CertificateUnknown
                    | AlertDescription::UnsupportedCertificate
                    | AlertDescription::CertificateExpired
                    | AlertDescription::AccessDenied
            );
            if !tls.has_client_cert() && (wants_cert || refused_cert) {
                format!("the server requires a client certificate (alert {alert:?}); set cert_file and key_file")
            } else if tls.has_client_cert() && refused_cert {
                format!("the server refused our client certificate (alert {alert:?}): is cert_file signed by a CA the server trusts?")
            } else {
                format!("the server ended the TLS session (alert {alert:?})")
            }
        }
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. } => {
            "the server did not answer in TLS: is this a plaintext port? (use redis:// for plaintext)".into()
        }
        other => other.to_string(),
    }
}

/// notAfter of a DER certificate, if it parses.
fn leaf_not_after(der: &[u8]) -> Option<SystemTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let secs = cert.validity().not_after.timestamp();
    let secs = u64::try_from(secs).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}
