//! Rows as Vireo reads them, for every sqlx backend: a row's columns read as the few SQL types
//! the schemas use (64-bit integers, text, bytes, booleans), narrowed to the domain's types
//! here, and the conversions from a row to each domain value. Both schemas name their columns
//! alike, so a backend's query hands its rows here and no conversion is written twice.

use std::collections::{BTreeMap, HashMap};

use sqlx::{ColumnIndex, Decode, Row, Type};
use vireo_core::auth::{ApiKey, Role};
use vireo_core::{
    AliasTarget, AsyncInvocation, AsyncStatus, ClaimedInvocation, FunctionInfo, InvocationId,
    InvocationRecord, InvocationStatus, KvStoreInfo, LogLine, LogStream, MissedSlots, Name,
    NamespaceInfo, RetryPolicy, Schedule, SealedSecret, SecretInfo, SecretName, Source, SourceKind,
    SourceSpec, StoreError, StoredRequest, Trigger, VersionInfo,
};

use crate::codec;

/// Where a column is: by name, as the domain readers below look it up, or by position, as a
/// statement's unnamed results (`EXISTS`, `COUNT(*)`) are read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum At<'n> {
    Name(&'n str),
    Position(usize),
}

impl<'n> From<&'n str> for At<'n> {
    fn from(name: &'n str) -> Self {
        At::Name(name)
    }
}

impl From<usize> for At<'_> {
    fn from(position: usize) -> Self {
        At::Position(position)
    }
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Name(name) => f.write_str(name),
            At::Position(position) => write!(f, "#{position}"),
        }
    }
}

