//! `TestHost`: a real `Runtime` in a temporary directory. A fixture is deployed as the server
//! deploys one (the capabilities check its settings, the component is prepared), loaded with
//! the environment the server would open for it, and invoked in process.
//!
//! Every capability is linked, as in the server: a version cannot run without WASI's streams
//! and clocks and wasi:http's types, which its request handler takes. A test grants only what
//! it exercises.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use sha2::{Digest as _, Sha256};
use vireo_core::{Body, BoxError, Name, VersionInfo, VersionSettings};
use vireo_runtime::{CapturedLine, Completion, EngineSettings, HostServices, Loaded, Runtime};

/// The fixture components, built for wasm32-wasip2 once per test run.
pub fn guest(name: &str) -> Vec<u8> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let target = root.join("target/guests");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .arg("--manifest-path")
            .arg(root.join("tests/fixtures/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("run cargo to build the fixtures");
        assert!(
            built.success(),
            "building the fixtures for wasm32-wasip2 failed"
        );
        target.join("wasm32-wasip2/release")
    });
    let file = dir.join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
}

pub struct TestHost {
    runtime: Runtime,
    /// Each deploy is a new version of its fixture, as a deploy to the server is.
    deployed: AtomicU32,
    _artifacts: tempfile::TempDir,
}

/// A guest's answer and how its invocation ended.
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub completion: Completion,
}

impl Answer {
    /// The lines the guest wrote, in order, without their timestamps.
    pub fn output(&self) -> Vec<&str> {
        self.completion
            .logs
            .iter()
            .map(|CapturedLine { line, .. }| line.as_str())
            .collect()
    }
}

impl TestHost {
    pub fn new() -> Self {
        Self::with(EngineSettings::default())
    }

    /// A runtime sized for tests, with `settings`' capability settings.
    pub fn with(settings: EngineSettings) -> Self {
        let artifacts = tempfile::tempdir().unwrap();
        let settings = EngineSettings {
            max_memory_mib: 128,
            max_instances: 16,
            ..settings
        };
        Self {
            runtime: Runtime::new(&settings, &HostServices::default(), artifacts.path()).unwrap(),
            deployed: AtomicU32::new(0),
            _artifacts: artifacts,
        }
    }

    /// Deploys `fixture` with `settings` and loads it with `environment` (what the server
    /// opens for it: the settings' `env` and its granted secrets). A deploy the runtime
    /// refuses is an error naming why.
    pub async fn deploy(
        &self,
        fixture: &str,
        settings: VersionSettings,
        environment: &[(&str, &str)],
    ) -> Result<Loaded, String> {
        self.runtime
            .validate_settings(&settings)
            .map_err(|e| e.to_string())?;
        let bytes = guest(fixture);
        let sha = hex::encode(Sha256::digest(&bytes));
        self.runtime
            .prepare(&sha, Bytes::from(bytes.clone()), &settings)
            .await
            .map_err(|e| e.to_string())?;
        let version = VersionInfo {
            namespace: Name::parse("namespace", "test").unwrap(),
            function: Name::parse("function", fixture).unwrap(),
            version: self.deployed.fetch_add(1, Ordering::Relaxed) + 1,
            component_sha256: sha,
            component_size: bytes.len() as u64,
            settings,
            created_at_us: 0,
        };
        let environment: Vec<(String, String)> = environment
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        // Text variables as the server opens them; a secret-bound one needs the server's vault.
        let variables = version
            .settings
            .variables
            .iter()
            .map(|(name, value)| match value {
                vireo_core::variables::VariableValue::Text(text) => (name.clone(), text.clone()),
                vireo_core::variables::VariableValue::Secret(_) => {
                    panic!("the test host opens no secrets: give {name} as text")
                }
            })
            .collect();
        let loaded = self
            .runtime
            .load(
                &version,
                std::future::ready(Ok(bytes)),
                std::future::ready(Ok::<_, std::convert::Infallible>(vireo_runtime::Opened {
                    environment,
                    variables,
                })),
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(loaded)
    }

    /// A GET of `path` with `headers`, answered by `loaded`.
    pub async fn get(&self, loaded: &Loaded, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = http::Request::get(format!("http://localhost{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body: Body = Empty::new()
            .map_err(|e| -> BoxError { match e {} })
            .boxed_unsync();
        let execution = self
            .runtime
            .execute(loaded, request.body(body).unwrap())
            .await;
        let (status, body) = match execution.response {
            Ok(response) => {
                let status = response.status().as_u16();
                let bytes = response.into_body().collect().await.unwrap().to_bytes();
                (status, String::from_utf8_lossy(&bytes).into_owned())
            }
            Err(failure) => panic!("the guest gave no response: {failure:?}"),
        };
        Answer {
            status,
            body,
            completion: execution.completion.await,
        }
    }
}
