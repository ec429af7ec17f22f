//! `/v1/namespaces/{namespace}/sqlite`: a namespace's SQLite databases, and statements run on
//! them by people and scripts (functions reach the same files through Spin's sqlite). Values
//! travel as JSON: integers and reals as numbers, text as strings, null as null, and blobs as
//! `{"blob": "<base64>"}`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use vireo_core::{Name, SqlBounds, SqlFailure, SqlRows, SqlValue, SqliteDatabaseInfo};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, NamespacePath, SqliteDatabasePath};
use crate::state::FunctionSqlite;

/// How far one statement through the API may go.
const BOUNDS: SqlBounds = SqlBounds {
    max_rows: 10_000,
    max_result_bytes: 16 << 20,
    timeout: Duration::from_secs(30),
};
/// How long a statement waits for one of the database's connections.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSqliteDatabase {
    /// `[a-z0-9][a-z0-9-]{0,62}`
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct SqliteDatabaseView {
    pub name: String,
    /// Its files on disk (database and write-ahead log); 0 for `default` before its first write.
    pub bytes: u64,
}

impl From<SqliteDatabaseInfo> for SqliteDatabaseView {
    fn from(info: SqliteDatabaseInfo) -> Self {
        Self {
            name: info.name.to_string(),
            bytes: info.bytes,
        }
    }
}

/// A namespace's databases by name, `default` always among them.
#[derive(Serialize, ToSchema)]
pub struct SqliteDatabaseList {
    pub namespace: String,
    pub databases: Vec<SqliteDatabaseView>,
    /// The databases' bytes together.
    pub bytes_used: u64,
}

/// One statement and its parameters, bound to `?`, `?NNN`, `:name` … in order.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlStatement {
    pub statement: String,
    #[serde(default)]
    pub parameters: Vec<Value>,
}

/// What the statement returned and changed.
#[derive(Serialize, ToSchema)]
pub struct SqlResult {
    pub columns: Vec<String>,
    /// One array of values per row, in the order of `columns`.
    pub rows: Vec<Vec<Value>>,
    /// Rows the statement inserted, updated or deleted.
    pub changes: u64,
    /// The rowid of the connection's most recent INSERT, 0 before any.
    pub last_insert_rowid: i64,
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/sqlite", tag = "sqlite",
    params(("namespace" = String, Path)),
    responses(
        (status = 200, description = "The databases by name with their sizes", body = SqliteDatabaseList),
        (status = 409, description = "This server's store is shared: it has no SQLite databases", body = ErrorBody)))]
