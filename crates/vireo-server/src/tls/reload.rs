//! Reloads the certificate when asked (SIGHUP) or when either file changes on disk (its change
//! time, size or inode, looked at every few seconds). A pair that does not load
//! keeps the one in use: a renewal written in two steps, or a bad file, never stops the server.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

use super::{Tls, files};

/// How often the files are looked at for changes.
const CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// What a file looked like when it was last read; a change means it was rewritten or replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    /// The inode's change time, which any write or rename sets and nothing can set back
    /// (unlike the modification time).
    changed: (i64, i64),
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Self> {
        std::fs::metadata(path).ok().as_ref().map(Self::from)
    }
}

impl From<&Metadata> for Stamp {
    fn from(metadata: &Metadata) -> Self {
        Self {
            changed: (metadata.ctime(), metadata.ctime_nsec()),
            len: metadata.len(),
            inode: metadata.ino(),
        }
    }
}

/// Listens for SIGHUP at once (so a SIGHUP no longer ends the process), and returns the loop
/// that reloads `tls` until the task is dropped.
pub fn watch(tls: Tls) -> impl Future<Output = ()> {
    let hangup = signal(SignalKind::hangup())
        .inspect_err(|error| {
            tracing::warn!(%error, "cannot listen for SIGHUP: the TLS files are reloaded only when they change");
        })
        .ok();
    reload_loop(tls, hangup)
}

async fn reload_loop(tls: Tls, mut hangup: Option<Signal>) {
    let stamps = |tls: &Tls| (Stamp::of(&tls.files.cert), Stamp::of(&tls.files.key));
    let mut seen = stamps(&tls);
    let mut checks = tokio::time::interval(CHECK_INTERVAL);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let reason = tokio::select! {
            Some(()) = hang_up(&mut hangup) => "SIGHUP",
            _ = checks.tick() => {
                let now = stamps(&tls);
                if now == seen {
                    continue;
                }
                seen = now;
                "the files changed"
            }
        };
        reload(&tls, reason);
    }
}

/// The next SIGHUP; pending forever when it cannot be listened for.
async fn hang_up(hangup: &mut Option<Signal>) -> Option<()> {
    match hangup {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// Loads the pair again; on failure the certificate in use stays.
fn reload(tls: &Tls, reason: &str) {
    match files::certified_key(&tls.files, &tls.provider) {
        Ok(certificate) => {
            tls.certificate.replace(certificate);
            tracing::info!(cert = %tls.files.cert.display(), key = %tls.files.key.display(), "reloaded the TLS certificate ({reason})");
        }
        Err(error) => {
            tracing::warn!(
                "could not reload the TLS certificate ({reason}), still serving the previous one: {error:#}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::test_pairs::{files_in, write_pair};

    fn presented(tls: &Tls) -> Vec<u8> {
        tls.certificate.get().end_entity_cert().unwrap().to_vec()
    }

    #[test]
    fn a_failed_reload_keeps_the_certificate_and_a_good_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = files_in(dir.path());
        let first = write_pair(&files, "first.example");
        let tls = Tls::load(&files).unwrap();
        assert_eq!(presented(&tls), first);

        std::fs::write(&files.key, "half a key").unwrap();
        reload(&tls, "test");
        assert_eq!(presented(&tls), first);

        let second = write_pair(&files, "second.example");
        reload(&tls, "test");
        assert_eq!(presented(&tls), second);
    }

    #[test]
    fn rewriting_or_removing_a_file_changes_its_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let files = files_in(dir.path());
        write_pair(&files, "first.example");
        let before = Stamp::of(&files.key);
        assert!(before.is_some());
        std::fs::write(&files.key, "shorter").unwrap();
        assert_ne!(Stamp::of(&files.key), before);
        std::fs::remove_file(&files.key).unwrap();
        assert_eq!(Stamp::of(&files.key), None);
    }
}
