//! Presigned object URLs: made by `vireo objects presign` or the API, used without a key by a
//! plain HTTP client as a browser would (CORS preflight included), and refused once changed,
//! used for another method, expired, or asked for by someone who may not write the bucket.

use std::time::Duration;

use reqwest::{Method, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::buckets::{create_bucket, object_url};
use crate::support::{Server, eventually, stdout_json};

const KEY: &str = "photos/cat 1.png";

async fn presign(client: &reqwest::Client, server: &Server, body: Value) -> (u16, Value) {
    let response = client
        .post(server.url("/v1/namespaces/default/buckets/uploads/presign"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The status and error code of `method` on `url` with no key.
async fn refused(method: Method, url: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .request(method.clone(), url)
        .body("x")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status} {method} {url}: not JSON ({e}): {text:?}"));
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test]
async fn a_presigned_url_uploads_and_downloads_one_object_without_a_key() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let admin = server.admin();
    create_bucket(&admin, &server, "uploads").await;

    let made = stdout_json(&server.cli(&[
        "objects",
        "presign",
        "uploads",
        KEY,
        "--method",
        "put",
        "--expires",
        "10m",
        "-o",
        "json",
    ]));
    let put_url = made["url"].as_str().unwrap().to_string();
    assert!(
        put_url.starts_with(&server.url("/presigned/default/uploads/")),
        "{made}"
    );
    assert_eq!(made["method"], "PUT");

    // A page on another origin asks first, then uploads with no key.
    let anonymous = reqwest::Client::new();
    let preflight = anonymous
        .request(Method::OPTIONS, &put_url)
        .header(header::ORIGIN, "https://app.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "PUT")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "content-type, x-vireo-meta-owner",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let allowed = preflight.headers()[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap();
    assert!(allowed.contains("PUT"), "{allowed}");
    let headers = preflight.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap();
    assert!(headers.contains("x-vireo-meta-owner"), "{headers}");
    let bytes = b"\x89PNG not really".to_vec();
    let uploaded = anonymous
        .put(&put_url)
        .header(header::CONTENT_TYPE, "image/png")
        .header("x-vireo-meta-owner", "ada")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200);
    assert_eq!(uploaded.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let stored: Value = uploaded.json().await.unwrap();
    assert_eq!(stored["etag"], hex::encode(Sha256::digest(&bytes)));
    let read = admin
        .get(object_url(&server, "uploads", KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(read.headers()[header::CONTENT_TYPE], "image/png");
    assert_eq!(read.headers()["x-vireo-meta-owner"], "ada");
    assert_eq!(read.bytes().await.unwrap(), bytes);

    // The upload URL does not read, and a changed URL does nothing.
    assert_eq!(
        refused(Method::GET, &put_url).await,
        (403, "invalid_signature".into())
    );
    let other_key = put_url.replace("cat%201.png", "dog.png");
    assert_eq!(
        refused(Method::PUT, &other_key).await,
        (403, "invalid_signature".into())
    );
    let (before, signature) = put_url.split_once("&signature=").unwrap();
    let later = format!("{}9&signature={signature}", before);
    assert_eq!(
        refused(Method::PUT, &later).await,
        (403, "invalid_signature".into())
    );
    assert_eq!(
        refused(Method::DELETE, &put_url).await,
        (405, "method_not_allowed".into())
    );

    let (status, made) = presign(&admin, &server, json!({"key": KEY, "method": "GET"})).await;
    assert_eq!(status, 201, "{made}");
    let get_url = server.url(made["path"].as_str().unwrap());
    let downloaded = anonymous
        .get(&get_url)
        .header(header::RANGE, "bytes=0-3")
        .send()
        .await
        .unwrap();
    assert_eq!(downloaded.status(), 206);
    assert_eq!(
        downloaded.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "*"
    );
    assert_eq!(downloaded.bytes().await.unwrap(), &bytes[..4]);
    let head = anonymous.head(&get_url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()[header::CONTENT_LENGTH],
        bytes.len().to_string()
    );
    assert_eq!(
        refused(Method::PUT, &get_url).await,
        (403, "invalid_signature".into())
    );

    // A URL stops working when it expires (polled: it is valid for one second).
    let (_, made) = presign(
        &admin,
        &server,
        json!({"key": KEY, "method": "GET", "expires_in_s": 1}),
    )
    .await;
    let short = server.url(made["path"].as_str().unwrap());
    eventually(Duration::from_secs(10), || async {
        let response = anonymous.get(&short).send().await.unwrap();
        match response.status().as_u16() {
            200 => Err("the URL still works".to_string()),
            403 => {
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "url_expired", "{body}");
                Ok(())
            }
            other => panic!("{other} for an expiring URL"),
        }
    })
    .await;
}

#[tokio::test]
async fn only_those_who_may_write_a_bucket_presign_and_bad_requests_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let admin = server.admin();
    create_bucket(&admin, &server, "uploads").await;
    let asked = json!({"key": KEY, "method": "PUT"});

    let (status, _) = presign(&server.viewer_client(), &server, asked.clone()).await;
    assert_eq!(status, 403, "a viewer cannot hand out access");
    let other = Server::client_with_key(&server.developer_key_for_new_namespace("other"));
    let (status, _) = presign(&other, &server, asked.clone()).await;
    assert_eq!(
        status, 404,
        "another namespace's bucket does not exist for it"
    );

    for (body, message) in [
        (
            json!({"key": KEY, "method": "DELETE"}),
            "cannot be presigned",
        ),
        (
            json!({"key": KEY, "method": "PUT", "expires_in_s": 0}),
            "expires_in_s",
        ),
        (
            json!({"key": KEY, "method": "PUT", "expires_in_s": 700_000}),
            "7 days",
        ),
        (json!({"key": "a/../b", "method": "PUT"}), "segment"),
        (json!({"key": "", "method": "PUT"}), "key"),
    ] {
        let (status, answer) = presign(&admin, &server, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let said = answer["error"]["message"].as_str().unwrap();
        assert!(said.contains(message), "{body}: {said}");
    }
    let response = admin
        .post(server.url("/v1/namespaces/default/buckets/missing/presign"))
        .json(&asked)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
