//! `/v1/keys` (admin only): create API keys (shown once), list them (never their secrets) and
//! revoke them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vireo_core::auth::generate_key;
use vireo_core::time::{now_micros, parse_since, rfc3339};
use vireo_core::{ApiKey, Directory, Name, Role};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, namespace};

const MAX_DESCRIPTION_BYTES: usize = 200;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub role: Role,
    /// The namespaces it acts in; required for every role but `admin`, which acts everywhere.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// When it stops working: RFC 3339, or a duration from now (`30d`, `12h`).
    pub expires: Option<String>,
    /// A note for people, e.g. who holds it.
    pub description: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub role: Role,
    pub namespaces: Vec<String>,
    pub description: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub state: &'static str,
}

impl From<ApiKey> for KeyView {
    fn from(key: ApiKey) -> Self {
        let now = now_micros();
        let state = match (key.revoked_at_us, key.expires_at_us) {
            (Some(_), _) => "revoked",
            (None, Some(at)) if at <= now => "expired",
            _ => "active",
        };
        Self {
            id: key.id,
            role: key.role,
            namespaces: key.namespaces.iter().map(ToString::to_string).collect(),
            description: key.description,
            created_at: rfc3339(key.created_at_us),
            expires_at: key.expires_at_us.map(rfc3339),
            revoked_at: key.revoked_at_us.map(rfc3339),
            state,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key itself. It is shown only now: Vireo keeps nothing but its hash.
    pub key: String,
    #[serde(flatten)]
    pub view: KeyView,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyView>,
}

#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create(
    State(directory): State<Arc<Directory>>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    Ok((StatusCode::CREATED, Json(issue(&directory, body).await?)))
}

/// Makes and stores the key `body` asks for; the answer is the one time its secret is seen.
pub(crate) async fn issue(directory: &Directory, body: CreateKey) -> Result<CreatedKey, ApiError> {
    let namespaces = body
        .namespaces
        .iter()
        .map(|ns| namespace(ns))
        .collect::<Result<Vec<Name>, _>>()?;
    match (body.role, namespaces.is_empty()) {
        (Role::Admin, false) => {
            return Err(ApiError::bad_request(
                "admin keys act in every namespace; create them without namespaces",
            ));
        }
        (role, true) if role != Role::Admin => {
            return Err(ApiError::bad_request(format!(
                "a {} key needs at least one namespace",
                role.as_str()
            )));
        }
        _ => {}
    }
    if body
        .description
        .as_ref()
        .is_some_and(|d| d.len() > MAX_DESCRIPTION_BYTES)
    {
        return Err(ApiError::bad_request(format!(
            "the description may be at most {MAX_DESCRIPTION_BYTES} bytes"
        )));
    }
    let now = now_micros();
    let expires_at_us = body
        .expires
        .as_deref()
        .map(|value| expiry(value, now))
        .transpose()?;
    let generated = generate_key();
    let key = ApiKey {
        id: generated.id,
        role: body.role,
        namespaces,
        description: body.description,
        created_at_us: now,
        expires_at_us,
        revoked_at_us: None,
        secret_sha256: generated.secret_sha256,
    };
    directory.create_key(key.clone()).await?;
    tracing::info!(key_id = %key.id, role = key.role.as_str(), "API key created");
    Ok(CreatedKey {
        key: generated.key,
        view: key.into(),
    })
}

#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    responses((status = 200, body = KeyList)))]
pub async fn list(State(directory): State<Arc<Directory>>) -> Json<KeyList> {
    Json(KeyList {
        keys: directory
            .list_keys()
            .into_iter()
            .map(KeyView::from)
            .collect(),
    })
}

#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 200, body = KeyView, description = "Revoked (revoking again changes nothing)"), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(directory): State<Arc<Directory>>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<KeyView>, ApiError> {
    let revoked = directory.revoke_key(&id, now_micros()).await?;
    tracing::info!(key_id = %revoked.id, "API key revoked");
    Ok(Json(revoked.into()))
}

/// An absolute RFC 3339 time, or a duration from now; it must lie in the future.
fn expiry(value: &str, now: i64) -> Result<i64, ApiError> {
    let at = match humantime::parse_duration(value) {
        Ok(ahead) => now.saturating_add(i64::try_from(ahead.as_micros()).unwrap_or(i64::MAX)),
        Err(_) => parse_since(value, now).map_err(|e| {
            ApiError::bad_request(format!(
                "expires: {e}; give an RFC 3339 time or a duration such as 30d"
            ))
        })?,
    };
    if at <= now {
        return Err(ApiError::bad_request("expires must lie in the future"));
    }
    Ok(at)
}
