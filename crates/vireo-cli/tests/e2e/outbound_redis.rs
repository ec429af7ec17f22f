//! Functions use a real Redis through Spin's `fermyon:spin/redis@2.0.0`, built with Spin SDK 5:
//! the typed commands and `execute`, publishing that a subscriber sees, refusals of
//! destinations outside the version's grants, and commands that would spoil a pooled
//! connection.

use futures::StreamExt as _;
use vireo_testsvc::Redis;

use crate::support::{DEADLINE, Server};

fn grant() -> String {
    format!("redis://127.0.0.1:{}", Redis::shared().port())
}

#[tokio::test]
async fn typed_commands_execute_and_publish_reach_the_server() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let url = Redis::shared().url();
    server.deploy_outbound("rd", &[grant()]).await;

    assert_eq!(
        server
            .outbound("rd", "/redis/commands", &url, "typed")
            .await,
        "ok get=Some(\"hello\") missing=None incr=1,2 wrong=Some(Error::TypeError) sadd=3 srem=1 \
         smembers=[\"typed:a\", \"typed:c\"] hset=[RedisResult::Int64(1)] \
         hgetall=bin:field,bin:42 del=2"
    );
    assert_eq!(
        server
            .outbound("rd", "/redis/execute", &url, "SET plain value")
            .await,
        "ok status:OK"
    );
    assert_eq!(
        server
            .outbound("rd", "/redis/execute", &url, "GET plain")
            .await,
        "ok bin:value"
    );

    let client = redis::Client::open(url.as_str()).unwrap();
    let mut subscriber = client.get_async_pubsub().await.unwrap();
    subscriber.subscribe("news").await.unwrap();
    assert_eq!(
        server
            .outbound("rd", "/redis/publish?channel=news", &url, "extra! extra!")
            .await,
        "ok"
    );
    let mut messages = subscriber.on_message();
    let message = tokio::time::timeout(DEADLINE, messages.next())
        .await
        .expect("the subscriber hears the publish")
        .unwrap();
    assert_eq!(message.get_channel_name(), "news");
    assert_eq!(message.get_payload::<String>().unwrap(), "extra! extra!");
}

#[tokio::test]
async fn grants_and_pooled_connections_are_enforced() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path())
        .config("[connections]\ncall_timeout_ms = 500\n")
        .start();
    let url = Redis::shared().url();
    let port = Redis::shared().port();
    server.deploy_outbound("bare", &[]).await;
    server
        .deploy_outbound("pg-only", &[format!("postgres://127.0.0.1:{port}")])
        .await;
    server.deploy_outbound("rd", &[grant()]).await;

    let refused = format!(
        "error Error::Other(\"redis://127.0.0.1:{port} is not in the version's allowed_outbound_hosts\")"
    );
    for function in ["bare", "pg-only"] {
        assert_eq!(
            server
                .outbound(function, "/redis/execute", &url, "PING")
                .await,
            refused,
            "{function}"
        );
    }
    let elsewhere = url.replace("127.0.0.1", "127.0.0.2");
    let said = server
        .outbound("rd", "/redis/execute", &elsewhere, "PING")
        .await;
    assert!(
        said.contains(&format!("redis://127.0.0.2:{port} is not in")),
        "{said}"
    );
    assert_eq!(
        server
            .outbound("rd", "/redis/execute", "not a url", "PING")
            .await,
        "error Error::InvalidAddress"
    );
    assert_eq!(
        server
            .outbound("rd", "/redis/execute", &url, "SUBSCRIBE news")
            .await,
        "error Error::Other(\"SUBSCRIBE is not allowed on a pooled connection\")"
    );
    // A command that blocks is cut off, and its connection closed rather than lent again.
    assert_eq!(
        server
            .outbound("rd", "/redis/execute", &url, "BLPOP nothing-ever 0")
            .await,
        "error Error::Other(\"the call took longer than 500 ms (connections.call_timeout_ms)\")"
    );
    assert_eq!(
        server.outbound("rd", "/redis/execute", &url, "PING").await,
        "ok status:PONG"
    );
}
