//! Limits on the request head, checked before routing: the request target's length (414) and the
//! head's size (431). hyper's `max_buf_size` bounds its read buffer, not the head: a head that
//! arrives in one read is parsed whole however large, so its size is measured here, on what hyper
//! parsed, wherever the bytes came from.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::error::ApiError;

#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Longer request targets (path and query) are answered 414.
    pub max_url_bytes: usize,
    /// Larger request heads (request line and headers) are answered 431.
    pub max_header_bytes: usize,
}

pub async fn limit(State(limits): State<HeadLimits>, request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target > limits.max_url_bytes {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!(
                "the request target is {target} bytes; this server's limit is {}",
                limits.max_url_bytes
            ),
        )
        .into_response();
    }
    let size = head_bytes(&request, target);
    if size > limits.max_header_bytes {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "header_too_large",
            format!(
                "the request head is {size} bytes; this server's limit is {}",
                limits.max_header_bytes
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// The size of a request's head as it came on the wire: request line, header lines, blank line.
fn head_bytes(request: &Request, target: usize) -> usize {
    let request_line = request.method().as_str().len() + " ".len() + target + " HTTP/1.1\r\n".len();
    let header_lines: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + ": ".len() + value.len() + "\r\n".len())
        .sum();
    request_line + header_lines + "\r\n".len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_measured_as_it_was_sent() {
        let target = "/fn/default/hello/?x=1";
        let request = Request::builder()
            .method("POST")
            .uri(target)
            .header("host", "localhost")
            .header("x-padding", "a".repeat(100))
            .body(axum::body::Body::empty())
            .unwrap();
        let wire = format!(
            "POST {target} HTTP/1.1\r\nhost: localhost\r\nx-padding: {}\r\n\r\n",
            "a".repeat(100)
        );
        assert_eq!(head_bytes(&request, target.len()), wire.len());
    }
}
