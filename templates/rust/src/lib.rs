//! An HTTP function for Vireo, written with the Spin SDK: it greets whoever the request body
//! names, with a greeting from a variable, counts its visits in the `default` key-value store
//! and says which stage its environment variable names.

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;

#[http_component]
fn handle(request: Request) -> anyhow::Result<impl IntoResponse> {
    let body = String::from_utf8_lossy(request.body());
    let who = if body.trim().is_empty() { "world" } else { body.trim() };
    // `variables` in vireo.toml's [settings]; `vireo deploy --var greeting=…` changes it.
    let greeting = spin_sdk::variables::get("greeting")?;
    // `env` in [settings]: plain environment variables.
    let stage = std::env::var("STAGE").unwrap_or_else(|_| "unset".to_string());
    let visits = count_visit()?;
    Ok(Response::builder()
        .status(200)
        .header("content-type", "text/plain; charset=utf-8")
        .body(format!("{greeting}, {who}!\nvisits: {visits}\nstage: {stage}\n"))
        .build())
}

/// Adds one to the `visits` key of the `default` store (granted by `key_value_stores`) and
/// returns the new count. Two requests at the same moment may both read the same count: fine for
/// a greeting, not for money.
fn count_visit() -> anyhow::Result<u64> {
    let store = Store::open_default()?;
    let visits = match store.get("visits")? {
        Some(bytes) => String::from_utf8(bytes)?.trim().parse::<u64>()? + 1,
        None => 1,
    };
    store.set("visits", visits.to_string().as_bytes())?;
    Ok(visits)
}
