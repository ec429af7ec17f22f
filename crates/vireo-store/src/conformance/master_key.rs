//! The master key record: the first fingerprint stays, whoever records another later.

use crate::Stores;

pub(super) async fn the_first_master_key_fingerprint_stays(stores: &Stores) {
    let record = &stores.master_key;
    assert_eq!(record.record_master_key(b"first").await.unwrap(), b"first");
    assert_eq!(record.record_master_key(b"second").await.unwrap(), b"first");
    assert_eq!(record.record_master_key(b"first").await.unwrap(), b"first");
}
