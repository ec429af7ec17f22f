//! The seams every trigger and the admin API call: `Invoker` runs a function, `Deployer` changes
//! what is deployed (versions, aliases, deletions). The server implements both; the gateway (and later triggers) only call them.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;

use crate::auth::{Action, Principal};
use crate::invocation::{InvocationId, Trigger};
use crate::names::{AliasName, Name, VersionSelector};
use crate::settings::{InvokeAuth, VersionSettings};
use crate::spin_http::Arrival;
use crate::split::{AliasTarget, VERSION_HEADER};
use crate::store::{StoreError, VersionInfo};
use crate::tenancy::RateLimit;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error and its sources in one line: many say what failed and keep why in their source
/// (hyper's "error reading a body from connection", tokio-postgres' "error performing TLS
/// handshake"). A wrapper that repeats its source is said once.
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    for cause in std::iter::successors(Some(error), |cause| cause.source()) {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

/// Request and response bodies on the invocation path: streamed, never buffered whole.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// One event to deliver to a function, already shaped as an HTTP request.
#[derive(Debug)]
pub struct Call {
    /// Chosen by the trigger so every answer can carry it, even one refused before the function
    /// ran; recorded when the function runs.
    pub id: InvocationId,
    pub namespace: Name,
    pub function: Name,
    pub selector: VersionSelector,
    pub trigger: Trigger,
    /// Who asks; checked against the version's `invoke_auth`, or the route's.
    pub principal: Principal,
    /// The `invoke_auth` of the route the request took, which replaces the version's.
    pub route_auth: Option<InvokeAuth>,
    /// The request as the guest should see it: the path is the function-relative `/{rest}`.
    pub request: http::Request<Body>,
    /// How an HTTP request reached the gateway; none for an event or an async invocation run
    /// later. Read only by versions that see requests as Spin does (`spin_http`).
    pub arrival: Option<Arrival>,
}

/// The connection a request came on, put in each request's extensions by the listener.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: std::net::SocketAddr,
    pub tls: bool,
}

/// Why a call got no answer from its function, and the version picked to answer it when the
/// call got that far (so even a failure says which version of a split it hit).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Unanswered {
    pub error: InvokeError,
    pub version: Option<u32>,
}

impl From<InvokeError> for Unanswered {
    fn from(error: InvokeError) -> Self {
        Self {
            error,
            version: None,
        }
    }
}

/// Why an invocation produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// Unknown namespace, function, version or alias.
    #[error("{0}")]
    NotFound(String),
    /// No slot became free within the queue timeout.
    #[error("{message}")]
    Busy {
        message: String,
        retry_after_secs: u32,
    },
    /// Too many invocations of the function are already waiting; refused without waiting.
    #[error("{message}")]
    Overloaded {
        message: String,
        retry_after_secs: u32,
    },
    /// The function needs a key and none (valid) was presented.
    #[error("{0}")]
    Unauthorized(String),
    /// The version takes bearer JWTs and none (valid) came; the message says what was wrong
    /// (never the token itself).
    #[error("{0}")]
    InvalidToken(String),
    /// The key is of the function's namespace but its role may not invoke.
    #[error("{0}")]
    Forbidden(String),
    /// The function's own rate limit is used up.
    #[error("{message}")]
    RateLimited {
        message: String,
        limit: RateLimit,
        retry_after: std::time::Duration,
    },
    /// The guest ran past its deadline.
    #[error("{0}")]
    Timeout(String),
    /// The guest trapped, ran out of memory or never answered.
    #[error("{0}")]
    Failed(String),
    /// The client's request body could not be read whole; the function is not to blame.
    #[error(transparent)]
    RequestBody(#[from] RequestBodyError),
    /// Vireo itself could not run the function (store or artifact trouble).
    #[error("{0}")]
    Unavailable(String),
}

