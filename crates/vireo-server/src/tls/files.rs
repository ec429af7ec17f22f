//! Reads a certificate chain and its private key from PEM files, checking that they belong
//! together; each error names the file at fault.

use std::path::Path;

use anyhow::bail;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{Error as TlsError, InconsistentKeys};
use rustls_pki_types::pem::{self, PemObject as _};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsFiles;

/// The chain of `files.cert` with the key of `files.key`, ready to present.
pub fn certified_key(files: &TlsFiles, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let chain = certificate_chain(&files.cert)?;
    let key = private_key(&files.key)?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| {
            anyhow::anyhow!(
                "the TLS key {} cannot be used: {error}",
                files.key.display()
            )
        })?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        // A key that cannot tell its public half is left for the handshake to prove.
        Ok(()) | Err(TlsError::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(TlsError::InconsistentKeys(InconsistentKeys::KeyMismatch)) => bail!(
            "the TLS key {} does not belong to the certificate {} (was one of them replaced \
             without the other?)",
            files.key.display(),
            files.cert.display()
        ),
        Err(error) => bail!(
            "the TLS certificate {} is not usable: {error}",
            files.cert.display()
        ),
    }
}

/// Every `CERTIFICATE` block of `path`, the server's own first.
fn certificate_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|error| pem_error(error, "certificate", path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(error, "certificate", path))?;
    if chain.is_empty() {
        bail!(
            "the TLS certificate {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(chain)
}

/// The first private key of `path`: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
fn private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| match error {
        pem::Error::NoItemsFound => anyhow::anyhow!(
            "the TLS key {} holds no PEM private key (PKCS#8, RSA or EC)",
            path.display()
        ),
        error => pem_error(error, "key", path),
    })
}

fn pem_error(error: pem::Error, what: &str, path: &Path) -> anyhow::Error {
    match error {
        pem::Error::Io(error) => anyhow::Error::new(error)
            .context(format!("cannot read the TLS {what} {}", path.display())),
        error => anyhow::anyhow!(
            "the TLS {what} {} is not valid PEM: {error}",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path, cert: &str, key: &str) -> TlsFiles {
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, cert).unwrap();
        std::fs::write(&files.key, key).unwrap();
        files
    }

    fn load(files: &TlsFiles) -> anyhow::Result<CertifiedKey> {
        certified_key(files, &rustls::crypto::ring::default_provider())
    }

    #[test]
    fn files_without_pem_blocks_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = files(dir.path(), "not a certificate\n", "not a key\n");
        let error = format!("{:#}", load(&empty).unwrap_err());
        assert!(error.contains("holds no PEM certificate"), "{error}");
        assert!(error.contains(&empty.cert.display().to_string()), "{error}");
    }

    #[test]
    fn a_key_from_another_pair_is_refused_naming_both_files() {
        use crate::tls::test_pairs::{files_in, write_pair};

        let dir = tempfile::tempdir().unwrap();
        let files = files_in(dir.path());
        write_pair(&files, "one.example");
        load(&files).unwrap();
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        let other = files_in(&other);
        write_pair(&other, "two.example");
        let mixed = TlsFiles {
            cert: files.cert.clone(),
            key: other.key.clone(),
        };
        let error = format!("{:#}", load(&mixed).unwrap_err());
        assert!(error.contains("does not belong"), "{error}");
        assert!(error.contains(&other.key.display().to_string()), "{error}");
        assert!(error.contains(&files.cert.display().to_string()), "{error}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = TlsFiles {
            cert: dir.path().join("absent.pem"),
            key: dir.path().join("key.pem"),
        };
        let error = format!("{:#}", load(&missing).unwrap_err());
        assert!(
            error.contains("cannot read the TLS certificate") && error.contains("absent.pem"),
            "{error}"
        );
    }
}
