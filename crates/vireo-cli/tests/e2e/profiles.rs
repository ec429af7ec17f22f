//! `vireo login` saves a connection as a profile (mode 0600), so a shell needs no exported key;
//! `--profile` picks one; `logout` removes it.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support::Server;

/// `vireo ARGS…` with only `config` as its configuration: no server, key or data directory from
/// the environment; `stdin` on its standard input.
fn vireo(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vireo"))
        .args(args)
        .env("XDG_CONFIG_HOME", config)
        .env("VIREO_DATA", config.join("no-data-here"))
        .env_remove("VIREO_URL")
        .env_remove("VIREO_API_KEY")
        .env_remove("VIREO_NAMESPACE")
        .env_remove("VIREO_PROFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vireo");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn login_saves_a_profile_that_later_commands_use() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let developer = &server.developer_key_for_new_namespace("team");
    let config = tempfile::tempdir().unwrap();
    let config = config.path();

    // A key the server does not know is refused, and nothing is saved.
    let refused = vireo(
        config,
        &["login", "--server", &server.url, "--api-key", "vireo_x_y"],
        "",
    );
    assert!(!refused.status.success());
    assert!(
        said(&refused).contains("checking the API key"),
        "{}",
        said(&refused)
    );
    assert!(!config.join("vireo/profiles.toml").exists());

    // The admin key from a flag, as the default profile.
    let logged_in = vireo(
        config,
        &[
            "login",
            "--server",
            &server.url,
            "--api-key",
            &server.admin_key,
        ],
        "",
    );
    assert!(logged_in.status.success(), "{}", said(&logged_in));
    assert!(said(&logged_in).contains("this key can use namespaces default, team"));
    let file = config.join("vireo/profiles.toml");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only its user reads the keys");

    // The developer key from standard input, as a named profile with its namespace.
    let named = vireo(
        config,
        &[
            "login",
            "--server",
            &server.url,
            "--profile",
            "dev",
            "-n",
            "team",
        ],
        &format!("{developer}\n"),
    );
    assert!(named.status.success(), "{}", said(&named));

    // No server, key or namespace in the environment: the profiles say them.
    let listed = vireo(config, &["ls"], "");
    assert!(listed.status.success(), "{}", said(&listed));
    let deployed = vireo(
        config,
        &[
            "--profile",
            "dev",
            "deploy",
            "hello",
            crate::support::guests()
                .join("hello.wasm")
                .to_str()
                .unwrap(),
        ],
        "",
    );
    assert!(
        said(&deployed).contains("deployed team/hello version 1"),
        "{}",
        said(&deployed)
    );

    let profiles = vireo(config, &["profiles"], "");
    let shown = said(&profiles);
    assert!(shown.contains("dev") && shown.contains("team"), "{shown}");
    // `vireo_<id>_<secret>`: the secret (base64url) may hold `_` itself.
    let secret = developer.splitn(3, '_').nth(2).unwrap();
    assert!(!shown.contains(secret), "never the key: {shown}");

    let out = vireo(config, &["logout", "--profile", "dev"], "");
    assert!(out.status.success(), "{}", said(&out));
    let gone = vireo(config, &["--profile", "dev", "ls"], "");
    assert!(!gone.status.success());
    assert!(
        said(&gone).contains("there is no profile \"dev\"; the profiles are default"),
        "{}",
        said(&gone)
    );
}
