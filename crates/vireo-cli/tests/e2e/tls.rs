//! `vireo serve --tls-cert --tls-key`: HTTPS with a self-signed certificate made here, plain
//! HTTP and stalled handshakes turned away without harm, the CLI over https:// with
//! `--ca-cert`, reloads on SIGHUP and on file changes (a bad pair keeps the last good one), and
//! clear refusals to start.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{DEADLINE, Server, ServerBuilder, eventually, guest};

/// A self-signed certificate for 127.0.0.1 and its PKCS#8 key, as PEM.
struct Pair {
    cert_pem: String,
    key_pem: String,
    cert_der: Vec<u8>,
}

impl Pair {
    /// A certificate named `name` (its common name), so tests can tell pairs apart.
    fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().expect("generate a key");
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("certificate parameters");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("self-sign");
        Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
        }
    }

    fn root(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_der(&self.cert_der).expect("a DER certificate")
    }
}

/// Where a server reads its certificate and key (outside its data directory).
struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
}

impl TlsFiles {
    fn in_dir(dir: &Path) -> Self {
        Self {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    /// Writes `pair` over the files, the certificate first (as a renewal would).
    fn write(&self, pair: &Pair) -> &Self {
        std::fs::write(&self.cert, &pair.cert_pem).expect("write the certificate");
        std::fs::write(&self.key, &pair.key_pem).expect("write the key");
        self
    }
}

/// A client trusting only `pairs`' certificates that reports the certificate it was shown.
/// Each client opens its own connections, so each one's first request is a new handshake.
fn trusting(pairs: &[&Pair]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only(pairs.iter().map(|pair| pair.root()))
        .tls_info(true)
        .build()
        .expect("HTTPS client")
}

/// The certificate (DER) a new handshake with `server` is shown, with `/healthz`'s status.
async fn presented(server: &Server, client: &reqwest::Client) -> Result<(u16, Vec<u8>), String> {
    let response = client
        .get(server.url("/healthz"))
        .send()
        .await
        .map_err(|e| format!("GET /healthz over HTTPS: {e:?}"))?;
    let cert = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .ok_or("no peer certificate")?
        .to_vec();
    Ok((response.status().as_u16(), cert))
}

/// Waits until new handshakes (a new client each time) are shown `pair`'s certificate.
async fn until_presenting(
    server: &Server,
    client: impl Fn() -> reqwest::Client,
    pair: &Pair,
    what: &str,
) {
    eventually(DEADLINE, || async {
        match presented(server, &client()).await? {
            (200, cert) if cert == pair.cert_der => Ok(()),
            (status, _) => Err(format!("{what}: not yet presented (healthz {status})")),
        }
    })
    .await;
}

/// Sends `bytes` over plain TCP and returns everything the server sends back until it closes.
fn plain_exchange(address: &str, bytes: &[u8]) -> (Vec<u8>, Duration) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let started = Instant::now();
    stream.write_all(bytes).expect("send");
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server did not close the connection: {e}"),
    }
    (answer, started.elapsed())
}

