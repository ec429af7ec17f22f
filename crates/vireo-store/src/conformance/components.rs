//! Component bytes: stored once per sha256, read back whole, refused under a name that is not
//! a sha256.

use std::io::ErrorKind;

use vireo_core::component_sha256;

use crate::Stores;

pub(super) async fn components_round_trip_once_per_hash(stores: &Stores) {
    let bytes = b"\0asm component bytes".as_slice();
    let sha = stores.components.put_component(bytes).await.unwrap();
    assert_eq!(sha, component_sha256(bytes));
    assert_eq!(stores.components.put_component(bytes).await.unwrap(), sha);
    let other = stores.components.put_component(b"other").await.unwrap();
    assert_ne!(other, sha);
    assert_eq!(stores.components.component(&sha).await.unwrap(), bytes);
    assert_eq!(stores.components.component(&other).await.unwrap(), b"other");
}

pub(super) async fn components_refuse_names_that_are_not_a_sha256(stores: &Stores) {
    let sha = stores.components.put_component(b"bytes").await.unwrap();
    for bad in [
        &sha.to_uppercase(),
        &sha[1..],
        "../../etc/passwd",
        "",
        &format!("{}g", &sha[1..]),
    ] {
        let error = stores.components.component(bad).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    let missing = component_sha256(b"never stored");
    let error = stores.components.component(&missing).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
}
