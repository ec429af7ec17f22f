//! `vireo buckets` and `vireo objects`: a namespace's buckets, and the files in them. Objects
//! stream from a file to the server and back (never whole in memory), with a progress bar on
//! a terminal.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use futures::{StreamExt as _, TryStreamExt as _};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Body, Method, header};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio_util::io::ReaderStream;
use vireo_core::{Name, check_object_key};

use crate::args::bucket_name;
use crate::client::Client;
use crate::output::{self, Format};

/// The most entries the server answers per page.
const MAX_PAGE: u32 = 1000;

#[derive(Subcommand)]
pub enum BucketsCommand {
    /// The namespace's buckets with their objects and bytes, and its max_object_bytes quota.
    Ls,
    /// Create an empty bucket.
    Create {
        #[arg(value_parser = bucket_name)]
        name: Name,
    },
    /// Delete an empty bucket.
    Rm {
        #[arg(value_parser = bucket_name)]
        name: Name,
    },
    /// Invoke a function, asynchronously and durably, for each matching change to the
    /// bucket's objects (replaces the function's notification on the bucket).
    Notify {
        #[arg(value_parser = bucket_name)]
        bucket: Name,
        #[arg(long, value_parser = crate::args::function_name)]
        function: Name,
        /// Which changes: created, deleted, or both.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "created")]
        events: Vec<EventArg>,
        /// Only keys starting with this.
        #[arg(long, value_name = "P", default_value = "")]
        prefix: String,
        /// Only keys ending with this.
        #[arg(long, value_name = "S", default_value = "")]
        suffix: String,
    },
    /// The bucket's notifications.
    Notifications {
        #[arg(value_parser = bucket_name)]
        bucket: Name,
    },
    /// Stop invoking a function for the bucket's changes.
    Unnotify {
        #[arg(value_parser = bucket_name)]
        bucket: Name,
        #[arg(long, value_parser = crate::args::function_name)]
        function: Name,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum EventArg {
    Created,
    Deleted,
}

impl EventArg {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Deleted => "deleted",
        }
    }
}

#[derive(Deserialize)]
pub struct NotificationView {
    pub function: String,
    pub events: Vec<String>,
    pub prefix: String,
    pub suffix: String,
}