/// What the server wrote to its data directory, besides the config file the harness put there.
fn written(data: &Path) -> Vec<String> {
    match std::fs::read_dir(data) {
        Ok(entries) => entries
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name != "vireo-server.toml")
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn https_serves_probes_functions_the_api_and_metrics_and_turns_plain_http_away() {
    let data = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let pair = Pair::new("vireo test");
    let files = TlsFiles::in_dir(certs.path());
    files.write(&pair);
    let server = Server::builder(data.path())
        .tls(&files.cert, &files.key)
        .start();
    assert!(server.url.starts_with("https://"), "{}", server.url);

    // The admin API (a deploy), a function, and the probes, all over HTTPS.
    server
        .deploy_ok("hello", "hello", serde_json::json!({}))
        .await;
    let client = trusting(&[&pair]);
    for path in ["/healthz", "/readyz", "/fn/default/hello/"] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.version(), reqwest::Version::HTTP_11, "{path}");
    }
    // Over HTTPS the dashboard's cookies are marked Secure.
    let login = client.get(server.url("/ui/login")).send().await.unwrap();
    let cookie = login.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let (status, functions) = server.get_json("/v1/namespaces/default/functions").await;
    assert_eq!(status, 200, "{functions}");
    assert!(functions.to_string().contains("hello"), "{functions}");
    assert!(server.metrics_text().await.contains("vireo_"));

    // Plain HTTP to the HTTPS port: the handshake fails, no HTTP answer comes back, and the
    // server goes on serving.
    let (answer, _) = plain_exchange(
        &server.address(),
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/"),
        "plain HTTP got an HTTP answer: {answer:?}"
    );
    let response = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);

    // A client trusting no such certificate is refused in the handshake.
    let stranger = trusting(&[&Pair::new("someone else")]);
    let refused = stranger
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap_err();
    assert!(
        format!("{refused:?}").contains("UnknownIssuer"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_stalled_handshake_is_dropped_after_the_header_timeout_while_others_are_served() {
    let data = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let pair = Pair::new("vireo test");
    let files = TlsFiles::in_dir(certs.path());
    files.write(&pair);
    let server = Server::builder(data.path())
        .config("[limits]\nheader_read_timeout_ms = 500\n")
        .tls(&files.cert, &files.key)
        .start();

    // Connects and never says hello: the server hangs up once the header timeout is over.
    let address = server.address();
    let stalled = std::thread::spawn(move || plain_exchange(&address, b""));
    let client = trusting(&[&pair]);
    for _ in 0..5 {
        let response = client.get(server.url("/healthz")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let (answer, dropped_after) = tokio::task::spawn_blocking(move || stalled.join().unwrap())
        .await
        .unwrap();
    assert!(answer.is_empty(), "{answer:?}");
    assert!(
        dropped_after >= Duration::from_millis(400) && dropped_after < DEADLINE,
        "dropped after {dropped_after:?}"
    );
}

#[tokio::test]
async fn the_cli_talks_https_trusting_ca_cert_and_says_why_without_it() {
    let data = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let files = TlsFiles::in_dir(certs.path());
    files.write(&Pair::new("vireo test"));
    // The files from the environment this time.
    let server = Server::builder(data.path())
        .env("VIREO_TLS_CERT", &files.cert)
        .env("VIREO_TLS_KEY", &files.key)
        .start();
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let component = certs.path().join("hello.wasm");
    std::fs::write(&component, guest("hello")).unwrap();

    /// How the CLI is told to trust the server's certificate.
    enum Trust {
        Flag,
        Env,
        Nothing,
    }
    let cli = |trust: Trust, args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_vireo"));
        command
            .args(["--server", &server.url])
            .args(args)
            .env("VIREO_DATA", &server.data)
            .env("XDG_CONFIG_HOME", certs.path().join("config"))
            .env_remove("VIREO_API_KEY")
            .env_remove("VIREO_CA_CERT")
            .env_remove("VIREO_PROFILE")
            .env_remove("VIREO_URL");
        match trust {
            Trust::Flag => command.arg("--ca-cert").arg(&files.cert),
            Trust::Env => command.env("VIREO_CA_CERT", &files.cert),
            Trust::Nothing => &mut command,
        };
        let output = command.output().expect("run vireo");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.success(), output.stdout, stderr)
    };
    let component = component.to_str().unwrap();
    let (deployed, _, stderr) = cli(Trust::Env, &["deploy", "hello", component]);
    assert!(deployed, "{stderr}");
    let (listed, stdout, stderr) = cli(Trust::Flag, &["ls", "-o", "json"]);
    assert!(listed, "{stderr}");
    assert!(String::from_utf8_lossy(&stdout).contains("hello"));
    let (invoked, stdout, stderr) = cli(Trust::Env, &["invoke", "hello"]);
    assert!(invoked, "{stderr}");
    assert!(!stdout.is_empty());

    let (refused, _, stderr) = cli(Trust::Nothing, &["ls"]);
    assert!(!refused);
    assert!(
        stderr.contains("is not trusted") && stderr.contains("--ca-cert"),
        "{stderr}"
    );
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");

    // A profile saved with --ca-cert remembers it.
    let key = server.admin_key.clone();
    let (logged_in, _, stderr) = cli(Trust::Flag, &["login", "--api-key", &key]);
    assert!(logged_in, "{stderr}");
    let (listed, _, stderr) = cli(Trust::Nothing, &["ls"]);
    assert!(listed, "the profile's CA certificate is used: {stderr}");
}

#[tokio::test]
async fn certificates_reload_on_sighup_and_file_changes_and_a_bad_pair_keeps_the_last_good_one() {
    let data = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (first, second, third) = (Pair::new("first"), Pair::new("second"), Pair::new("third"));
    let files = TlsFiles::in_dir(certs.path());
    files.write(&first);
    let server = Server::builder(data.path())
        .tls(&files.cert, &files.key)
        .start();
    let client = || trusting(&[&first, &second, &third]);
    until_presenting(&server, client, &first, "the first certificate").await;

    // An open connection outlives the reload.
    let kept = client();
    assert_eq!(presented(&server, &kept).await.unwrap().1, first.cert_der);

    // SIGHUP: new handshakes get the new certificate.
    files.write(&second);
    server.signal("HUP");
    eventually(DEADLINE, || async {
        let (_, cert) = presented(&server, &client()).await?;
        let reloaded = server.log_lines("reloaded the TLS certificate (SIGHUP)");
        match cert == second.cert_der && !reloaded.is_empty() {
            true => Ok(()),
            false => Err("the SIGHUP reload has not happened".to_string()),
        }
    })
    .await;
    assert_eq!(
        presented(&server, &kept).await.unwrap(),
        (200, first.cert_der.clone()),
        "the open connection was disturbed"
    );

    // A broken key: a warning naming the file; the last good certificate stays.
    std::fs::write(
        &files.key,
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    server.signal("HUP");
    let warning = server.logged("could not reload the TLS certificate").await;
    assert!(
        warning.contains("WARN") && warning.contains(&files.key.display().to_string()),
        "{warning}"
    );
    assert_eq!(
        presented(&server, &client()).await.unwrap(),
        (200, second.cert_der.clone())
    );

    // Replaced files are noticed without a signal.
    files.write(&third);
    until_presenting(&server, client, &third, "the third certificate").await;
    server
        .logged("reloaded the TLS certificate (the files changed)")
        .await;
}

#[tokio::test]
async fn bad_tls_settings_stop_the_start_before_anything_is_written() {
    let certs = tempfile::tempdir().unwrap();
    let files = TlsFiles::in_dir(certs.path());
    files.write(&Pair::new("vireo test"));
    let other = TlsFiles::in_dir(&certs.path().join("other"));
    std::fs::create_dir(certs.path().join("other")).unwrap();
    other.write(&Pair::new("another"));
    let cert = files.cert.display().to_string();
    let missing = certs.path().join("missing.pem").display().to_string();
    let stranger_key = other.key.display().to_string();
    let key = files.key.display().to_string();

    // Each way to get it wrong (a data directory each): how the server is started, and what
    // its refusal must say.
    let data: [tempfile::TempDir; 6] = std::array::from_fn(|_| tempfile::tempdir().unwrap());
    let refusals: [(ServerBuilder, Vec<&str>); 6] = [
        (
            Server::builder(data[0].path()).args(&["--tls-cert", &cert]),
            vec!["no key; pass --tls-key", &cert],
        ),
        (
            Server::builder(data[1].path()).env("VIREO_TLS_KEY", &files.key),
            vec!["no certificate; pass --tls-cert", &key],
        ),
        (
            Server::builder(data[2].path()).config("[tls]\ncert = \"/nowhere/cert.pem\"\n"),
            vec!["no key; pass --tls-key", "/nowhere/cert.pem"],
        ),
        (
            Server::builder(data[3].path()).args(&["--tls-cert", &missing, "--tls-key", &key]),
            vec!["cannot read the TLS certificate", &missing],
        ),
        (
            Server::builder(data[4].path()).args(&[
                "--tls-cert",
                &cert,
                "--tls-key",
                &stranger_key,
            ]),
            vec!["does not belong to the certificate", &stranger_key, &cert],
        ),
        (
            Server::builder(data[5].path()).args(&["--tls-cert", &cert, "--tls-key", &cert]),
            vec!["holds no PEM private key", &cert],
        ),
    ];
    for ((builder, expected), data) in refusals.into_iter().zip(&data) {
        let stderr = builder.start_fails();
        for needle in &expected {
            assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
        }
        assert_eq!(written(data.path()), Vec::<String>::new(), "{expected:?}");
    }
}
