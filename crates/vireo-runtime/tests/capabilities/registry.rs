//! Deploy takes what a component may import from the registry: whatever no capability links is
//! refused, and the refusal names the import and what Vireo links.

use vireo_core::VersionSettings;

use crate::support::TestHost;

#[tokio::test]
async fn an_import_no_capability_links_is_refused_by_name() {
    let host = TestHost::new();
    let refused = host
        .deploy("missing-import", VersionSettings::default(), &[])
        .await
        .err()
        .expect("the import is refused");
    assert_eq!(
        refused,
        "the component imports `acme:missing/api@1.0.0`, which Vireo does not provide (Vireo links \
         wasi:cli, wasi:clocks, wasi:filesystem, wasi:io, wasi:random, wasi:sockets, wasi:http, \
         wasi:config, wasi:keyvalue and wasi:blobstore at 0.2.x; fermyon:spin/variables, fermyon:spin/key-value, \
         fermyon:spin/redis, fermyon:spin/mqtt and fermyon:spin/mysql, fermyon:spin/rdbms-types at \
         2.0.x; spin:postgres at 3.0.x)"
    );
}
