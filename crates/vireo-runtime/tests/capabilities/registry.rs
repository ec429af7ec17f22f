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
    let (named, linked) = refused
        .split_once(" (Vireo links ")
        .unwrap_or_else(|| panic!("the refusal lists what Vireo links: {refused}"));
    assert_eq!(
        named,
        "the component imports `acme:missing/api@1.0.0`, which Vireo does not provide"
    );
    for family in [
        "wasi:http",
        "wasi:keyvalue",
        "fermyon:spin/key-value",
        "spin:postgres",
    ] {
        assert!(linked.contains(family), "{family} is listed: {linked}");
    }
}
