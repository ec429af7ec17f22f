//! What a dashboard request that fails answers: the login form for a missing or ended session,
//! otherwise a page saying what went wrong with the API's status and message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use vireo_core::StoreError;

use super::layout;
use crate::error::ApiError;

pub(crate) enum UiError {
    /// No live session: log in first.
    LoggedOut,
    Page(StatusCode, String),
}

impl From<ApiError> for UiError {
    fn from(error: ApiError) -> Self {
        Self::Page(error.status, error.message)
    }
}

impl From<StoreError> for UiError {
    fn from(error: StoreError) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            Self::LoggedOut => Redirect::to("/ui/login").into_response(),
            Self::Page(status, message) => {
                let title = status.canonical_reason().unwrap_or("Error");
                let page = layout::page(
                    title,
                    None,
                    html! {
                        h1 { (title) }
                        p.error role="alert" { (message) }
                        p { a href="/ui" { "Back to the dashboard" } }
                    },
                );
                (status, page).into_response()
            }
        }
    }
}
