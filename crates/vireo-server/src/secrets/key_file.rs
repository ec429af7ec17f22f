//! The master key file: 32 random bytes written as 64 hex digits and a newline, created with
//! mode 0600 set as the file is created (never loosened after writing), and refused when its
//! format is wrong or group or others may access it.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::{Context as _, bail};
use zeroize::Zeroizing;

use super::cipher::{Cipher, KEY_BYTES, fill_random};

const HEX_DIGITS: usize = KEY_BYTES * 2;

/// The key in `path`; none when the file does not exist.
pub fn load(path: &Path) -> anyhow::Result<Option<Cipher>> {
    match File::open(path) {
        Ok(file) => read(path, file).map(Some),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error)
            .with_context(|| format!("cannot open the master key file {}", path.display())),
    }
}

fn read(path: &Path, file: File) -> anyhow::Result<Cipher> {
    let at = path.display();
    let mode = file
        .metadata()
        .with_context(|| format!("cannot read the master key file {at}"))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "the master key file {at} is accessible by group or others (mode {:o}); \
             restrict it with `chmod 600 {at}`",
            mode & 0o777
        );
    }
    // One byte more than a valid file is enough to tell it is too long.
    let mut text = Zeroizing::new(Vec::new());
    file.take(HEX_DIGITS as u64 + 2)
        .read_to_end(&mut text)
        .with_context(|| format!("cannot read the master key file {at}"))?;
    let digits = text.strip_suffix(b"\n").unwrap_or(&text);
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    if digits.len() != HEX_DIGITS || hex::decode_to_slice(digits, &mut *key).is_err() {
        bail!(
            "the master key file {at} does not hold a key: it must be {HEX_DIGITS} hexadecimal \
             digits (32 bytes) and a newline, as Vireo wrote it; secrets stored under the key \
             cannot be read without the original file"
        );
    }
    Ok(Cipher::new(&key))
}

/// A new random key, written to `path`, which must not exist.
pub fn create(path: &Path) -> anyhow::Result<Cipher> {
    let at = path.display();
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    fill_random(&mut *key)?;
    let mut text = Zeroizing::new(hex::encode(*key));
    text.push('\n');
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create the master key file {at}"))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the master key file {at}"))?;
    // The file's directory entry must survive a power cut as surely as the secrets it opens.
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("cannot sync the directory of {at}"))?;
    tracing::info!(path = %at, "created a new master key: back it up, secrets cannot be read without it");
    Ok(Cipher::new(&key))
}

#[cfg(test)]
mod tests {
    use vireo_core::{Name, SecretName, SecretValue};

    use super::*;

    fn seal_and_open(first: &Cipher, second: &Cipher) -> anyhow::Result<String> {
        let (ns, name) = (
            Name::default_namespace(),
            SecretName::parse("DB_PASSWORD").unwrap(),
        );
        let sealed = first.seal(&ns, &name, &SecretValue::new("v".into()).unwrap())?;
        second.open(&ns, &name, &sealed)
    }

    #[test]
    fn created_private_then_loaded_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        assert!(load(&path).unwrap().is_none());
        let created = create(&path).unwrap();
        let metadata = std::fs::metadata(&path).unwrap();
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
        assert_eq!(metadata.len(), HEX_DIGITS as u64 + 1);
        let loaded = load(&path).unwrap().unwrap();
        assert_eq!(seal_and_open(&created, &loaded).unwrap(), "v");
    }

    #[test]
    fn a_key_others_may_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = load(&path).err().unwrap();
        assert!(err.to_string().contains("mode 640"), "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_file_of_the_wrong_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        for content in [
            String::new(),
            "ab".repeat(KEY_BYTES - 1),
            "ab".repeat(KEY_BYTES + 1),
            format!("{}\n\n", "ab".repeat(KEY_BYTES)),
            "zz".repeat(KEY_BYTES),
        ] {
            let _ = std::fs::remove_file(&path);
            std::fs::write(&path, &content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let err = load(&path).err().unwrap();
            assert!(
                err.to_string().contains("does not hold a key"),
                "{content:?}: {err}"
            );
        }
        // Without the trailing newline the key is still read.
        std::fs::write(&path, "ab".repeat(KEY_BYTES)).unwrap();
        assert!(load(&path).unwrap().is_some());
    }
}
