//! The WASI capability grants a function its environment and captured output, and nothing else.

use vireo_core::VersionSettings;

use crate::support::TestHost;

#[tokio::test]
async fn a_function_sees_its_environment_and_output_and_nothing_else() {
    let host = TestHost::new();
    let environment = [("GREETING", "hello"), ("DB_PASSWORD", "hunter2")];
    let sandbox = host
        .deploy("sandbox", VersionSettings::default(), &environment)
        .await
        .unwrap();

    let answer = host.get(&sandbox, "/", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let granted: Vec<&str> = answer.body.lines().collect();
    assert_eq!(
        granted,
        [
            "env=DB_PASSWORD:hunter2,GREETING:hello",
            "args=0",
            "preopens=0",
            "tcp=access-denied",
            "udp=access-denied",
            "lookup=permanent-resolver-failure",
            "random=16",
            "clock=true",
        ]
    );
    assert_eq!(
        answer.output(),
        ["sandbox on stdout", "sandbox on stderr"],
        "stdout and stderr are captured line by line"
    );
}
