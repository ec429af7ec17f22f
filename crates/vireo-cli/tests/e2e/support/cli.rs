//! The `vireo` command-line client run against a test server.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::Server;

impl Server {
    /// The `vireo` CLI pointed at this server; it finds the admin key in the data directory,
    /// or is given the one the nodes of a shared store share.
    fn cli_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vireo"));
        command
            .args(args)
            .env("VIREO_URL", &self.url)
            .env("VIREO_DATA", &self.data)
            // No saved profile of the machine's user leaks in.
            .env("XDG_CONFIG_HOME", self.data.join("cli-config"))
            .env_remove("VIREO_PROFILE");
        match self.shared_admin_key() {
            Some(key) => command.env("VIREO_API_KEY", key),
            None => command.env_remove("VIREO_API_KEY"),
        };
        match &self.ca_cert {
            Some(cert) => command.env("VIREO_CA_CERT", cert),
            None => command.env_remove("VIREO_CA_CERT"),
        };
        command
    }

    /// Runs the `vireo` CLI against this server.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run vireo CLI")
    }

    /// Runs the `vireo` CLI against this server in `dir` (a project's directory).
    pub fn cli_in(&self, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
        self.cli_in_with_path(dir, args, &std::env::var("PATH").unwrap_or_default())
    }

    /// [`Server::cli_in`] with `PATH` set to `path`, e.g. for a build command's toolchain.
    pub fn cli_in_with_path(
        &self,
        dir: &std::path::Path,
        args: &[&str],
        path: &str,
    ) -> std::process::Output {
        self.cli_command(args)
            .current_dir(dir)
            .env("PATH", path)
            .stdin(Stdio::null())
            .output()
            .expect("run vireo CLI")
    }

    /// Runs the `vireo` CLI against this server; it must succeed. Its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "vireo {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("the CLI prints UTF-8")
    }

    /// Creates `namespace` and a developer key for it; the key.
    pub fn developer_key_for_new_namespace(&self, namespace: &str) -> String {
        self.cli_ok(&["ns", "create", namespace]);
        self.key_for(namespace, "developer")
    }

    /// A new key of `role` for `namespace`.
    pub fn key_for(&self, namespace: &str, role: &str) -> String {
        let created = self.cli_ok(&[
            "keys", "create", "--role", role, "-n", namespace, "-o", "json",
        ]);
        let created: Value = serde_json::from_str(&created).expect("the key as JSON");
        created["key"].as_str().expect("a key").to_string()
    }

    /// An HTTP client with a new viewer key of the default namespace.
    pub fn viewer_client(&self) -> reqwest::Client {
        Self::client_with_key(&self.key_for("default", "viewer"))
    }

    /// Runs the `vireo` CLI against this server with `input` on its standard input.
    pub fn cli_with_stdin(&self, args: &[&str], input: &[u8]) -> std::process::Output {
        let mut child = self
            .cli_command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run vireo CLI");
        // Dropping stdin after writing closes it, so the CLI sees the end of the input.
        child
            .stdin
            .take()
            .expect("stdin piped")
            .write_all(input)
            .expect("write the CLI's stdin");
        child.wait_with_output().expect("wait for vireo CLI")
    }
}

pub fn stdout_json(output: &std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "CLI failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "CLI printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}
