//! Certificates for TLS tests, made with rcgen: a CA that signs leaves
//! with chosen names and validity windows, and self-signed leaves. Files
//! are written as PEM beside the test's other files.

use super::write_file;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// A CA that can sign leaves, written to `dir`.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub pem_path: PathBuf,
}

impl Ca {
    pub fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params
            .distinguished_name
            .push(DnType::CommonName, format!("redpulse test {name}"));
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem_path = write_file(dir, &format!("{name}.crt"), &issuer.pem());
        Ca { issuer, pem_path }
    }

    /// A leaf for `names`, valid from `from` to `until` days from now;
    /// returns (cert path, key path).
    pub fn leaf(
        &self,
        dir: &Path,
        file: &str,
        names: &[&str],
        from: i64,
        until: i64,
    ) -> (PathBuf, PathBuf) {
        let (params, key) = leaf_params(names, from, until);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            write_file(dir, &format!("{file}.crt"), &cert.pem()),
            write_file(dir, &format!("{file}.key"), &key.serialize_pem()),
        )
    }
}

fn leaf_params(names: &[&str], from: i64, until: i64) -> (CertificateParams, KeyPair) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let now = OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(from);
    params.not_after = now + time::Duration::days(until);
    params
        .distinguished_name
        .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
    (params, KeyPair::generate().unwrap())
}

/// A self-signed leaf (no CA at all).
pub fn self_signed(dir: &Path, file: &str) -> (PathBuf, PathBuf) {
    let (params, key) = leaf_params(&["localhost", "127.0.0.1"], -1, 365);
    let cert = params.self_signed(&key).unwrap();
    (
        write_file(dir, &format!("{file}.crt"), &cert.pem()),
        write_file(dir, &format!("{file}.key"), &key.serialize_pem()),
    )
}