#[derive(Subcommand)]
pub enum ObjectsCommand {
    /// Upload a file (or standard input with `-`) as an object.
    Put {
        #[arg(value_parser = bucket_name)]
        bucket: Name,
        #[arg(value_parser = object_key)]
        key: String,
        /// The file to upload, or `-` for standard input.
        file: PathBuf,
        /// Stored with the object and answered on download (default application/octet-stream).
        #[arg(long, value_name = "TYPE")]
        content_type: Option<String>,
    },
    /// Download an object to a file (`-o FILE`) or standard output.
    Get {
        #[arg(value_parser = bucket_name)]
        bucket: Name,
        #[arg(value_parser = object_key)]
        key: String,
        /// Where to write the bytes; standard output when absent.
        #[arg(long = "to", short = 'O', value_name = "FILE")]
        to: Option<PathBuf>,
    },
    /// List objects in key order, a page at a time; the next page's cursor goes to stderr.
    Ls(ObjectLsArgs),
    /// Delete an object.
    Rm {
        #[arg(value_parser = bucket_name)]
        bucket: Name,
        #[arg(value_parser = object_key)]
        key: String,
    },
    /// An object's size, ETag, content type, creation time and metadata.
    Stat {
        #[arg(value_parser = bucket_name)]
        bucket: Name,
        #[arg(value_parser = object_key)]
        key: String,
    },
    /// A URL that lets anyone holding it download (get) or upload (put) one object until it
    /// expires, without a key: e.g. for a browser to upload directly.
    Presign {
        #[arg(value_parser = bucket_name)]
        bucket: Name,
        #[arg(value_parser = object_key)]
        key: String,
        /// What the URL allows: get (download, and HEAD) or put (upload).
        #[arg(long, value_enum, default_value = "get")]
        method: PresignMethod,
        /// How long the URL works, e.g. 15m, 2h, 7d (at most 7 days).
        #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = humantime::parse_duration)]
        expires: std::time::Duration,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum PresignMethod {
    Get,
    Put,
}

#[derive(Deserialize)]
struct PresignedView {
    url: String,
    expires_at: String,
}

#[derive(Args)]
pub struct ObjectLsArgs {
    #[arg(value_parser = bucket_name)]
    bucket: Name,
    /// Only keys starting with this.
    #[arg(long, value_name = "P")]
    prefix: Option<String>,
    /// Roll up keys with this after the prefix into common prefixes (`/` for folders).
    #[arg(long, value_name = "D")]
    delimiter: Option<String>,
    /// Entries per page (the server's default is 100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PAGE)))]
    limit: Option<u32>,
    /// Start after the page this cursor was printed for.
    #[arg(long, value_name = "C")]
    cursor: Option<String>,
}

fn object_key(value: &str) -> Result<String, String> {
    check_object_key(value)
        .map(|()| value.to_string())
        .map_err(|error| error.to_string())
}

pub fn buckets_path(client: &Client) -> String {
    format!("/v1/namespaces/{}/buckets", client.namespace())
}

/// The key in one path segment, every byte but letters and digits percent-encoded, so no
/// client or proxy reads its `/`, `.` or `..` as path structure.
fn object_path(client: &Client, bucket: &Name, key: &str) -> String {
    format!(
        "{}/{bucket}/objects/{}",
        buckets_path(client),
        utf8_percent_encode(key, NON_ALPHANUMERIC)
    )
}

#[derive(Deserialize)]
struct BucketList {
    namespace: String,
    buckets: Vec<BucketView>,
    bytes_used: u64,
    max_object_bytes: Option<u64>,
}

#[derive(Deserialize)]
struct BucketView {
    name: String,
    objects: u64,
    bytes: u64,
    created_at_us: i64,
}

#[derive(Deserialize)]
struct ObjectView {
    key: String,
    size: u64,
    etag: String,
    content_type: String,
    created_at_us: i64,
    #[serde(default)]
    metadata: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct ObjectPage {
    objects: Vec<ObjectView>,
    common_prefixes: Vec<String>,
}

pub async fn buckets(
    client: &Client,
    format: Format,
    command: BucketsCommand,
) -> anyhow::Result<()> {
    let namespace = client.namespace();
    match command {
        BucketsCommand::Ls => {
            let answer = client
                .json(client.request(Method::GET, &buckets_path(client)))
                .await
                .with_context(|| format!("listing the buckets of {namespace}"))?;
            output::emit(format, answer, |list: BucketList| {
                let quota = match list.max_object_bytes {
                    Some(limit) => {
                        format!("of its max_object_bytes quota of {}", output::size(limit))
                    }
                    None => "(no max_object_bytes quota)".to_string(),
                };
                let table = output::table(
                    ["BUCKET", "OBJECTS", "BYTES", "CREATED"],
                    list.buckets.iter().map(|bucket| {
                        [
                            bucket.name.clone(),
                            bucket.objects.to_string(),
                            output::size(bucket.bytes),
                            output::timestamp(bucket.created_at_us),
                        ]
                    }),
                );
                format!(
                    "{table}\nnamespace {} uses {} {quota}\n",
                    list.namespace,
                    output::size(list.bytes_used)
                )
            })
        }
        BucketsCommand::Create { name } => {
            let request = client
                .request(Method::POST, &buckets_path(client))
                .json(&json!({"name": name.as_str()}));
            let answer = client
                .json(request)
                .await
                .with_context(|| format!("creating bucket {namespace}/{name}"))?;
            output::emit(format, answer, |_: Value| {
                format!("bucket {namespace}/{name} created\n")
            })
        }
        BucketsCommand::Rm { name } => {
            let path = format!("{}/{name}", buckets_path(client));
            client
                .no_content(client.request(Method::DELETE, &path))
                .await
                .with_context(|| format!("deleting bucket {namespace}/{name}"))?;
            let answer =
                json!({"namespace": namespace.as_str(), "bucket": name.as_str(), "deleted": true});
            output::emit(format, answer, |_: Value| {
                format!("bucket {namespace}/{name} deleted\n")
            })
        }
        BucketsCommand::Notify {
            bucket,
            function,
            events,
            prefix,
            suffix,
        } => {
            let path = format!("{}/{bucket}/notifications/{function}", buckets_path(client));
            let events: Vec<&str> = events.iter().map(|event| event.as_str()).collect();
            let body = json!({"events": events, "prefix": prefix, "suffix": suffix});
            let answer = client
                .json(client.request(Method::PUT, &path).json(&body))
                .await
                .with_context(|| {
                    format!("setting a notification on bucket {namespace}/{bucket}")
                })?;
            output::emit(format, answer, |view: NotificationView| {
                format!(
                    "{} of {namespace}/{bucket}/{}*{} now invoke {}\n",
                    view.events.join(" and "),
                    view.prefix,
                    view.suffix,
                    view.function
                )
            })
        }
        BucketsCommand::Notifications { bucket } => {
            let path = format!("{}/{bucket}/notifications", buckets_path(client));
            let answer = client
                .json(client.request(Method::GET, &path))
                .await
                .with_context(|| {
                    format!("listing the notifications of bucket {namespace}/{bucket}")
                })?;
            output::emit(format, answer, |views: Vec<NotificationView>| {
                let table = output::table(
                    ["FUNCTION", "EVENTS", "PREFIX", "SUFFIX"],
                    views.into_iter().map(|view| {
                        [
                            view.function,
                            view.events.join(","),
                            view.prefix,
                            view.suffix,
                        ]
                    }),
                );
                format!("{table}\n")
            })
        }
        BucketsCommand::Unnotify { bucket, function } => {
            let path = format!("{}/{bucket}/notifications/{function}", buckets_path(client));
            client
                .no_content(client.request(Method::DELETE, &path))
                .await
                .with_context(|| {
                    format!(
                        "deleting the notification of {function} on bucket {namespace}/{bucket}"
                    )
                })?;
            let answer = json!({"namespace": namespace.as_str(), "bucket": bucket.as_str(), "function": function.as_str(), "deleted": true});
            output::emit(format, answer, |_: Value| {
                format!("{function} is no longer invoked for bucket {namespace}/{bucket}\n")
            })
        }
    }
}

pub async fn objects(
    client: &Client,
    format: Format,
    command: ObjectsCommand,
) -> anyhow::Result<()> {
    let namespace = client.namespace();
    match command {
        ObjectsCommand::Put {
            bucket,
            key,
            file,
            content_type,
        } => {
            let what = || format!("uploading {} to {namespace}/{bucket}/{key}", file.display());
            let request = client
                .request(Method::PUT, &object_path(client, &bucket, &key))
                .header(
                    header::CONTENT_TYPE,
                    content_type
                        .as_deref()
                        .unwrap_or("application/octet-stream"),
                );
            let (request, progress) = if file.as_os_str() == "-" {
                let stdin = ReaderStream::new(tokio::io::stdin());
                (request.body(Body::wrap_stream(stdin)), None)
            } else {
                let opened = tokio::fs::File::open(&file).await.with_context(what)?;
                let size = opened.metadata().await.with_context(what)?.len();
                let progress = output::transfer_progress("uploading", size);
                let counter = progress.clone();
                let body = ReaderStream::with_capacity(opened, 256 * 1024)
                    .inspect_ok(move |chunk| counter.inc(chunk.len() as u64));
                let request = request
                    .header(header::CONTENT_LENGTH, size)
                    .body(Body::wrap_stream(body));
                (request, Some(progress))
            };
            let answered = client.json(request).await.with_context(what);
            if let Some(progress) = progress {
                progress.finish_and_clear();
            }
            output::emit(format, answered?, |object: ObjectView| {
                format!(
                    "{namespace}/{bucket}/{} stored ({}, sha256 {})\n",
                    object.key,
                    output::size(object.size),
                    object.etag
                )
            })
        }
        ObjectsCommand::Get { bucket, key, to } => {
            let what = || format!("downloading {namespace}/{bucket}/{key}");
            let response = client
                .success(client.request(Method::GET, &object_path(client, &bucket, &key)))
                .await
                .with_context(what)?;
            let size = response.content_length().unwrap_or(0);
            let mut body = response.bytes_stream();
            match to {
                Some(path) => {
                    let progress = output::transfer_progress("downloading", size);
                    let mut out = tokio::fs::File::create(&path)
                        .await
                        .with_context(|| format!("creating {}", path.display()))?;
                    while let Some(chunk) = body.next().await {
                        let chunk = chunk.with_context(what)?;
                        out.write_all(&chunk)
                            .await
                            .with_context(|| format!("writing {}", path.display()))?;
                        progress.inc(chunk.len() as u64);
                    }
                    out.flush().await?;
                    progress.finish_and_clear();
                    Ok(())
                }
                None => {
                    while let Some(chunk) = body.next().await {
                        output::write_stdout(&chunk.with_context(what)?)?;
                    }
                    Ok(())
                }
            }
        }
        ObjectsCommand::Ls(args) => list(client, format, args).await,
        ObjectsCommand::Rm { bucket, key } => {
            client
                .no_content(client.request(Method::DELETE, &object_path(client, &bucket, &key)))
                .await
                .with_context(|| format!("deleting {namespace}/{bucket}/{key}"))?;
            let answer = json!({"namespace": namespace.as_str(), "bucket": bucket.as_str(), "key": key, "deleted": true});
            output::emit(format, answer, |_: Value| {
                format!("{namespace}/{bucket}/{key} deleted\n")
            })
        }
        ObjectsCommand::Presign {
            bucket,
            key,
            method,
            expires,
        } => {
            let method = match method {
                PresignMethod::Get => "GET",
                PresignMethod::Put => "PUT",
            };
            let body = json!({"key": key, "method": method, "expires_in_s": expires.as_secs()});
            let path = format!("{}/{bucket}/presign", buckets_path(client));
            let mut answer = client
                .json(client.request(Method::POST, &path).json(&body))
                .await
                .with_context(|| format!("presigning {method} of {namespace}/{bucket}/{key}"))?;
            let url = format!(
                "{}{}",
                client.base_url().trim_end_matches('/'),
                answer["path"].as_str().unwrap_or_default()
            );
            answer["url"] = Value::String(url);
            // The URL alone on stdout, for `curl -T file "$(vireo objects presign …)"`.
            output::emit(format, answer, |view: PresignedView| {
                eprintln!("valid until {}", view.expires_at);
                format!("{}\n", view.url)
            })
        }
        ObjectsCommand::Stat { bucket, key } => {
            let response = client
                .success(client.request(Method::HEAD, &object_path(client, &bucket, &key)))
                .await
                .with_context(|| format!("reading {namespace}/{bucket}/{key}"))?;
            let answer = stat_view(&key, response.headers());
            output::emit(format, answer, |object: ObjectView| {
                let metadata: Vec<(String, String)> = object
                    .metadata
                    .into_iter()
                    .map(|(name, value)| (format!("meta {name}"), value))
                    .collect();
                let mut fields = vec![
                    ("key", object.key),
                    ("size", output::size(object.size)),
                    ("etag", object.etag),
                    ("content type", object.content_type),
                    ("created", output::timestamp(object.created_at_us)),
                ];
                fields.extend(
                    metadata
                        .iter()
                        .map(|(name, value)| (name.as_str(), value.clone())),
                );
                output::details(&fields)
            })
        }
    }
}

/// An object's description from the headers of a `HEAD`, in the shape the API lists it.
fn stat_view(key: &str, headers: &header::HeaderMap) -> Value {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let metadata: serde_json::Map<String, Value> = headers
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix("x-vireo-meta-")?;
            Some((name.to_string(), json!(value.to_str().ok()?)))
        })
        .collect();
    json!({
        "key": key,
        "size": text("content-length").parse::<u64>().unwrap_or(0),
        "etag": text("etag").trim_matches('"'),
        "content_type": text("content-type"),
        "created_at_us": text("x-vireo-created-at-us").parse::<i64>().unwrap_or(0),
        "metadata": metadata,
    })
}

async fn list(client: &Client, format: Format, args: ObjectLsArgs) -> anyhow::Result<()> {
    let namespace = client.namespace();
    let path = format!("{}/{}/objects", buckets_path(client), args.bucket);
    let query: Vec<(&str, String)> = [
        ("prefix", args.prefix),
        ("delimiter", args.delimiter),
        ("limit", args.limit.map(|n| n.to_string())),
        ("cursor", args.cursor),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value?)))
    .collect();
    let answer = client
        .json(client.request(Method::GET, &path).query(&query))
        .await
        .with_context(|| format!("listing the objects of {namespace}/{}", args.bucket))?;
    if let Some(cursor) = answer["next_cursor"].as_str() {
        eprintln!("more objects follow: --cursor {cursor}");
    }
    output::emit(format, answer, |page: ObjectPage| {
        let rows = page
            .common_prefixes
            .iter()
            .map(|prefix| [prefix.clone(), "-".into(), "-".into(), "-".into()])
            .chain(page.objects.iter().map(|object| {
                [
                    object.key.clone(),
                    output::size(object.size),
                    object.content_type.clone(),
                    output::timestamp(object.created_at_us),
                ]
            }));
        format!(
            "{}\n",
            output::table(["KEY", "SIZE", "TYPE", "CREATED"], rows)
        )
    })
}
