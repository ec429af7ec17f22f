//! `vireo serve`: hands the command line to the server, which applies its config file and defaults.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use vireo_server::{DEFAULT_DATA_DIR, DEFAULT_LISTEN, LogFormat, ServeOptions};

#[derive(Args)]
pub struct ServeArgs {
    #[arg(
        long,
        env = "VIREO_LISTEN",
        value_name = "ADDR",
        help = format!("Address to listen on, e.g. 0.0.0.0:8080 [default: from the config file, else {DEFAULT_LISTEN}]")
    )]
    listen: Option<String>,

    #[arg(
        long,
        env = "VIREO_DATA",
        value_name = "DIR",
        help = format!(
            "Directory for the database, components and compiled artifacts [default: from the config file, else \
             ./{DEFAULT_DATA_DIR}]"
        )
    )]
    data: Option<PathBuf>,

    /// Where the state lives: `sqlite:PATH` (one node) or
    /// `postgres://user:password@host:port/database` (any number of nodes on one database)
    /// [default: from the config file, else the SQLite file DIR/vireo.db]
    #[arg(long, env = "VIREO_STORE", hide_env_values = true, value_name = "URL")]
    store: Option<String>,

    /// TOML config file; command-line flags and VIREO_* variables override what it says.
    #[arg(long, env = "VIREO_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// How the server prints its own logs (to stderr) [default: text]
    #[arg(long, value_enum, value_name = "FORMAT")]
    log_format: Option<ServerLogFormat>,

    /// File with the master key that seals secrets; created (mode 0600) when missing, and
    /// refused if group or others may read it [default: from the config file, else DIR/master.key]
    #[arg(long, env = "VIREO_MASTER_KEY_FILE", value_name = "FILE")]
    master_key_file: Option<PathBuf>,

    /// Serve HTTPS with this PEM certificate chain (the server's certificate first); needs
    /// --tls-key. Reloaded on SIGHUP or when the file changes [default: from the config file]
    #[arg(long, env = "VIREO_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,

    /// The PEM private key (PKCS#8, RSA or EC) of --tls-cert [default: from the config file]
    #[arg(long, env = "VIREO_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,

    /// Deploy a component at start as NAME=FILE (repeatable) in the `default` namespace; a file
    /// identical to the latest version keeps that version.
    #[arg(long, value_name = "NAME=FILE")]
    deploy: Vec<String>,
}

/// Mirrors `vireo_server::LogFormat`, which knows nothing about clap.
#[derive(Clone, Copy, ValueEnum)]
enum ServerLogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let options = ServeOptions {
        listen: args.listen,
        data: args.data,
        store: args.store,
        config: args.config,
        log_format: args.log_format.map(|format| match format {
            ServerLogFormat::Text => LogFormat::Text,
            ServerLogFormat::Json => LogFormat::Json,
        }),
        deploy: args.deploy,
        master_key_file: args.master_key_file,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
    };
    vireo_server::serve(options).await
}
