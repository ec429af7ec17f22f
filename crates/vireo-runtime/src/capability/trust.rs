//! Whom outgoing TLS trusts: the Web PKI roots, plus the certificate authorities of the
//! server's `[egress] ca_file` (a company's private CA, a test's). One trust for every protocol
//! of functions (HTTPS, PostgreSQL with `sslmode=require`, `rediss://`, `mqtts://`), and, handed
//! over by the server, for event sources' brokers. A server's
//! certificate is always verified against the host name the function asked for, never against
//! the address the host connected to.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The trusted roots and the client configuration made from them.
#[derive(Debug, Clone)]
pub struct OutboundTrust {
    roots: Arc<RootCertStore>,
    config: Arc<ClientConfig>,
    /// The extra authorities as read, for clients that build their configuration themselves.
    extra_pem: Option<String>,
}

impl Default for OutboundTrust {
    /// The Web PKI roots alone.
    fn default() -> Self {
        Self::with_roots(web_pki_roots(), None)
    }
}

impl OutboundTrust {
    /// The Web PKI roots and every certificate in the PEM file `ca_file`.
    pub fn with_ca_file(ca_file: &Path) -> Result<Self, String> {
        let mut roots = web_pki_roots();
        let pem = std::fs::read_to_string(ca_file)
            .map_err(|e| format!("reading {}: {e}", ca_file.display()))?;
        let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("reading {}: {e}", ca_file.display()))?;
        if certificates.is_empty() {
            return Err(format!("{} holds no PEM certificate", ca_file.display()));
        }
        for certificate in certificates {
            roots.add(certificate).map_err(|e| {
                format!(
                    "{}: a certificate cannot be trusted: {e}",
                    ca_file.display()
                )
            })?;
        }
        Ok(Self::with_roots(roots, Some(pem)))
    }

    fn with_roots(roots: RootCertStore, extra_pem: Option<String>) -> Self {
        let roots = Arc::new(roots);
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports rustls' default protocol versions")
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        Self {
            roots,
            config: Arc::new(config),
            extra_pem,
        }
    }

    /// The authorities trusted beside the Web PKI's, as PEM.
    pub fn extra_pem(&self) -> Option<&str> {
        self.extra_pem.as_deref()
    }

    /// The configuration for a client that names the server it connects to.
    pub fn config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }

    /// The configuration for a client that connects by address (it is given the approved IP,
    /// not the name): the certificate is verified against `name` whatever the client says.
    pub(crate) fn config_for(&self, name: ServerName<'static>) -> Result<ClientConfig, String> {
        let verifier = WebPkiServerVerifier::builder_with_provider(self.roots.clone(), provider())
            .build()
            .map_err(|e| format!("building the certificate verifier: {e}"))?;
        let mut config = (*self.config).clone();
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(NamedVerifier { name, verifier }));
        Ok(config)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn web_pki_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    }
}

/// Verifies a server's certificate for one fixed name, as the Web PKI does.
#[derive(Debug)]
struct NamedVerifier {
    name: ServerName<'static>,
    verifier: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _connected_to: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier.supported_verify_schemes()
    }
}

/// The TLS name of `host` as a guest wrote it: an IP literal or a DNS name.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
        .map(|name| name.to_owned())
        .map_err(|_| format!("{host:?} is not a name a TLS certificate can be checked against"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let err = OutboundTrust::with_ca_file(&empty).unwrap_err();
        assert!(err.contains("ca.pem") && err.contains("no PEM"), "{err}");
        let missing = OutboundTrust::with_ca_file(&dir.path().join("absent.pem")).unwrap_err();
        assert!(missing.contains("absent.pem"), "{missing}");
    }

    #[test]
    fn names_and_ip_literals_are_tls_names() {
        assert!(server_name("db.example.com").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("[::1]").is_ok());
        assert!(server_name("not a name").is_err());
    }
}