/// Why a request body could not be read: always the client's doing, never the function's. The
/// gateway's body wrapper fails with it, so whoever reads the body (a guest, an extractor) ends
/// with an error the caller can be told about, and the invoker can tell it from a guest failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestBodyError {
    #[error("the request body is larger than this server's limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error(
        "the request body arrived too slowly ({received} bytes after waiting {waited_ms} ms); this server waits {grace_ms} ms plus one second per {min_bytes_per_sec} bytes received"
    )]
    TooSlow {
        received: u64,
        waited_ms: u64,
        grace_ms: u64,
        min_bytes_per_sec: u64,
    },
    /// A malformed chunked encoding, or a connection closed before the body ended.
    #[error("the request body could not be read: {0}")]
    Malformed(String),
}

impl RequestBodyError {
    /// The status the caller is answered with.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::TooLarge { .. } => http::StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooSlow { .. } => http::StatusCode::REQUEST_TIMEOUT,
            Self::Malformed(_) => http::StatusCode::BAD_REQUEST,
        }
    }

    /// The first `RequestBodyError` in `error`'s chain of sources: body errors reach their
    /// reader wrapped by each layer they pass (hyper, axum, an extractor's rejection).
    pub fn find<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Self> {
        std::iter::successors(Some(error), |error| error.source())
            .find_map(|error| error.downcast_ref::<Self>())
    }
}

/// Who may run `version` when reached through a route with `route_auth`: the route's setting
/// when it has one, else the version's own.
pub fn invoke_auth<'a>(
    route_auth: Option<&'a InvokeAuth>,
    version: &'a VersionInfo,
) -> &'a InvokeAuth {
    route_auth.unwrap_or(&version.settings.invoke_auth)
}

/// Whether `principal` may run `version` under `auth` (see [`invoke_auth`]). A key of another
/// namespace learns nothing more than that the function is not there.
pub fn authorize_invocation(
    principal: &Principal,
    version: &VersionInfo,
    auth: &InvokeAuth,
) -> Result<(), InvokeError> {
    let namespace = &version.namespace;
    let target = format!("{namespace}/{}", version.function);
    // A JWT is the server's to verify (it holds the key sets), whoever the principal is.
    if matches!(auth, InvokeAuth::Public | InvokeAuth::Jwt(_)) {
        return Ok(());
    }
    match principal {
        Principal::System => Ok(()),
        Principal::Key(caller) if caller.may(Action::Invoke, namespace) => Ok(()),
        Principal::Key(caller) if caller.sees(namespace) => Err(InvokeError::Forbidden(format!(
            "a {} key may not invoke {target}; use an invoker, developer or admin key",
            caller.role.as_str()
        ))),
        Principal::Key(_) => Err(InvokeError::NotFound(format!(
            "function {target} does not exist"
        ))),
        Principal::Anonymous => Err(InvokeError::Unauthorized(format!(
            "{target} needs an API key: send `Authorization: Bearer <key>` with an invoker, developer or admin key of namespace {namespace}"
        ))),
    }
}

/// Whether `principal` may pick a version with `x-vireo-version`: only a caller allowed to
/// invoke the namespace. Checked when an async request is accepted too, as it runs as Vireo.
pub fn authorize_version_choice(
    principal: &Principal,
    namespace: &Name,
) -> Result<(), InvokeError> {
    let needs = || {
        format!(
            "choosing a version with {VERSION_HEADER} needs an invoker, developer or admin key of namespace {namespace}"
        )
    };
    match principal {
        Principal::System => Ok(()),
        Principal::Key(caller) if caller.may(Action::Invoke, namespace) => Ok(()),
        Principal::Key(_) => Err(InvokeError::Forbidden(needs())),
        Principal::Anonymous => Err(InvokeError::Unauthorized(needs())),
    }
}

