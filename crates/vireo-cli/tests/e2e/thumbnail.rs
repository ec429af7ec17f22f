//! The thumbnail example end to end: a PNG uploaded under `images/` becomes, through a bucket
//! notification and `wasi:blobstore`, a smaller PNG under `thumbs/`.

use std::time::Duration;

use crate::buckets::{create_bucket, object_url};
use crate::support::{Server, eventually};

/// A `width`×`height` RGB PNG of noise, which compresses badly: a large original.
fn noisy_png(width: u32, height: u32) -> Vec<u8> {
    let mut seed: u32 = 0x9e37_79b9;
    let pixels: Vec<u8> = (0..width * height * 3)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            seed.to_be_bytes()[0]
        })
        .collect();
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&pixels).unwrap();
    writer.finish().unwrap();
    bytes
}

/// The width and height of a PNG, decoding it whole (so a broken one fails).
fn png_size(bytes: &[u8]) -> (u32, u32) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    (frame.width, frame.height)
}

#[tokio::test]
async fn an_uploaded_png_gets_a_smaller_thumbnail() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let admin = server.admin();
    create_bucket(&admin, &server, "uploads").await;
    let file = crate::support::guests().join("thumbnail.wasm");
    server.cli_ok(&[
        "deploy",
        "thumbnail",
        file.to_str().unwrap(),
        "--bucket",
        "uploads",
    ]);
    server.cli_ok(&[
        "buckets",
        "notify",
        "uploads",
        "--function",
        "thumbnail",
        "--events",
        "created",
        "--prefix",
        "images/",
        "--suffix",
        ".png",
    ]);
    let original = noisy_png(640, 480);
    let upload = data.path().join("cat.png");
    std::fs::write(&upload, &original).unwrap();
    server.cli_ok(&[
        "objects",
        "put",
        "uploads",
        "images/cat.png",
        upload.to_str().unwrap(),
    ]);

    let thumbnail = eventually(Duration::from_secs(60), || async {
        let response = admin
            .get(object_url(&server, "uploads", "thumbs/cat.png"))
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => Ok(response.bytes().await.unwrap()),
            status => Err(format!("thumbs/cat.png: {status}")),
        }
    })
    .await;
    assert_eq!(png_size(&thumbnail), (128, 96), "fits 128×128, aspect kept");
    assert!(
        thumbnail.len() < original.len() / 10,
        "{} bytes from {}",
        thumbnail.len(),
        original.len()
    );
    // The thumbnail is outside the notification's prefix: it triggered nothing. Its event
    // would have been queued with the object, so the queue holds the one delivery only.
    server.all_succeeded("thumbnail", 1).await;
}
