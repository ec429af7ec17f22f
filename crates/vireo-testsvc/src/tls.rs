//! A self-signed certificate and its key for a service that speaks TLS: the certificate is its
//! own trust anchor, so a client trusts the service by trusting the certificate.

use std::path::{Path, PathBuf};

use crate::{StartError, io};

/// A certificate for some names and its PKCS#8 key, as PEM.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TlsIdentity {
    /// A certificate valid for `names` (DNS names or IP literals) and nothing else.
    pub fn for_names(names: &[&str]) -> TlsIdentity {
        let key = rcgen::KeyPair::generate().expect("generating a key");
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).expect("certificate parameters");
        let cert = params.self_signed(&key).expect("self-signing");
        TlsIdentity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes `server.crt` and `server.key` (with permissions `key_mode`) into `dir`.
    pub(crate) fn write(
        &self,
        dir: &Path,
        key_mode: u32,
    ) -> Result<(PathBuf, PathBuf), StartError> {
        use std::os::unix::fs::PermissionsExt as _;
        let cert = dir.join("server.crt");
        let key = dir.join("server.key");
        std::fs::write(&cert, &self.cert_pem).map_err(io("writing the TLS certificate"))?;
        std::fs::write(&key, &self.key_pem).map_err(io("writing the TLS key"))?;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(key_mode))
            .map_err(io("restricting the TLS key"))?;
        Ok((cert, key))
    }
}
