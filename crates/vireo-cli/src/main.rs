//! `vireo`: runs the Vireo server (`vireo serve`) and talks to one over its admin API.

mod apply;
mod args;
mod buckets;
mod build;
mod client;
mod config;
mod credentials;
mod cron;
mod deploy;
mod describe;
mod dev;
mod functions;
mod invocations;
mod invoke;
mod kv;
mod login;
mod logs;
mod manifest;
mod new;
mod nodes;
mod output;
mod profiles;
mod queue;
mod routes;
mod secrets;
mod serve;
mod settings_args;
mod sources;
mod spin_manifest;
mod sqlite;
mod sse;
mod store;
mod tenants;
mod top;
mod usage;
mod views;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::client::Client;
use crate::output::Format;
use crate::profiles::{Connection, Given, Profiles};

/// Every request allocates and frees many small objects across two worker threads; mimalloc
/// serves hello about 11 % faster than glibc's allocator (BENCHMARKS.md) for about 20 MiB more
/// resident memory at start.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Shown apart from each command's own options.
const GLOBAL: &str = "Global options";

/// Vireo: a self-hosted Function-as-a-Service platform for WebAssembly HTTP components.
///
/// Start a server with `vireo serve`, deploy a component with `vireo deploy hello hello.wasm`,
/// call it with `vireo invoke hello` and read what it printed with `vireo logs hello`.
/// `vireo invoke --async` queues an invocation durably; `vireo cron add` schedules them.
/// `vireo secrets set` keeps a value encrypted; `vireo deploy --secret` grants it.
/// `vireo kv` reads and writes the namespace's key-value stores.
/// A project keeps its function in `vireo.toml`: `vireo build`, `vireo deploy`, `vireo dev`.
#[derive(Parser)]
#[command(name = "vireo", version, max_term_width = 100)]
struct Cli {
    /// Base URL of the Vireo server to talk to [default: the profile's, else
    /// http://127.0.0.1:8080]
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "VIREO_URL",
        value_name = "URL"
    )]
    server: Option<String>,

    /// The saved connection to use (`vireo login` saves one) [default: the profile `default`,
    /// if there is one]. Flags and variables still replace its parts.
    #[arg(long, global = true, help_heading = GLOBAL, env = "VIREO_PROFILE", value_name = "NAME")]
    profile: Option<String>,

    /// Namespace the function commands work in [default: default]. For `keys create`, the
    /// namespaces the key acts in, comma-separated.
    #[arg(
        short = 'n',
        long,
        global = true,
        help_heading = GLOBAL,
        env = "VIREO_NAMESPACE",
        value_name = "NS"
    )]
    namespace: Option<String>,

    /// API key to authenticate with. Without one, the server using `$VIREO_DATA` (default
    /// `.vireo`) is sent the admin key its first start wrote there, and no other server is.
    #[arg(long, global = true, help_heading = GLOBAL, env = "VIREO_API_KEY", hide_env_values = true, value_name = "KEY")]
    api_key: Option<String>,

    /// A PEM file of certificates to trust besides the system's, for an https:// server whose
    /// certificate is self-signed or from a private CA.
    #[arg(long, global = true, help_heading = GLOBAL, env = "VIREO_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,

    /// How to print results: `table` for people, `json` for scripts (the server's answer; one
    /// object per line for logs), `csv` for `vireo usage`.
    #[arg(short = 'o', long, global = true, help_heading = GLOBAL, value_enum, default_value_t = Format::Table)]
    output: Format,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Vireo server in the foreground until Ctrl-C or SIGTERM.
    Serve(serve::ServeArgs),
    /// Write a new function project from a template: `vireo new js greet` (rust, python, js;
    /// `vireo new --list` says what each needs).
    New(new::NewArgs),
    /// Upload a component as the next version of a function (creating the function if needed);
    /// without arguments, deploy what ./vireo.toml says (building first when it is stale).
    Deploy(deploy::DeployArgs),
    /// Run the project manifest's build command, then check the component as a deploy would
    /// and print its size and build time.
    Build(build::BuildArgs),
    /// Run a local server (data in the project's .vireo/), deploy the manifest's functions to
    /// it, rebuild and redeploy when a watched file changes, and print their logs as they come.
    Dev(dev::DevArgs),
    /// Make a new version with other settings and the latest version's component, e.g.
    /// `vireo config NAME --memory 256` (no upload).
    Config(config::ConfigArgs),
    /// Call a function over HTTP and stream its answer to standard output.
    Invoke(invoke::InvokeArgs),
    /// List the functions in the namespace.
    Ls,
    /// List the versions of a function, oldest first.
    Versions(functions::VersionsArgs),
    /// One function at a glance: its URL, aliases, the settings of the versions they point at,
    /// schedules and recent invocations.
    Describe(describe::DescribeArgs),
    /// Point an alias (such as `prod`) at a version, or delete it with --delete.
    Alias(functions::AliasArgs),
    /// Delete a function with all its versions, aliases, schedules, async invocations, invocation
    /// records and logs, and say what went.
    Rm(functions::RmArgs),
    /// Print what a function wrote to stdout and stderr; -f keeps following new lines.
    Logs(logs::LogsArgs),
    /// List a function's recent invocations, newest first, or show one with --id.
    Invocations(invocations::InvocationsArgs),
    /// Count a function's async invocations by status (queued, running, succeeded, ...).
    Queue(queue::QueueArgs),
    /// A function's dead-letter queue: async invocations whose attempts or age ran out.
    #[command(subcommand)]
    Dlq(queue::DlqCommand),
    /// Show a function's async retry policy, or change it with flags.
    RetryPolicy(queue::RetryPolicyArgs),
    /// Cron schedules: invoke functions at times given by cron expressions.
    #[command(subcommand)]
    Cron(cron::CronCommand),
    /// Event sources: invoke a function for every message of a broker's stream.
    #[command(subcommand)]
    Sources(sources::SourcesCommand),
    /// Secrets: values functions see as environment variables, kept encrypted at rest.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// Key-value stores: list and manage stores, set, get, list and delete keys.
    #[command(subcommand)]
    Kv(kv::KvCommand),
    /// SQLite databases functions open through Spin's sqlite: list, create, delete, run SQL.
    #[command(subcommand)]
    Sqlite(sqlite::SqliteCommand),
    /// Routes: publish functions at paths of their own, on any host or on claimed hosts.
    #[command(subcommand)]
    Routes(routes::RoutesCommand),
    /// Which namespace may route which host (admin keys only).
    #[command(subcommand)]
    Hosts(routes::HostsCommand),
    /// Buckets of objects (files): list, create, delete.
    #[command(subcommand)]
    Buckets(buckets::BucketsCommand),
    /// Objects in buckets: upload, download, list, stat and delete.
    #[command(subcommand)]
    Objects(buckets::ObjectsCommand),
    /// Billed requests, time, GB-seconds and cost under the server's price plan (-o csv too).
    Usage(usage::UsageArgs),
    /// A live view of each function's invocations/s, errors, p50/p99 latency and cold starts.
    Top(top::TopArgs),
    /// Namespaces (tenants) and their quotas; creating, changing and deleting need an admin key.
    #[command(subcommand)]
    Ns(tenants::NsCommand),
    /// API keys: create (shown once), list, revoke; needs an admin key.
    #[command(subcommand)]
    Keys(tenants::KeysCommand),
    /// Move an installation into another store, e.g. a data directory into a cluster's
    /// PostgreSQL (`vireo store copy --from .vireo --to postgres://…`).
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// The live nodes serving the server's store: address, version, load, last heartbeat
    /// (admin key).
    Nodes,
    /// Save a connection as a profile: `--server URL`, the key from `--api-key`, `VIREO_API_KEY`
    /// or standard input (asked for without echo), optionally `-n NS`; checked with the server
    /// first. Saved as `--profile NAME` (default `default`) in ~/.config/vireo/profiles.toml.
    Login,
    /// Remove a saved profile (`--profile NAME`, default `default`) and its key.
    Logout,
    /// List the saved profiles: server, namespace and key id, never the key.
    Profiles,
    /// Print the JSON Schema of the project manifest `vireo.toml`, for editors: save it and
    /// point `#:schema FILE` at it from the manifest's first line.
    Schema,
    /// Print a shell completion script, e.g. `source <(vireo completions bash)` in ~/.bashrc,
    /// `vireo completions zsh > "${fpath[1]}/_vireo"`, or
    /// `vireo completions fish > ~/.config/fish/completions/vireo.fish`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    client::install_tls_provider();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Usage errors exit 1 like every other failure; --help and --version exit 0.
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.chain().any(|cause| cause.is::<output::StdoutClosed>()) => {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {}", error_text(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated; a cause whose words its error already says (many
/// errors repeat their source in their message) is not said again.
pub(crate) fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let said = cause.to_string();
        if text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let format = cli.output;
    // Built only for the commands that talk to a server, so a bad VIREO_NAMESPACE cannot stop `serve`.
    let client = || {
        let profiles = Profiles::load()?;
        let profile = profiles.chosen(cli.profile.as_deref())?;
        let given = Given {
            server: cli.server.as_deref(),
            namespace: cli.namespace.as_deref(),
            api_key: cli.api_key.as_deref(),
            ca_cert: cli.ca_cert.as_deref(),
        };
        let connection = Connection::resolve(given, profile.map(|(_, profile)| profile));
        Client::new(
            &connection.server,
            &connection.namespace,
            connection.api_key.as_deref(),
            connection.ca_cert.as_deref(),
        )
    };
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::New(args) => new::run(format, args),
        Command::Deploy(args) => deploy::run(&client()?, format, args).await,
        Command::Build(args) => build::run(format, args),
        Command::Dev(args) => dev::run(format, args).await,
        Command::Config(args) => config::run(&client()?, format, args).await,
        Command::Invoke(args) => invoke::run(&client()?, format, args).await,
        Command::Ls => functions::list(&client()?, format).await,
        Command::Versions(args) => functions::versions(&client()?, format, args).await,
        Command::Describe(args) => describe::run(&client()?, format, args).await,
        Command::Alias(args) => functions::alias(&client()?, format, args).await,
        Command::Rm(args) => functions::remove(&client()?, format, args).await,
        Command::Logs(args) => logs::run(&client()?, format, args).await,
        Command::Invocations(args) => invocations::run(&client()?, format, args).await,
        Command::Queue(args) => queue::counts(&client()?, format, args).await,
        Command::Dlq(command) => queue::dlq(&client()?, format, command).await,
        Command::RetryPolicy(args) => queue::retry_policy(&client()?, format, args).await,
        Command::Cron(command) => cron::run(&client()?, format, command).await,
        Command::Sources(command) => sources::run(&client()?, format, command).await,
        Command::Secrets(command) => secrets::run(&client()?, format, command).await,
        Command::Kv(command) => kv::run(&client()?, format, command).await,
        Command::Sqlite(command) => sqlite::run(&client()?, format, command).await,
        Command::Routes(command) => routes::run(&client()?, format, command).await,
        Command::Hosts(command) => routes::hosts(&client()?, format, command).await,
        Command::Buckets(command) => buckets::buckets(&client()?, format, command).await,
        Command::Objects(command) => buckets::objects(&client()?, format, command).await,
        Command::Usage(args) => usage::run(&client()?, format, args).await,
        Command::Top(args) => top::run(&client()?, format, args).await,
        Command::Ns(command) => tenants::namespaces(&client()?, format, command).await,
        Command::Keys(command) => {
            let scope = cli.namespace.as_deref().map(tenants::namespace_list);
            tenants::keys(&client()?, format, command, scope.unwrap_or_default()).await
        }
        Command::Nodes => nodes::list(&client()?, format).await,
        Command::Store(command) => store::run(format, command).await,
        Command::Completions { shell } => print_completions(shell),
        Command::Schema => print_schema(),
        Command::Login => {
            let target = login::LoginTarget {
                server: cli.server.as_deref(),
                namespace: cli.namespace.as_deref(),
                api_key: cli.api_key.as_deref(),
                profile: cli.profile.as_deref(),
                ca_cert: cli.ca_cert.as_deref(),
            };
            login::login(format, target).await
        }
        Command::Logout => login::logout(format, cli.profile.as_deref()),
        Command::Profiles => login::list(format),
    }
}

