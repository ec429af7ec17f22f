//! The change feed of a SQLite database. SQLite cannot tell one connection of another's
//! change, and needs not: one server at a time holds a data directory, so every writer of a
//! database file is in one process. Every handle this process opens on a file shares one
//! in-process feed, so a second handle (a second node, in the conformance suite) hears what
//! the first publishes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::changes::LocalFeed;

/// The feeds of the database files this process has open, by canonical path.
static FEEDS: Mutex<BTreeMap<PathBuf, Weak<LocalFeed>>> = Mutex::new(BTreeMap::new());

/// The feed every handle on the database at `path` (which exists) shares.
pub(super) fn feed_of(path: &Path) -> Arc<LocalFeed> {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut feeds = FEEDS.lock().unwrap_or_else(PoisonError::into_inner);
    // Feeds of files no handle has open any more go.
    feeds.retain(|_, feed| feed.strong_count() > 0);
    if let Some(feed) = feeds.get(&path).and_then(Weak::upgrade) {
        return feed;
    }
    let feed = Arc::new(LocalFeed::new());
    feeds.insert(path, Arc::downgrade(&feed));
    feed
}
