//! HTTPS without a proxy: the certificate and key from PEM files, served to every new handshake
//! from a slot that a reload replaces (SIGHUP, or the files changing) while the server runs.

mod files;
mod reload;

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

pub use reload::watch;

/// Where the certificate chain and its private key are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The certificate new handshakes present; `replace` swaps it without touching open
/// connections.
#[derive(Debug)]
pub struct CurrentCertificate {
    slot: RwLock<Arc<CertifiedKey>>,
}

impl CurrentCertificate {
    fn get(&self) -> Arc<CertifiedKey> {
        self.slot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, certificate: CertifiedKey) {
        *self.slot.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(certificate);
    }
}

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// TLS for the listener: the acceptor its connections go through, and the certificate a reload
/// replaces.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    certificate: Arc<CurrentCertificate>,
}

impl Tls {
    /// Reads and checks the pair (a readable chain, a readable key, and the key belonging to
    /// the first certificate); an error names the file at fault.
    pub fn load(files: &TlsFiles) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certificate = Arc::new(CurrentCertificate {
            slot: RwLock::new(Arc::new(files::certified_key(files, &provider)?)),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| anyhow::anyhow!("setting up TLS: {error}"))?
            .with_no_client_auth()
            .with_cert_resolver(certificate.clone());
        // The server speaks HTTP/1.1 only; a client offering h2 alone is refused in the
        // handshake rather than misunderstood after it.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            files: files.clone(),
            provider,
            certificate,
        })
    }
}

#[cfg(test)]
pub(crate) mod test_pairs {
    use super::TlsFiles;

    /// Writes a new self-signed certificate for `name` and its key over `files`; returns the
    /// certificate (DER).
    pub fn write_pair(files: &TlsFiles, name: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        cert.der().to_vec()
    }

    pub fn files_in(dir: &std::path::Path) -> TlsFiles {
        TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}