pub async fn list(
    State(sqlite): State<FunctionSqlite>,
    NamespacePath(namespace): NamespacePath,
) -> Result<Json<SqliteDatabaseList>, ApiError> {
    let listed = sqlite.databases()?.list(&namespace).await?;
    Ok(Json(SqliteDatabaseList {
        namespace: namespace.to_string(),
        bytes_used: listed.iter().map(|database| database.bytes).sum(),
        databases: listed.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/namespaces/{namespace}/sqlite", tag = "sqlite",
    params(("namespace" = String, Path)),
    request_body = CreateSqliteDatabase,
    responses(
        (status = 201, description = "Created, empty", body = SqliteDatabaseView),
        (status = 400, description = "Bad name", body = ErrorBody),
        (status = 409, description = "A database of that name exists (`default` always does), the namespace has its most, or this server has no SQLite databases", body = ErrorBody)))]
pub async fn create(
    State(sqlite): State<FunctionSqlite>,
    NamespacePath(namespace): NamespacePath,
    ApiJson(body): ApiJson<CreateSqliteDatabase>,
) -> Result<(StatusCode, Json<SqliteDatabaseView>), ApiError> {
    let name = Name::parse("SQLite database", &body.name)?;
    let created = sqlite.databases()?.create(&namespace, &name).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Deletes the database and its data; `default` is emptied instead, and exists still.
#[utoipa::path(delete, path = "/v1/namespaces/{namespace}/sqlite/{name}", tag = "sqlite",
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses(
        (status = 204, description = "Deleted with its data"),
        (status = 404, description = "No such database", body = ErrorBody)))]
pub async fn delete(
    State(sqlite): State<FunctionSqlite>,
    SqliteDatabasePath { namespace, name }: SqliteDatabasePath,
) -> Result<StatusCode, ApiError> {
    sqlite.databases()?.delete(&namespace, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs one statement, held to the limits functions are (no `ATTACH`, no pragma that changes
/// how the database is stored), at most 10,000 rows and 16 MiB of values, 30 seconds.
#[utoipa::path(post, path = "/v1/namespaces/{namespace}/sqlite/{name}/execute", tag = "sqlite",
    params(("namespace" = String, Path), ("name" = String, Path)),
    request_body = SqlStatement,
    responses(
        (status = 200, description = "The rows it returned and what it changed", body = SqlResult),
        (status = 400, description = "`statement_failed`: SQLite's error, or a limit the result passed; `invalid_parameter`: a value that is no SQLite value", body = ErrorBody),
        (status = 404, description = "No such database", body = ErrorBody),
        (status = 409, description = "`database_full`: the database is at sqlite.max_database_mib", body = ErrorBody)))]
pub async fn execute(
    State(sqlite): State<FunctionSqlite>,
    SqliteDatabasePath { namespace, name }: SqliteDatabasePath,
    ApiJson(body): ApiJson<SqlStatement>,
) -> Result<Json<SqlResult>, ApiError> {
    let parameters = body
        .parameters
        .into_iter()
        .map(parameter)
        .collect::<Result<Vec<_>, _>>()?;
    let mut connection = sqlite
        .databases()?
        .connect(&namespace, &name, CONNECT_WAIT)
        .await?;
    let rows = connection
        .execute(&body.statement, parameters, BOUNDS)
        .await
        .map_err(|failure| match failure {
            SqlFailure::DatabaseFull => {
                ApiError::new(StatusCode::CONFLICT, "database_full", failure.to_string())
            }
            SqlFailure::Failed(message) => {
                ApiError::new(StatusCode::BAD_REQUEST, "statement_failed", message)
            }
        })?;
    Ok(Json(result(rows)))
}

/// A JSON parameter as a SQLite value.
fn parameter(value: Value) -> Result<SqlValue, ApiError> {
    let invalid = |what: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!(
                "{what}: a parameter is a number, a string, null, true/false or {{\"blob\": \"<base64>\"}}"
            ),
        )
    };
    Ok(match value {
        Value::Null => SqlValue::Null,
        Value::Bool(flag) => SqlValue::Integer(i64::from(flag)),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => SqlValue::Integer(integer),
            None => SqlValue::Real(
                number
                    .as_f64()
                    .ok_or_else(|| invalid("a number out of range"))?,
            ),
        },
        Value::String(text) => SqlValue::Text(text),
        Value::Object(object) => match object.get("blob").and_then(Value::as_str) {
            Some(encoded) if object.len() == 1 => SqlValue::Blob(
                STANDARD
                    .decode(encoded)
                    .map_err(|_| invalid("a blob that is not base64"))?,
            ),
            _ => return Err(invalid("an object other than {\"blob\": …}")),
        },
        Value::Array(_) => return Err(invalid("an array")),
    })
}

fn result(rows: SqlRows) -> SqlResult {
    let value = |value: SqlValue| match value {
        SqlValue::Integer(integer) => Value::from(integer),
        SqlValue::Real(real) => Value::from(real),
        SqlValue::Text(text) => Value::String(text),
        SqlValue::Blob(blob) => serde_json::json!({ "blob": STANDARD.encode(blob) }),
        SqlValue::Null => Value::Null,
    };
    SqlResult {
        columns: rows.columns,
        rows: rows
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(value).collect())
            .collect(),
        changes: rows.changes,
        last_insert_rowid: rows.last_insert_rowid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_sqlite_values_and_others_are_refused() {
        let values = [
            serde_json::json!(7),
            serde_json::json!(2.5),
            serde_json::json!("text"),
            serde_json::json!(null),
            serde_json::json!(true),
            serde_json::json!({"blob": "AP8="}),
        ];
        let parsed: Vec<SqlValue> = values.into_iter().map(|v| parameter(v).unwrap()).collect();
        assert_eq!(
            parsed,
            [
                SqlValue::Integer(7),
                SqlValue::Real(2.5),
                SqlValue::Text("text".into()),
                SqlValue::Null,
                SqlValue::Integer(1),
                SqlValue::Blob(vec![0, 255]),
            ]
        );
        for bad in [
            serde_json::json!([1]),
            serde_json::json!({"blob": "not base64!"}),
            serde_json::json!({"text": "x"}),
        ] {
            assert!(parameter(bad).is_err());
        }
    }
}