/// The column types every schema is written in. Integers are read as 64 bits whatever their
/// width in the schema: SQLite has only those, and PostgreSQL's schema uses BIGINT throughout
/// so one reading fits both.
pub(crate) trait Columns {
    fn integer(&self, at: At<'_>) -> Result<Option<i64>, StoreError>;
    fn text(&self, at: At<'_>) -> Result<Option<String>, StoreError>;
    fn bytes(&self, at: At<'_>) -> Result<Option<Vec<u8>>, StoreError>;
    fn boolean(&self, at: At<'_>) -> Result<Option<bool>, StoreError>;
}

impl<R> Columns for R
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    fn integer(&self, at: At<'_>) -> Result<Option<i64>, StoreError> {
        get(self, at)
    }

    fn text(&self, at: At<'_>) -> Result<Option<String>, StoreError> {
        get(self, at)
    }

    fn bytes(&self, at: At<'_>) -> Result<Option<Vec<u8>>, StoreError> {
        get(self, at)
    }

    fn boolean(&self, at: At<'_>) -> Result<Option<bool>, StoreError> {
        get(self, at)
    }
}

fn get<R, T>(row: &R, at: At<'_>) -> Result<Option<T>, StoreError>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    for<'r> T: Decode<'r, R::Database> + Type<R::Database>,
{
    match at {
        At::Name(name) => row.try_get(name),
        At::Position(position) => row.try_get(position),
    }
    .map_err(|e| StoreError::permanent(format!("reading column {at}"), e))
}

/// A domain type a column is read as.
pub(crate) trait FromColumn: Sized {
    fn read(row: &impl Columns, at: At<'_>) -> Result<Self, StoreError>;
}

/// A column that must not be NULL.
fn present<T>(at: At<'_>, value: Option<T>) -> Result<T, StoreError> {
    value.ok_or_else(|| StoreError::permanent(format!("reading column {at}"), "unexpected NULL"))
}

/// Optional and required columns of each SQL type.
macro_rules! from_column {
    ($($type:ty => $read:ident),* $(,)?) => {$(
        impl FromColumn for Option<$type> {
            fn read(row: &impl Columns, at: At<'_>) -> Result<Self, StoreError> {
                row.$read(at)
            }
        }
        impl FromColumn for $type {
            fn read(row: &impl Columns, at: At<'_>) -> Result<Self, StoreError> {
                present(at, row.$read(at)?)
            }
        }
    )*};
}
from_column!(i64 => integer, String => text, Vec<u8> => bytes, bool => boolean);

/// Unsigned domain integers, stored signed; a value out of range is unreadable data.
macro_rules! narrowed_column {
    ($($type:ty),* $(,)?) => {$(
        impl FromColumn for Option<$type> {
            fn read(row: &impl Columns, at: At<'_>) -> Result<Self, StoreError> {
                row.integer(at)?
                    .map(|value| {
                        <$type>::try_from(value).map_err(|e| {
                            StoreError::permanent(format!("reading column {at}"), e)
                        })
                    })
                    .transpose()
            }
        }
        impl FromColumn for $type {
            fn read(row: &impl Columns, at: At<'_>) -> Result<Self, StoreError> {
                present(at, Option::<$type>::read(row, at)?)
            }
        }
    )*};
}
narrowed_column!(u8, u16, u32, u64);

pub(crate) fn column<'n, T: FromColumn>(
    row: &impl Columns,
    at: impl Into<At<'n>>,
) -> Result<T, StoreError> {
    T::read(row, at.into())
}

/// A text column parsed into its type.
pub(crate) fn parsed_column<T>(
    row: &impl Columns,
    name: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StoreError> {
    codec::parsed(name, &column::<String>(row, name)?, parse)
}

pub(crate) fn name_column(row: &impl Columns, name: &str) -> Result<Name, StoreError> {
    codec::name_value(name, &column::<String>(row, name)?)
}

/// Functions from their rows, by name, each with `latest` and the stored aliases among
/// `aliases` (rows of function, alias and version, read in the same transaction).
pub(crate) fn function_infos(
    functions: &[impl Columns],
    aliases: &[impl Columns],
) -> Result<Vec<FunctionInfo>, StoreError> {
    let mut infos = BTreeMap::new();
    for row in functions {
        let info = function_info(row)?;
        infos.insert(info.name.clone(), info);
    }
    for row in aliases {
        let function = name_column(row, "function")?;
        if let Some(info) = infos.get_mut(&function) {
            let alias: String = column(row, "alias")?;
            let target = alias_target(row)?;
            info.aliases.insert(alias.clone(), target.primary());
            if !target.is_single() {
                info.splits.insert(alias, target);
            }
        }
    }
    Ok(infos.into_values().collect())
}

/// A function with `latest` as its only alias.
fn function_info(row: &impl Columns) -> Result<FunctionInfo, StoreError> {
    let latest_version: Option<u32> = column(row, "latest_version")?;
    Ok(FunctionInfo {
        namespace: name_column(row, "namespace")?,
        name: name_column(row, "name")?,
        created_at_us: column(row, "created_at_us")?,
        latest_version,
        aliases: codec::latest_alias(latest_version),
        splits: BTreeMap::new(),
    })
}

/// What an alias row points at: its split, or its one version.
pub(crate) fn alias_target(row: &impl Columns) -> Result<AliasTarget, StoreError> {
    let split: Option<String> = column(row, "split")?;
    match split {
        Some(json) => codec::from_json("alias split", &json),
        None => column(row, "version").map(AliasTarget::single),
    }
}

pub(crate) fn version_info(row: &impl Columns) -> Result<VersionInfo, StoreError> {
    Ok(VersionInfo {
        namespace: name_column(row, "namespace")?,
        function: name_column(row, "function")?,
        version: column(row, "version")?,
        component_sha256: column(row, "component_sha256")?,
        component_size: column(row, "component_size")?,
        settings: codec::from_json("version settings", &column::<String>(row, "settings")?)?,
        created_at_us: column(row, "created_at_us")?,
    })
}

pub(crate) fn invocation_record(row: &impl Columns) -> Result<InvocationRecord, StoreError> {
    Ok(InvocationRecord {
        id: parsed_column(row, "id", InvocationId::parse)?,
        namespace: name_column(row, "namespace")?,
        function: name_column(row, "function")?,
        version: column(row, "version")?,
        trigger: parsed_column(row, "trigger", Trigger::parse)?,
        started_at_us: column(row, "started_at_us")?,
        duration_us: column(row, "duration_us")?,
        status: parsed_column(row, "status", InvocationStatus::parse)?,
        http_status: column(row, "http_status")?,
        cold: column(row, "cold")?,
        error: column(row, "error")?,
        init_us: column(row, "init_us")?,
        cpu_us: column(row, "cpu_us")?,
        kv_reads: column(row, "kv_reads")?,
        kv_writes: column(row, "kv_writes")?,
        kv_bytes: column(row, "kv_bytes")?,
        object_reads: column(row, "object_reads")?,
        object_writes: column(row, "object_writes")?,
        object_bytes: column(row, "object_bytes")?,
        outbound_calls: column(row, "outbound_calls")?,
        outbound_bytes: column(row, "outbound_bytes")?,
        executions: column(row, "executions")?,
        memory_mib: column(row, "memory_mib")?,
        billed_ms: column(row, "billed_ms")?,
        request_bytes: column(row, "request_bytes")?,
        response_bytes: column(row, "response_bytes")?,
    })
}

pub(crate) fn log_line(row: &impl Columns) -> Result<LogLine, StoreError> {
    Ok(LogLine {
        seq: column(row, "seq")?,
        invocation_id: parsed_column(row, "invocation_id", InvocationId::parse)?,
        namespace: name_column(row, "namespace")?,
        function: name_column(row, "function")?,
        version: column(row, "version")?,
        at_us: column(row, "at_us")?,
        stream: parsed_column(row, "stream", LogStream::parse)?,
        line: column(row, "line")?,
    })
}

pub(crate) fn async_invocation(row: &impl Columns) -> Result<AsyncInvocation, StoreError> {
    let status = parsed_column(row, "status", AsyncStatus::parse)?;
    let response = codec::stored_response(
        column(row, "response_status")?,
        column(row, "response_headers")?,
        column(row, "response_body")?,
        column(row, "response_truncated")?,
    );
    Ok(AsyncInvocation {
        id: parsed_column(row, "id", InvocationId::parse)?,
        namespace: name_column(row, "namespace")?,
        function: name_column(row, "function")?,
        selector: column(row, "selector")?,
        trigger: parsed_column(row, "trigger", Trigger::parse)?,
        attempts: column(row, "attempts")?,
        accepted_at_us: column(row, "accepted_at_us")?,
        updated_at_us: column(row, "updated_at_us")?,
        next_attempt_at_us: (status == AsyncStatus::Queued)
            .then(|| column(row, "next_attempt_at_us"))
            .transpose()?,
        idempotency_key: column(row, "idempotency_key")?,
        error: column(row, "error")?,
        response,
        status,
    })
}

/// Claimed invocations from the rows a claim returned, each with its function's retry policy
/// (parsed once per distinct stored policy, not per row).
pub(crate) fn claimed_invocations<R: Columns>(
    rows: &[R],
) -> Result<Vec<ClaimedInvocation>, StoreError> {
    let mut policies: HashMap<Option<String>, RetryPolicy> = HashMap::new();
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let stored: Option<String> = column(row, "retry_policy")?;
        let policy = match policies.get(&stored) {
            Some(policy) => policy.clone(),
            None => {
                let policy = codec::retry_policy(stored.as_deref())?;
                policies.insert(stored, policy.clone());
                policy
            }
        };
        let headers: Vec<u8> = column(row, "headers")?;
        let body: Vec<u8> = column(row, "body")?;
        claimed.push(ClaimedInvocation {
            id: parsed_column(row, "id", InvocationId::parse)?,
            selector: parsed_column(row, "selector", |s| s.parse().ok())?,
            trigger: parsed_column(row, "trigger", Trigger::parse)?,
            source: column(row, "source")?,
            request: StoredRequest {
                method: column(row, "method")?,
                uri: column(row, "uri")?,
                headers: codec::decode_headers(&headers),
                body: body.into(),
            },
            attempt: column(row, "attempt")?,
            accepted_at_us: column(row, "accepted_at_us")?,
            event_time_us: column(row, "event_time_us")?,
            policy,
            namespace: name_column(row, "namespace")?,
            function: name_column(row, "function")?,
        });
    }
    Ok(claimed)
}

/// A schedule's columns plus `last_status`, its last invocation's status.
pub(crate) fn schedule(row: &impl Columns) -> Result<Schedule, StoreError> {
    let last_invocation: Option<String> = column(row, "last_invocation_id")?;
    let last_status: Option<String> = column(row, "last_status")?;
    Ok(Schedule {
        namespace: name_column(row, "namespace")?,
        name: name_column(row, "name")?,
        function: name_column(row, "function")?,
        selector: parsed_column(row, "selector", |s| s.parse().ok())?,
        expression: column(row, "expression")?,
        time_zone: column(row, "time_zone")?,
        payload: column(row, "payload")?,
        missed: parsed_column(row, "missed", MissedSlots::parse)?,
        paused: column(row, "paused")?,
        next_fire_at_us: column(row, "next_fire_at_us")?,
        created_at_us: column(row, "created_at_us")?,
        last_slot_us: column(row, "last_slot_us")?,
        last_invocation: last_invocation.as_deref().and_then(InvocationId::parse),
        last_status: last_status.as_deref().and_then(AsyncStatus::parse),
    })
}

pub(crate) fn source(row: &impl Columns) -> Result<Source, StoreError> {
    let password_secret: Option<String> = column(row, "password_secret")?;
    Ok(Source {
        namespace: name_column(row, "namespace")?,
        name: name_column(row, "name")?,
        function: name_column(row, "function")?,
        selector: parsed_column(row, "selector", |s| s.parse().ok())?,
        spec: SourceSpec {
            kind: parsed_column(row, "kind", SourceKind::parse)?,
            url: column(row, "url")?,
            stream: column(row, "stream")?,
            subject: column(row, "subject")?,
            password_secret: password_secret
                .map(|secret| {
                    codec::parsed("password_secret", &secret, |s| SecretName::parse(s).ok())
                })
                .transpose()?,
            batch_size: column(row, "batch_size")?,
            batch_window_ms: column(row, "batch_window_ms")?,
            filter: column::<Option<String>>(row, "filter")?
                .map(|filter| codec::from_json("filter", &filter))
                .transpose()?,
            qos: column(row, "qos")?,
        },
        paused: column(row, "paused")?,
        created_at_us: column(row, "created_at_us")?,
    })
}

/// A namespace's columns plus `functions`, how many it holds.
pub(crate) fn namespace_info(row: &impl Columns) -> Result<NamespaceInfo, StoreError> {
    Ok(NamespaceInfo {
        name: name_column(row, "name")?,
        created_at_us: column(row, "created_at_us")?,
        quotas: codec::quotas(column::<Option<String>>(row, "quotas")?.as_deref())?,
        functions: codec::unsigned(column(row, "functions")?),
    })
}

/// A key-value store's row: its name, totals and creation time.
pub(crate) fn kv_store_info(row: &impl Columns) -> Result<KvStoreInfo, StoreError> {
    Ok(KvStoreInfo {
        name: name_column(row, "name")?,
        keys: codec::unsigned(column(row, "key_count")?),
        bytes: codec::unsigned(column(row, "total_bytes")?),
        created_at_us: column(row, "created_at_us")?,
    })
}

pub(crate) fn api_key(row: &impl Columns) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: column(row, "id")?,
        role: parsed_column(row, "role", Role::parse)?,
        namespaces: codec::key_namespaces(&column::<String>(row, "namespaces")?)?,
        description: column(row, "description")?,
        secret_sha256: column(row, "secret_sha256")?,
        created_at_us: column(row, "created_at_us")?,
        expires_at_us: column(row, "expires_at_us")?,
        revoked_at_us: column(row, "revoked_at_us")?,
    })
}

pub(crate) fn secret_info(row: &impl Columns) -> Result<SecretInfo, StoreError> {
    Ok(SecretInfo {
        namespace: name_column(row, "namespace")?,
        name: secret_name(row)?,
        created_at_us: column(row, "created_at_us")?,
        updated_at_us: column(row, "updated_at_us")?,
    })
}

pub(crate) fn secret_name(row: &impl Columns) -> Result<SecretName, StoreError> {
    parsed_column(row, "name", |value| SecretName::parse(value).ok())
}

pub(crate) fn sealed_secret(row: &impl Columns) -> Result<SealedSecret, StoreError> {
    Ok(SealedSecret {
        nonce: column(row, "nonce")?,
        ciphertext: column(row, "ciphertext")?,
    })
}

pub(crate) fn node_info(row: &impl Columns) -> Result<vireo_core::NodeInfo, StoreError> {
    Ok(vireo_core::NodeInfo {
        id: column(row, "id")?,
        address: column(row, "address")?,
        version: column(row, "version")?,
        started_at_us: column(row, "started_at_us")?,
        heartbeat_at_us: column(row, "heartbeat_at_us")?,
        in_flight: u64::try_from(column::<i64>(row, "in_flight")?).unwrap_or(0),
        draining: column(row, "draining")?,
        slot: column::<Option<i64>>(row, "slot")?.and_then(|slot| u32::try_from(slot).ok()),
    })
}
