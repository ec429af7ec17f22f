//! The `/v1` admin API: one module per resource; handlers take typed paths and bodies and the
//! narrow state they use, call the store, deployer or secret manager, and shape the answer.
//! Each handler's `#[utoipa::path]` says where it answers; `routes.rs` lists them with who may
//! call them.

pub mod aliases;
pub mod buckets;
pub mod functions;
pub mod http_routes;
pub mod inherit;
pub mod invocations;
pub mod key_value;
pub mod keys;
pub mod logs;
pub mod metrics;
pub mod namespaces;
pub mod nodes;
pub mod objects;
pub mod presign;
pub mod queue;
pub mod schedules;
pub mod secrets;
pub mod sources;
pub mod sqlite;
pub mod usage;
pub mod versions;

use axum::http::StatusCode;
use vireo_core::KvCursor;

use crate::error::ApiError;

/// Entries a key or object listing answers unless asked for fewer, and the most it answers.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// A listing's page size (default 100, 1 to 1000) and where it goes on: the `next_cursor` of
/// the page before, as the API answered it.
pub(crate) fn page(
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<(u32, Option<KvCursor>), ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("limit must be from 1 to {MAX_PAGE}, not {limit}"),
        ));
    }
    let cursor = cursor.map(KvCursor::parse).transpose().map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
            format!("{error}: pass the next_cursor of the page before, unchanged"),
        )
    })?;
    Ok((limit, cursor))
}
