//! The config capability serves a version's variables to both interfaces a guest may use.

use std::collections::BTreeMap;

use vireo_core::VersionSettings;
use vireo_core::variables::VariableValue;

use crate::support::TestHost;

#[tokio::test]
async fn variables_are_read_alike_through_wasi_config_and_spin() {
    let host = TestHost::new();
    let settings = VersionSettings {
        variables: BTreeMap::from([
            (
                "api_url".to_string(),
                VariableValue::Text("https://a.example".into()),
            ),
            ("mode".to_string(), VariableValue::Text("fast".into())),
        ]),
        ..VersionSettings::default()
    };
    let config = host.deploy("config", settings, &[]).await.unwrap();

    let answer = host.get(&config, "/?name=mode", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.body,
        "spin: ok fast\nwasi: some fast\nall: api_url=https://a.example,mode=fast\n"
    );
    let unset = host.get(&config, "/?name=other", &[]).await;
    assert!(
        unset
            .body
            .starts_with("spin: undefined no variable named other\nwasi: none\n"),
        "{}",
        unset.body
    );

    // A version without variables reads none, and nothing leaks from the other version.
    let bare = host
        .deploy("config", VersionSettings::default(), &[])
        .await
        .unwrap();
    let answer = host.get(&bare, "/?name=mode", &[]).await;
    assert!(
        answer.body.ends_with("wasi: none\nall: \n"),
        "{}",
        answer.body
    );
}