/// The version a caller picked with `x-vireo-version` instead of the weights, if it sent the
/// header. It reaches any version of the target, even one at 0 %, but only for callers allowed
/// to invoke the namespace (a smoke test), never for anonymous callers of a public function.
pub fn requested_version(
    principal: &Principal,
    namespace: &Name,
    function: &Name,
    headers: &http::HeaderMap,
    target: &AliasTarget,
) -> Result<Option<u32>, InvokeError> {
    let Some(value) = headers.get(VERSION_HEADER) else {
        return Ok(None);
    };
    authorize_version_choice(principal, namespace)?;
    let version = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|version| target.contains(*version))
        .ok_or_else(|| {
            let versions: Vec<String> = target
                .versions
                .iter()
                .map(|arm| arm.version.to_string())
                .collect();
            InvokeError::NotFound(format!(
                "{VERSION_HEADER} must name a version this call can reach of {namespace}/{function}: {}",
                versions.join(", ")
            ))
        })?;
    Ok(Some(version))
}

#[async_trait::async_trait]
pub trait Invoker: Send + Sync + 'static {
    /// The guest's response, whose body streams while the guest keeps running.
    async fn invoke(&self, call: Call) -> Result<http::Response<Body>, Unanswered>;

    /// Checks what `auth` asks of the request's credentials besides keys (a bearer JWT) and
    /// puts what they prove into `headers` (the verified claims). Calls Vireo makes itself
    /// (`Principal::System`: async delivery, schedules) were checked when accepted.
    async fn check_credentials(
        &self,
        auth: &InvokeAuth,
        principal: &Principal,
        headers: &mut http::HeaderMap,
    ) -> Result<(), InvokeError>;

    /// The version a call to `function@selector` would run now (served from the invoker's
    /// route cache, so checking before queueing costs no store read).
    async fn resolve(
        &self,
        namespace: &Name,
        function: &Name,
        selector: &VersionSelector,
    ) -> Result<VersionInfo, StoreError>;
}

/// Result of a deploy: the version, and whether it is new (an identical redeploy of the latest
/// version's component and settings returns that version instead of adding one).
#[derive(Debug, Clone)]
pub struct Deployed {
    pub version: VersionInfo,
    pub created: bool,
    /// Imports linked as traps (the version allows unimplemented imports).
    pub unimplemented_imports: Vec<String>,
    /// What the deployer should know about the version, in words (nothing blocks it).
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The bytes are not a component Vireo can run; the message names the problem.
    #[error("{0}")]
    Rejected(String),
    #[error("invalid settings: {0}")]
    InvalidSettings(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

#[async_trait::async_trait]
pub trait Deployer: Send + Sync + 'static {
    async fn deploy(
        &self,
        namespace: &Name,
        function: &Name,
        component: Bytes,
        settings: VersionSettings,
    ) -> Result<Deployed, DeployError>;

    /// A new version with `settings` and the component of the existing version `from`.
    async fn reconfigure(
        &self,
        from: &VersionInfo,
        settings: VersionSettings,
    ) -> Result<Deployed, DeployError>;

    /// Points an alias at a version, or splits it over several; requests route by it at once.
    async fn set_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
        target: &AliasTarget,
    ) -> Result<(), StoreError>;

    async fn delete_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
    ) -> Result<(), StoreError>;

    /// Versions of the function whose compiled state is loaded (warm) in this server.
    fn warm_versions(&self, namespace: &Name, function: &Name) -> Vec<u32>;

    /// Loaded versions whose instances could not serve a second request, so they run on a
    /// fresh instance per request whatever their `instance_reuse` says.
    fn reuse_fallback_versions(&self, namespace: &Name, function: &Name) -> Vec<u32>;

    /// Deletes a function and forgets its loaded state.
    async fn delete(&self, namespace: &Name, function: &Name) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading failed")]
    struct Wrapper(#[source] BoxError);

    #[test]
    fn a_body_error_is_found_under_the_layers_that_wrap_it() {
        let slow = RequestBodyError::TooSlow {
            received: 1,
            waited_ms: 2,
            grace_ms: 3,
            min_bytes_per_sec: 4,
        };
        let wrapped = Wrapper(Box::new(Wrapper(Box::new(slow.clone()))));
        assert_eq!(RequestBodyError::find(&wrapped), Some(&slow));
        assert_eq!(slow.status(), http::StatusCode::REQUEST_TIMEOUT);
        let unrelated = Wrapper("connection reset".into());
        assert_eq!(RequestBodyError::find(&unrelated), None);
    }
}
