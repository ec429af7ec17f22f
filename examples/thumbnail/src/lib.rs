//! Makes thumbnails: invoked by a bucket notification for each new `.png` under `images/`, it
//! reads the image through `wasi:blobstore`, shrinks it to fit 128×128 (keeping its aspect
//! ratio) and writes it as `thumbs/<name>` in the same bucket, which the notification's prefix
//! filter does not match, so the function never triggers itself.
//!
//! ```text
//! vireo buckets create uploads
//! vireo deploy thumbnail target/wasm32-wasip2/release/thumbnail.wasm --bucket uploads
//! vireo buckets notify uploads --function thumbnail --events created --prefix images/ --suffix .png
//! vireo objects put uploads images/cat.png ./cat.png
//! vireo objects get uploads thumbs/cat.png -o thumb.png
//! ```

use std::io::{Cursor, Read as _, Write as _};

use image::ImageFormat;
use serde_json::Value;
use wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

use bindings::wasi::blobstore::{blobstore, types};

/// The largest side of a thumbnail, in pixels.
const SIDE: u32 = 128;

wasi::http::proxy::export!(Thumbnail);

struct Thumbnail;

impl wasi::exports::http::incoming_handler::Guest for Thumbnail {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        // An error answers 500, so the queue retries the event and keeps it if it keeps failing.
        let (status, said) = match thumbnail(&request) {
            Ok(said) => (200, said),
            Err(why) => (500, why),
        };
        respond(response_out, status, &said);
    }
}

/// Reads the object the event names, and writes its thumbnail; what was written.
fn thumbnail(request: &IncomingRequest) -> Result<String, String> {
    let event: Value = serde_json::from_slice(&body(request)?).map_err(|e| e.to_string())?;
    let (Some(bucket), Some(key)) = (event["bucket"].as_str(), event["key"].as_str()) else {
        return Err(format!("not a bucket event: {event}"));
    };
    let name = key.rsplit('/').next().unwrap_or(key);
    let target = format!("thumbs/{name}");

    let container = blobstore::get_container(bucket)?;
    let value = container.get_data(key, 0, u64::MAX)?;
    let mut stream = types::IncomingValue::incoming_value_consume_async(value)?;
    let mut original = Vec::new();
    stream
        .read_to_end(&mut original)
        .map_err(|e| e.to_string())?;
    drop(stream);

    let image = image::load_from_memory_with_format(&original, ImageFormat::Png)
        .map_err(|e| format!("{key} is not a PNG: {e}"))?;
    let mut png = Vec::new();
    image
        .thumbnail(SIDE, SIDE)
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .map_err(|e| e.to_string())?;

    let outgoing = types::OutgoingValue::new_outgoing_value();
    let mut out = outgoing
        .outgoing_value_write_body()
        .map_err(|()| "the value's body was taken".to_string())?;
    container.write_data(&target, &outgoing)?;
    out.write_all(&png).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    drop(out);
    types::OutgoingValue::finish(outgoing)?;
    Ok(format!(
        "{target}: {} bytes from {} bytes\n",
        png.len(),
        original.len()
    ))
}

fn body(request: &IncomingRequest) -> Result<Vec<u8>, String> {
    let incoming = request.consume().map_err(|()| "no body".to_string())?;
    let mut bytes = Vec::new();
    let mut stream = incoming
        .stream()
        .map_err(|()| "no body stream".to_string())?;
    stream.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    drop(stream);
    IncomingBody::finish(incoming);
    Ok(bytes)
}

fn respond(response_out: ResponseOutparam, status: u16, said: &str) {
    let response = OutgoingResponse::new(Fields::new());
    response.set_status_code(status).expect("a valid status");
    let outgoing = response.body().expect("body is taken once");
    ResponseOutparam::set(response_out, Ok(response));
    let mut out = outgoing.write().expect("stream is taken once");
    out.write_all(said.as_bytes()).expect("write body");
    out.flush().expect("flush body");
    drop(out);
    OutgoingBody::finish(outgoing, None).expect("finish body");
}

mod bindings {
    // Its streams are the wasi crate's, so they read and write with std::io.
    wit_bindgen::generate!({
        path: "wit",
        world: "vireo:thumbnail/thumbnail",
        with: {
            "wasi:io/error@0.2.6": ::wasi::io::error,
            "wasi:io/poll@0.2.6": ::wasi::io::poll,
            "wasi:io/streams@0.2.6": ::wasi::io::streams,
        },
        generate_all,
    });
}
