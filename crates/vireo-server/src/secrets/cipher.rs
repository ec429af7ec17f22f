//! Sealing secret values: XChaCha20-Poly1305 under the 256-bit master key. Each seal draws a
//! fresh random 24-byte nonce (at that size random nonces never realistically repeat), and the
//! (namespace, name) is bound in as associated data, so a ciphertext moved to another secret's
//! row fails to open instead of handing one secret's value to another's grantees.

use anyhow::anyhow;
use chacha20poly1305::aead::rand_core::RngCore as _;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use vireo_core::{Name, SealedSecret, SecretName, SecretValue};
use zeroize::Zeroizing;

pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
/// Sealed with a fixed nonce into the key's fingerprint.
const FINGERPRINT_TEXT: &[u8] = b"vireo master key fingerprint";

/// The master key, ready to seal and open (its key bytes are wiped when it is dropped), and to
/// derive keys for other purposes that every node sharing the store must agree on.
pub struct Cipher {
    aead: XChaCha20Poly1305,
    kdf: Hkdf<Sha256>,
}

impl Cipher {
    pub fn new(key: &[u8; KEY_BYTES]) -> Self {
        Self {
            aead: XChaCha20Poly1305::new(key.into()),
            kdf: Hkdf::new(None, key),
        }
    }

    /// A key for `purpose` (HKDF-SHA256 of the master key), equal on every node with the same
    /// master key and unrelated to the key that seals secrets.
    pub fn derive_key<const N: usize>(&self, purpose: &str) -> Zeroizing<[u8; N]> {
        let mut key = Zeroizing::new([0u8; N]);
        self.kdf
            .expand(purpose.as_bytes(), key.as_mut())
            .expect("HKDF-SHA256 expands to any key length up to 8160 bytes");
        key
    }

    /// What tells this key from another without revealing it: the key's seal of a fixed text
    /// under a nonce no random draw yields in practice (all zeros), so equal keys give equal
    /// fingerprints and nothing else is ever sealed with that nonce and another text.
    pub fn fingerprint(&self) -> Vec<u8> {
        let payload = Payload {
            msg: FINGERPRINT_TEXT,
            aad: FINGERPRINT_TEXT,
        };
        self.aead
            .encrypt(XNonce::from_slice(&[0; NONCE_BYTES]), payload)
            .expect("sealing a short text cannot fail")
    }

    pub fn seal(
        &self,
        namespace: &Name,
        name: &SecretName,
        value: &SecretValue,
    ) -> anyhow::Result<SealedSecret> {
        let mut nonce = [0u8; NONCE_BYTES];
        fill_random(&mut nonce)?;
        let aad = associated_data(namespace, name);
        let payload = Payload {
            msg: value.expose().as_bytes(),
            aad: &aad,
        };
        let ciphertext = self
            .aead
            .encrypt(XNonce::from_slice(&nonce), payload)
            .map_err(|_| anyhow!("sealing secret {namespace}/{name} failed"))?;
        Ok(SealedSecret {
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// The value in clear; an error if the key, the (namespace, name) or a byte differs from
    /// what was sealed.
    pub fn open(
        &self,
        namespace: &Name,
        name: &SecretName,
        sealed: &SealedSecret,
    ) -> anyhow::Result<String> {
        let unreadable = || {
            anyhow!(
                "secret {namespace}/{name} cannot be decrypted with this server's master key \
                 (another key, or the stored row was altered)"
            )
        };
        if sealed.nonce.len() != NONCE_BYTES {
            return Err(unreadable());
        }
        let aad = associated_data(namespace, name);
        let payload = Payload {
            msg: &sealed.ciphertext,
            aad: &aad,
        };
        let clear = self
            .aead
            .decrypt(XNonce::from_slice(&sealed.nonce), payload)
            .map_err(|_| unreadable())?;
        String::from_utf8(clear).map_err(|_| unreadable())
    }
}

/// Fills `bytes` from the operating system's random source.
pub fn fill_random(bytes: &mut [u8]) -> anyhow::Result<()> {
    OsRng
        .try_fill_bytes(bytes)
        .map_err(|e| anyhow!("the system's random source failed: {e}"))
}

/// Namespaces and secret names never contain NUL, so the separators keep pairs apart.
fn associated_data(namespace: &Name, name: &SecretName) -> Vec<u8> {
    format!("vireo-secret-v1\0{namespace}\0{name}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(byte: u8) -> Cipher {
        Cipher::new(&[byte; KEY_BYTES])
    }

    fn ns(value: &str) -> Name {
        Name::parse("namespace", value).unwrap()
    }

    fn secret(value: &str) -> SecretName {
        SecretName::parse(value).unwrap()
    }

    fn value(text: &str) -> SecretValue {
        SecretValue::new(text.to_string()).unwrap()
    }

    #[test]
    fn derived_keys_depend_on_the_master_key_and_the_purpose() {
        let sessions: [u8; 64] = *cipher(7).derive_key("sessions");
        assert_eq!(sessions, *cipher(7).derive_key::<64>("sessions"));
        assert_ne!(sessions, *cipher(8).derive_key::<64>("sessions"));
        assert_ne!(sessions, *cipher(7).derive_key::<64>("other"));
    }

    #[test]
    fn round_trip_with_a_fresh_nonce_each_time() {
        let (key, default, db) = (cipher(7), ns("default"), secret("DB_PASSWORD"));
        let first = key.seal(&default, &db, &value("hunter2")).unwrap();
        let second = key.seal(&default, &db, &value("hunter2")).unwrap();
        assert_ne!(first.nonce, second.nonce);
        assert_ne!(first.ciphertext, second.ciphertext);
        assert!(!first.ciphertext.windows(7).any(|w| w == b"hunter2"));
        for sealed in [first, second] {
            assert_eq!(key.open(&default, &db, &sealed).unwrap(), "hunter2");
        }
    }

    #[test]
    fn another_namespace_or_name_cannot_open_it() {
        let (key, default, db) = (cipher(7), ns("default"), secret("DB_PASSWORD"));
        let sealed = key.seal(&default, &db, &value("hunter2")).unwrap();
        let err = key
            .open(&default, &secret("API_TOKEN"), &sealed)
            .unwrap_err();
        assert!(err.to_string().contains("cannot be decrypted"), "{err}");
        assert!(key.open(&ns("team-a"), &db, &sealed).is_err());
        assert!(
            cipher(8).open(&default, &db, &sealed).is_err(),
            "another key"
        );
    }

    #[test]
    fn tampered_bytes_fail_to_open() {
        let (key, default, db) = (cipher(7), ns("default"), secret("DB_PASSWORD"));
        let sealed = key.seal(&default, &db, &value("hunter2")).unwrap();
        for at in [0, sealed.ciphertext.len() - 1] {
            let mut tampered = sealed.clone();
            tampered.ciphertext[at] ^= 1;
            assert!(key.open(&default, &db, &tampered).is_err(), "byte {at}");
        }
        let mut tampered = sealed.clone();
        tampered.nonce[0] ^= 1;
        assert!(key.open(&default, &db, &tampered).is_err(), "nonce");
        tampered.nonce.pop();
        assert!(key.open(&default, &db, &tampered).is_err(), "short nonce");
    }
}
