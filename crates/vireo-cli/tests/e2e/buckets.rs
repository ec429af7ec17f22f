//! Object buckets through the admin API: objects of 0 B, 1 B and 50 MiB round-tripping with
//! their sha256 as ETag, byte ranges, `If-None-Match`, listings over 2,000 keys by prefix,
//! delimiter and cursor, the size limit and the namespace quota refusing a write without
//! storing any of it, other tenants kept out, and the same on PostgreSQL.

use futures::StreamExt as _;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Server, ServerBuilder, Store, stdout_json};

pub fn object_url(server: &Server, bucket: &str, key: &str) -> String {
    server.url(&format!(
        "/v1/namespaces/default/buckets/{bucket}/objects/{}",
        utf8_percent_encode(key, NON_ALPHANUMERIC)
    ))
}

pub async fn create_bucket(client: &reqwest::Client, server: &Server, bucket: &str) {
    let response = client
        .post(server.url("/v1/namespaces/default/buckets"))
        .json(&json!({"name": bucket}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

/// `PUT` of `bytes` as the object; the status and the JSON answer.
pub async fn put(
    client: &reqwest::Client,
    server: &Server,
    bucket: &str,
    key: &str,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let response = client
        .put(object_url(server, bucket, key))
        .header(header::CONTENT_TYPE, "image/png")
        .header("x-vireo-meta-owner", "ada")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Uploads each key with its own text as its bytes, 16 at a time; each must be stored.
async fn upload_keys(client: &reqwest::Client, server: &Server, bucket: &str, keys: &[String]) {
    let statuses = futures::stream::iter(keys.iter().map(|key| async move {
        put(client, server, bucket, key, key.as_bytes().to_vec())
            .await
            .0
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
}

/// Bytes that differ at every offset, so a misplaced range shows.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Uploads and reads back objects of every interesting size, whole, by range, conditionally and
/// by `HEAD`.
async fn round_trips(server: &Server) {
    let admin = server.admin();
    create_bucket(&admin, server, "files").await;
    for len in [0, 1, 50 * 1024 * 1024] {
        let bytes = pattern(len);
        let key = format!("sizes/{len}.bin");
        let (status, stored) = put(&admin, server, "files", &key, bytes.clone()).await;
        assert_eq!(status, 200, "{stored}");
        assert_eq!(stored["size"], len);
        assert_eq!(stored["etag"], sha256(&bytes));
        assert_eq!(stored["metadata"]["owner"], "ada");

        let response = admin
            .get(object_url(server, "files", &key))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        assert_eq!(headers[header::CONTENT_TYPE], "image/png");
        assert_eq!(headers[header::CONTENT_LENGTH], len.to_string().as_str());
        assert_eq!(
            headers[header::ETAG],
            format!("\"{}\"", sha256(&bytes)).as_str()
        );
        assert_eq!(headers["x-vireo-meta-owner"], "ada");
        // Read as a stream, hashed as it comes.
        let mut body = response.bytes_stream();
        let (mut hasher, mut read) = (Sha256::new(), 0);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.unwrap();
            read += chunk.len();
            hasher.update(&chunk);
        }
        assert_eq!(
            (read, hex::encode(hasher.finalize())),
            (len, sha256(&bytes))
        );
    }

    let key = "sizes/52428800.bin";
    let whole = pattern(50 * 1024 * 1024);
    let etag = format!("\"{}\"", sha256(&whole));
    let mib = 1024 * 1024;
    for (range, start, end) in [
        ("bytes=0-0", 0, 1),
        (&*format!("bytes={}-{}", mib - 3, mib + 3), mib - 3, mib + 4),
        ("bytes=-10", whole.len() - 10, whole.len()),
        (&*format!("bytes={}-", 49 * mib), 49 * mib, whole.len()),
    ] {
        let response = admin
            .get(object_url(server, "files", key))
            .header(header::RANGE, range)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 206, "{range}");
        assert_eq!(
            response.headers()[header::CONTENT_RANGE],
            format!("bytes {start}-{}/{}", end - 1, whole.len()).as_str()
        );
        assert_eq!(
            response.bytes().await.unwrap(),
            &whole[start..end],
            "{range}"
        );
    }
    let response = admin
        .get(object_url(server, "files", key))
        .header(header::RANGE, format!("bytes={}-", whole.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 416);
    assert_eq!(
        response.headers()[header::CONTENT_RANGE],
        format!("bytes */{}", whole.len()).as_str()
    );

    let response = admin
        .get(object_url(server, "files", key))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    let response = admin
        .head(object_url(server, "files", key))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::ETAG], etag.as_str());
    assert_eq!(
        response.headers()[header::CONTENT_LENGTH],
        whole.len().to_string().as_str()
    );

    let response = admin
        .delete(object_url(server, "files", key))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = admin
        .get(object_url(server, "files", key))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "not_found");
}

#[tokio::test]
async fn objects_round_trip_whole_and_by_range_with_their_sha256() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    round_trips(&server).await;
}

#[tokio::test]
async fn objects_round_trip_through_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(Store::postgres(dir.path())).start();
    round_trips(&server).await;
}

#[tokio::test]
async fn listings_page_over_two_thousand_keys_by_prefix_delimiter_and_cursor() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let admin = server.admin();
    create_bucket(&admin, &server, "many").await;
    let keys: Vec<String> = (0..2000)
        .map(|i| format!("dir-{}/file-{i:04}", i % 4))
        .chain(["top-a".to_string(), "top-b".to_string()])
        .collect();
    upload_keys(&admin, &server, "many", &keys).await;

    let list = |query: String| {
        let admin = admin.clone();
        let url = server.url(&format!(
            "/v1/namespaces/default/buckets/many/objects?{query}"
        ));
        async move {
            let response = admin.get(url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    // Every key once, in order, page by page.
    let (mut listed, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let query = match &cursor {
            Some(cursor) => format!("limit=333&cursor={cursor}"),
            None => "limit=333".into(),
        };
        let page = list(query).await;
        for object in page["objects"].as_array().unwrap() {
            listed.push(object["key"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(listed, expected);

    let page = list("delimiter=/&limit=3".into()).await;
    assert_eq!(
        page["common_prefixes"],
        json!(["dir-0/", "dir-1/", "dir-2/"])
    );
    let next = page["next_cursor"].as_str().unwrap();
    let page = list(format!("delimiter=/&limit=3&cursor={next}")).await;
    assert_eq!(page["common_prefixes"], json!(["dir-3/"]));
    let rest: Vec<_> = page["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].clone())
        .collect();
    assert_eq!(rest, [json!("top-a"), json!("top-b")]);
    assert_eq!(page["next_cursor"], Value::Null);

    let page = list("prefix=dir-2/&limit=1000".into()).await;
    assert_eq!(page["objects"].as_array().unwrap().len(), 500);
    for query in ["limit=0", "cursor=!!"] {
        let response = admin
            .get(server.url(&format!(
                "/v1/namespaces/default/buckets/many/objects?{query}"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
    }
}

#[tokio::test]
async fn the_size_limit_and_the_quota_refuse_a_write_and_store_none_of_it() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path())
        .config("[objects]\nmax_object_bytes = 1000\n")
        .start();
    let admin = server.admin();
    create_bucket(&admin, &server, "small").await;

    let (status, refused) = put(&admin, &server, "small", "big", vec![1; 1001]).await;
    assert_eq!(status, 413, "{refused}");
    assert_eq!(refused["error"]["code"], "payload_too_large");
    // Without a length up front, the limit stops the body as it passes it.
    let chunks = futures::stream::iter((0..5).map(|_| Ok::<_, std::io::Error>(vec![7u8; 300])));
    let response = admin
        .put(object_url(&server, "small", "streamed"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    for key in ["big", "streamed"] {
        let response = admin
            .head(object_url(&server, "small", key))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "nothing of {key} was stored");
    }

    server.cli_ok(&["ns", "quota", "default", "--max-object-bytes", "1500"]);
    assert_eq!(
        put(&admin, &server, "small", "a", vec![1; 1000]).await.0,
        200
    );
    let (status, refused) = put(&admin, &server, "small", "b", vec![2; 600]).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "quota_exceeded");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_object_bytes quota of 1500"),
        "{refused}"
    );
    assert_eq!(
        put(&admin, &server, "small", "b", vec![2; 500]).await.0,
        200
    );
    let listed: Value = admin
        .get(server.url("/v1/namespaces/default/buckets"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["bytes_used"], 1500);
    assert_eq!(listed["max_object_bytes"], 1500);
    assert_eq!(listed["buckets"][0]["objects"], 2);

    let key = "k".repeat(1025);
    let (status, refused) = put(&admin, &server, "small", &key, vec![1]).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_key");
}

#[tokio::test]
async fn other_tenants_cannot_reach_a_bucket_and_viewers_only_read() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let admin = server.admin();
    create_bucket(&admin, &server, "private").await;
    assert_eq!(
        put(
            &admin,
            &server,
            "private",
            "plan.txt",
            b"attack at dawn".to_vec()
        )
        .await
        .0,
        200
    );

    let other = Server::client_with_key(&server.developer_key_for_new_namespace("other"));
    // Another namespace's resources are answered as if they did not exist.
    for url in [
        object_url(&server, "private", "plan.txt"),
        server.url("/v1/namespaces/default/buckets"),
        server.url("/v1/namespaces/default/buckets/private/objects"),
    ] {
        let response = other.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 404, "{url}");
        assert!(!response.text().await.unwrap().contains("dawn"));
    }
    let (status, _) = put(&other, &server, "private", "plan.txt", b"mine now".to_vec()).await;
    assert_eq!(status, 404);
    // Its own namespace has no bucket of that name.
    let response = other
        .get(server.url("/v1/namespaces/other/buckets/private/objects/plan.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    let viewer = server.viewer_client();
    let response = viewer
        .get(object_url(&server, "private", "plan.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.bytes().await.unwrap(), "attack at dawn");
    assert_eq!(
        put(&viewer, &server, "private", "plan.txt", b"x".to_vec())
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn the_cli_creates_buckets_and_uploads_lists_stats_downloads_and_deletes_objects() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.cli_ok(&["buckets", "create", "uploads"]);
    let file = data.path().join("cat.png");
    let bytes = pattern(3 * 1024 * 1024 + 7);
    std::fs::write(&file, &bytes).unwrap();

    let stored = stdout_json(&server.cli(&[
        "objects",
        "put",
        "uploads",
        "images/cat.png",
        file.to_str().unwrap(),
        "--content-type",
        "image/png",
        "-o",
        "json",
    ]));
    assert_eq!(stored["etag"], sha256(&bytes));
    let piped = server.cli_with_stdin(
        &["objects", "put", "uploads", "notes/a b.txt", "-"],
        b"hello",
    );
    assert!(piped.status.success(), "{piped:?}");

    let listed = stdout_json(&server.cli(&["buckets", "ls", "-o", "json"]));
    assert_eq!(listed["buckets"][0]["objects"], 2);
    assert_eq!(listed["bytes_used"], bytes.len() + 5);
    let page =
        stdout_json(&server.cli(&["objects", "ls", "uploads", "--delimiter", "/", "-o", "json"]));
    assert_eq!(page["common_prefixes"], json!(["images/", "notes/"]));
    let table = server.cli_ok(&["objects", "ls", "uploads", "--prefix", "images/"]);
    assert!(
        table.contains("images/cat.png") && table.contains("image/png"),
        "{table}"
    );

    let stat =
        stdout_json(&server.cli(&["objects", "stat", "uploads", "images/cat.png", "-o", "json"]));
    assert_eq!(stat["size"], bytes.len());
    assert_eq!(stat["etag"], sha256(&bytes));
    assert_eq!(stat["content_type"], "image/png");
    assert!(stat["created_at_us"].as_i64().unwrap() > 0);

    let copy = data.path().join("copy.png");
    server.cli_ok(&[
        "objects",
        "get",
        "uploads",
        "images/cat.png",
        "--to",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&copy).unwrap(), bytes);
    assert_eq!(
        server.cli_ok(&["objects", "get", "uploads", "notes/a b.txt"]),
        "hello"
    );

    let refused = server.cli(&["buckets", "rm", "uploads"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("still holds 2 objects"));
    server.cli_ok(&["objects", "rm", "uploads", "images/cat.png"]);
    server.cli_ok(&["objects", "rm", "uploads", "notes/a b.txt"]);
    server.cli_ok(&["buckets", "rm", "uploads"]);
    let listed = stdout_json(&server.cli(&["buckets", "ls", "-o", "json"]));
    assert_eq!(listed["buckets"], json!([]));
}

/// The succeeded deliveries of `function` as the echo function answered them: the request it
/// saw, by the object key it was told of. Records are written a few milliseconds after the
/// queue counts a delivery, so with `expected` the listing is read until that many are in;
/// without it (after a kill -9, which loses the last few milliseconds of records) it is read
/// once.
async fn deliveries(server: &Server, function: &str, expected: Option<usize>) -> Vec<Value> {
    let path = format!("/v1/namespaces/default/functions/{function}/invocations?limit=1000");
    let records = crate::support::eventually(crate::support::DEADLINE, || async {
        let (status, page) = server.get_json(&path).await;
        assert_eq!(status, 200, "{page}");
        let records = page["invocations"].as_array().unwrap().clone();
        match (records.len(), expected) {
            (n, Some(expected)) if n != expected => {
                Err(format!("{n} of {expected} delivery records written"))
            }
            _ => Ok(records),
        }
    })
    .await;
    let mut seen = Vec::new();
    for record in records {
        assert_eq!(record["trigger"], "bucket", "{record}");
        let id = record["id"].as_str().unwrap();
        let detail = server.invocation(id).await;
        let body = detail["response"]["body"].as_str().unwrap();
        seen.push(serde_json::from_str::<Value>(body).unwrap());
    }
    seen
}

#[tokio::test]
async fn two_hundred_uploads_are_delivered_once_each_with_cloudevents_headers() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("thumbnail", "echo", json!({})).await;
    server.cli_ok(&["buckets", "create", "uploads"]);
    server.cli_ok(&[
        "buckets",
        "notify",
        "uploads",
        "--function",
        "thumbnail",
        "--events",
        "created,deleted",
        "--prefix",
        "images/",
        "--suffix",
        ".png",
    ]);
    let listed = stdout_json(&server.cli(&["buckets", "notifications", "uploads", "-o", "json"]));
    assert_eq!(listed[0]["events"], json!(["created", "deleted"]));

    let admin = server.admin();
    let keys: Vec<String> = (0..200).map(|i| format!("images/{i:03}.png")).collect();
    upload_keys(&admin, &server, "uploads", &keys).await;
    // Outside the filters: no delivery.
    assert_eq!(
        put(&admin, &server, "uploads", "images/cat.jpg", b"x".to_vec())
            .await
            .0,
        200
    );
    assert_eq!(
        put(&admin, &server, "uploads", "thumbs/cat.png", b"x".to_vec())
            .await
            .0,
        200
    );
    server.all_succeeded("thumbnail", 200).await;

    let seen = deliveries(&server, "thumbnail", Some(200)).await;
    let mut subjects: Vec<String> = seen
        .iter()
        .map(|request| {
            let headers = &request["headers"];
            assert_eq!(headers["ce-type"], "dev.vireo.object.created");
            assert_eq!(headers["ce-source"], "/namespaces/default/buckets/uploads");
            let body: Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
            let key = body["key"].as_str().unwrap();
            assert_eq!(headers["ce-subject"], key);
            assert_eq!(body["etag"], sha256(key.as_bytes()));
            assert_eq!(body["size"], key.len());
            assert_eq!(body["content_type"], "image/png");
            key.to_string()
        })
        .collect();
    subjects.sort();
    assert_eq!(subjects, keys, "each upload delivered exactly once");

    let response = admin
        .delete(object_url(&server, "uploads", "images/000.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    server.all_succeeded("thumbnail", 201).await;
    let deleted: Vec<Value> = deliveries(&server, "thumbnail", Some(201))
        .await
        .into_iter()
        .filter(|request| request["headers"]["ce-type"] == "dev.vireo.object.deleted")
        .collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["headers"]["ce-subject"], "images/000.png");

    server.cli_ok(&["buckets", "unnotify", "uploads", "--function", "thumbnail"]);
    assert_eq!(
        put(&admin, &server, "uploads", "images/new.png", b"x".to_vec())
            .await
            .0,
        200
    );
    let listed = stdout_json(&server.cli(&["buckets", "notifications", "uploads", "-o", "json"]));
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn after_kill_9_mid_upload_every_object_has_exactly_one_event_and_none_is_half_written() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path());
    server.deploy_ok("thumbnail", "echo", json!({})).await;
    server.cli_ok(&["buckets", "create", "uploads"]);
    server.cli_ok(&["buckets", "notify", "uploads", "--function", "thumbnail"]);

    // Uploads of 256 KiB each, 64 at once; the kill cuts off any still on their way.
    let admin = server.admin();
    let bytes = pattern(256 * 1024);
    let uploads: Vec<_> = (0..64)
        .map(|i| {
            let (admin, url, bytes) = (
                admin.clone(),
                object_url(&server, "uploads", &format!("k/{i:02}")),
                bytes.clone(),
            );
            tokio::spawn(async move {
                admin
                    .put(url)
                    .body(bytes)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    crate::support::eventually(crate::support::DEADLINE, || async {
        let listed: Value = server
            .admin()
            .get(server.url("/v1/namespaces/default/buckets"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if listed["buckets"][0]["objects"].as_u64().unwrap_or(0) >= 8 {
            Ok(())
        } else {
            Err(listed.to_string())
        }
    })
    .await;
    server.kill();
    for upload in uploads {
        let _ = upload.await.unwrap();
    }

    let server = server.restart().start();
    let admin = server.admin();
    let page: Value = admin
        .get(server.url("/v1/namespaces/default/buckets/uploads/objects?limit=1000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored: Vec<String> = page["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|object| {
            assert_eq!(object["size"], bytes.len(), "{object}");
            assert_eq!(object["etag"], sha256(&bytes), "{object}");
            object["key"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(stored.len() >= 8, "{stored:?}");
    for key in &stored {
        let response = admin
            .get(object_url(&server, "uploads", key))
            .send()
            .await
            .unwrap();
        assert_eq!(response.bytes().await.unwrap(), bytes, "{key} is whole");
    }
    // One event per stored object, counted by the queue, which commits with the object; the
    // records that survived the kill each name a different stored object.
    server.all_succeeded("thumbnail", stored.len() as u64).await;
    let mut delivered: Vec<String> = deliveries(&server, "thumbnail", None)
        .await
        .iter()
        .map(|request| {
            request["headers"]["ce-subject"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    delivered.sort();
    let recorded = delivered.len();
    delivered.dedup();
    assert_eq!(delivered.len(), recorded, "no object delivered twice");
    assert!(
        delivered.iter().all(|key| stored.contains(key)),
        "{delivered:?} are all stored: {stored:?}"
    );
    // No file of a cut-off upload is left behind.
    let files = std::fs::read_dir(data.path().join("objects"))
        .unwrap()
        .count();
    assert_eq!(files, stored.len());
}

#[tokio::test]
async fn an_upload_wakes_the_worker_instead_of_waiting_for_its_poll() {
    let data = tempfile::tempdir().unwrap();
    // A poll a minute away: only the wake-up can deliver within the deadline below.
    let server = Server::builder(data.path())
        .config("[async]\npoll_interval_ms = 60000\n")
        .start();
    server.deploy_ok("thumbnail", "echo", json!({})).await;
    server.cli_ok(&["buckets", "create", "uploads"]);
    server.cli_ok(&["buckets", "notify", "uploads", "--function", "thumbnail"]);
    let admin = server.admin();
    // The worker polls once as it starts; wait that out with a first delivery.
    upload_keys(&admin, &server, "uploads", &["first".to_string()]).await;
    server.all_succeeded("thumbnail", 1).await;
    upload_keys(&admin, &server, "uploads", &["second".to_string()]).await;
    server
        .queue_counts_until("thumbnail", std::time::Duration::from_secs(20), |counts| {
            counts["succeeded"] == 2
        })
        .await;
}