fn print_schema() -> anyhow::Result<()> {
    let mut schema = serde_json::to_vec_pretty(&manifest::json_schema())
        .context("encoding the manifest's schema")?;
    schema.push(b'\n');
    output::write_stdout(&schema)
}

fn print_completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    use clap::CommandFactory as _;

    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "vireo", &mut script);
    output::write_stdout(&script)
}

#[cfg(test)]
mod tests {
    #[test]
    fn causes_an_error_already_says_are_said_once() {
        /// Says its source in its own message, as `vireo_core::StoreError` does.
        #[derive(Debug)]
        struct Repeats(std::io::Error);
        impl std::fmt::Display for Repeats {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "storage failure while reading: {}", self.0)
            }
        }
        impl std::error::Error for Repeats {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = anyhow::Error::new(Repeats(std::io::Error::other("disk on fire")))
            .context("copying the store");
        assert_eq!(
            super::error_text(&err),
            "copying the store: storage failure while reading: disk on fire"
        );
    }

    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "vireo",
            "ls",
            "-n",
            "team-a",
            "-o",
            "json",
            "--server",
            "http://h:1",
        ])
        .unwrap();
        assert_eq!(cli.namespace.as_deref(), Some("team-a"));
        assert_eq!(cli.output, Format::Json);
        assert_eq!(cli.server.as_deref(), Some("http://h:1"));
    }

    #[test]
    fn secrets_ls_takes_a_namespace_apart_from_the_global_one() {
        let cli = Cli::try_parse_from(["vireo", "secrets", "ls", "team-a", "-n", "other"]).unwrap();
        assert_eq!(cli.namespace.as_deref(), Some("other"));
        assert!(matches!(
            cli.command,
            Command::Secrets(secrets::SecretsCommand::Ls { ns: Some(ns) }) if ns.as_str() == "team-a"
        ));
    }
}
